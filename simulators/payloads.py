"""Messages on the wire: the three payload forms the ingest accepts, and garbage.

- ``json``: one JSON object per report, ``{"ts": <epoch ms>, "fill_pct": 42.5, ...}``;
- ``batch``: a gateway's JSON array of such objects, one message per sensor and batch window;
- ``senml``: a SenML pack (RFC 8428) per report or batch window: base name
  ``urn:dev:pantau:<sensor_id>:``, base time in seconds, then one record per metric with its
  SenML unit (``Cel``, ``V``, ``cm``, ``/100``, ``%RH``, ``ug/m3``, ``count``; RFC 8428 section
  12.1 and RFC 8798), later reports of a batch with a time ``t`` relative to the base time.

Counts and metrics with no decimals are JSON integers. Garbage payloads are ASCII without tabs
or newlines, so that they survive the ``topic<TAB>payload`` line format, and none is JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from pantau.topics import status_topic, telemetry_topic
from simulators.frame import DATA, OFFLINE, GroupFrame

FORMS = ("json", "batch", "senml")


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    ts_ms: int  # when it is published (simulated Unix ms)
    readings: int  # readings it carries (0 for garbage and status messages)
    retain: bool = False
    sensor_id: str = ""


def _garble(payload: bytes, variant: int, ts_ms: int, metric: str) -> bytes:
    if variant == 0:
        return payload[: len(payload) // 2]  # cut off mid-transfer
    if variant == 1:
        return b"ERR E05 SENSOR TIMEOUT t=%d" % ts_ms  # firmware error text
    if variant == 2:
        return b'{"ts": %d, "%s": NaN}' % (ts_ms, metric.encode())  # NaN is not JSON
    return b"ts=%d;%s=0" % (ts_ms, metric.encode())  # a firmware left in its debug format


def _t(ms: int) -> int | float:
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def serialise(frame: GroupFrame, topic_root: str, form: str) -> list[Message]:
    """One :class:`Message` per row of ``frame``, in row order."""
    group = frame.group
    names = [s.name for s in group.specs]
    senml = [s.senml for s in group.specs]
    columns: list[list[Any]] = [
        frame.values[:, j].astype("int64").tolist()
        if s.decimals == 0
        else frame.values[:, j].tolist()
        for j, s in enumerate(group.specs)
    ]
    rows = list(zip(*columns, strict=True)) if frame.values.shape[0] else []
    stamps = frame.stamp_ms.tolist()
    m = len(names)
    out: list[Message] = []
    for sensor, publish, first, count, status, garbage in zip(
        frame.sensor.tolist(),
        frame.publish_ms.tolist(),
        frame.first.tolist(),
        frame.count.tolist(),
        frame.status.tolist(),
        frame.garbage.tolist(),
        strict=True,
    ):
        sensor_id = group.ids[sensor]
        if status != DATA:
            payload = b"offline" if status == OFFLINE else b"online"
            topic = status_topic(topic_root, group.kind, sensor_id)
            out.append(Message(topic, payload, publish, 0, True, sensor_id))
            continue
        if form == "json":
            body: Any = dict(zip(names, rows[first], strict=True))
            body = {"ts": stamps[first], **body}
        elif form == "batch":
            body = [
                {"ts": stamps[r], **dict(zip(names, rows[r], strict=True))}
                for r in range(first, first + count)
            ]
        else:
            base = stamps[first]
            body = []
            for r in range(first, first + count):
                # RFC 8428 section 4.5.3: "t" is per record, relative to the base time.
                head: dict[str, Any] = {"t": _t(stamps[r] - base)} if r > first else {}
                for (name, unit), v in zip(senml, rows[r], strict=True):
                    record: dict[str, Any] = {**head, "n": name, "v": v}
                    if unit is not None:
                        record["u"] = unit
                    body.append(record)
            body[0] = {"bn": f"urn:dev:pantau:{sensor_id}:", "bt": _t(base), **body[0]}
        payload = orjson.dumps(body)
        readings = count * m
        if garbage >= 0:
            payload, readings = _garble(payload, garbage, stamps[first], names[0]), 0
        topic = telemetry_topic(topic_root, group.kind, sensor_id)
        out.append(Message(topic, payload, publish, readings, False, sensor_id))
    return out
