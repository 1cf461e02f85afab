"""The reference of the ingest fuzz test (test_fuzz.py): what each message must give, and the
checks of what an example left in the database.

What a payload holds comes from the pure decoder ``ingest.decode.decode``; written out here are
the topic rules and the checks of each reading against the catalog, which is read from the
database. ``check_accounting`` checks what does not depend on the reference: every delivered
message left a reject or a stored reading, and no more readings are new than the payloads hold.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg

from ingest.decode import decode
from ingest.decoded import Decoded
from tests.ingest.fuzz_inputs import KINDS, Message

MAX_PAYLOAD_BYTES = 4096
MAX_READINGS = 16
FUTURE_TOLERANCE_MS = 300_000  # IngestSettings.future_tolerance_s default
KEEP_PAYLOAD_BYTES = 1024  # a reject keeps this much of the payload
KEEP_TEXT_CHARS = 200  # ... and of its sensor id and metric
SLACK_MS = 20_000  # an example is received and written within this long after publishing starts
INSTALLED = {"2020": "2020-01-01T00:00:00Z", "2026": "2026-01-01T00:00:00Z"}
SENSORS = {
    "WB-1": ("waste_bin", "2020"),
    "WB-2": ("waste_bin", "2026"),
    "WB-3": ("waste_bin", "2020"),
    "AQ-1": ("air_quality", "2020"),
    "AQ-2": ("air_quality", "2026"),
    "FF-1": ("footfall", "2020"),
    "FF-2": ("footfall", "2026"),
}
KNOWN_REASONS = frozenset(
    {
        # ingest/decoded.py
        "malformed_payload", "bad_structure", "duplicate_key", "missing_ts", "bad_ts",
        "wrong_type", "payload_too_large", "too_many_readings", "bad_unit",
        # ingest/pipeline.py
        "bad_topic", "unknown_sensor", "kind_mismatch", "db_rejected",
        # processing/validate.py
        "unknown_metric", "non_finite", "out_of_range", "ts_in_future", "ts_before_install",
    }
)  # fmt: skip

Key = tuple[str, str, int]  # (sensor_id, metric, ts_ms): the primary key of a reading
RejectKey = tuple[str, bytes, int]  # (topic, kept payload, payload length): one message's rejects
RejectRow = tuple[str, bytes, int, str, str | None, str | None]  # ... and reason, sensor, metric


def kept(text: str | None) -> str | None:
    """A sensor id or metric as ``rejects`` stores it: bounded, NUL spelled out."""
    return None if text is None else text[:KEEP_TEXT_CHARS].replace("\x00", "\\0")


def delivered(root: str, topic: str) -> bool:
    """Whether ``topic`` matches the worker's subscription ``<root>/+/+`` (MQTT 5 4.7.1.3)."""
    levels, prefix = topic.split("/"), root.split("/")
    return len(levels) == len(prefix) + 2 and levels[: len(prefix)] == prefix


def payload_readings(payload: bytes) -> int:
    """An upper bound on the readings a payload holds, without Pantau's decoder: each comes
    from one key of an object (with its colon) or one record of a SenML pack (with its brace)."""
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        return payload.count(b":") + payload.count(b"{")
    if isinstance(doc, dict):
        return len(doc)
    if isinstance(doc, list):
        return sum(len(item) for item in doc if isinstance(item, dict))
    return 0


# -- the reference -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one delivered message must give, per the reference."""

    rejects: Counter[tuple[str, str | None]]  # (reason, metric as stored)
    sensor_id: str | None  # as stored in its rejects
    fixed: list[tuple[Key, float]] = field(default_factory=list)  # valid, at a known time
    # Valid, at a time relative to the receipt (SenML): (sensor, metric, ms after it, value).
    floating: list[tuple[str, str, int, float]] = field(default_factory=list)
    opaque: str | None = None  # the reference decoder raised this: only "some reject" is known

    @property
    def valid(self) -> int:
        return len(self.fixed) + len(self.floating)


@dataclass(frozen=True)
class Catalog:
    ranges: dict[str, tuple[float, float]]
    kind_metrics: dict[str, frozenset[str]]
    installed_ms: dict[str, int]

    @classmethod
    def load(cls, url: str) -> Catalog:
        with psycopg.connect(url) as conn:
            ranges = {
                str(name): (float(lo), float(hi))
                for name, lo, hi in conn.execute("SELECT name, min_value, max_value FROM metrics")
            }
            kind_metrics: dict[str, set[str]] = {}
            for kind, name in conn.execute(
                "SELECT kind, name FROM kind_metrics JOIN metrics USING (metric_id)"
            ):
                kind_metrics.setdefault(str(kind), set()).add(str(name))
            installed = {
                str(sensor): int(ms)
                for sensor, ms in conn.execute(
                    "SELECT sensor_id, (extract(epoch FROM installed_at) * 1000)::bigint"
                    " FROM sensors"
                )
            }
        return cls(ranges, {k: frozenset(v) for k, v in kind_metrics.items()}, installed)

    def reason(self, kind: str, metric: str, ts_ms: int, value: float, sensor: str, at: int) -> str:
        """Why a decoded reading is rejected when written at ``at`` (Unix ms); "" if valid."""
        if metric not in self.kind_metrics[kind]:
            return "unknown_metric"
        if not math.isfinite(value):
            return "non_finite"
        lo, hi = self.ranges[metric]
        if not lo <= value <= hi:
            return "out_of_range"
        if ts_ms > at + FUTURE_TOLERANCE_MS:
            return "ts_in_future"
        if ts_ms < self.installed_ms[sensor]:
            return "ts_before_install"
        return ""


def reference_decode(payload: bytes, received_ms: int) -> Decoded | str:
    """``decode`` as the worker calls it, on a fresh thread as the worker's is (its stack
    depth matters to a recursive parser); the exception's text if it raises."""
    out: list[Decoded | str] = []

    def run() -> None:
        try:
            out.append(
                decode(
                    payload,
                    max_bytes=MAX_PAYLOAD_BYTES,
                    max_readings=MAX_READINGS,
                    now_ms=received_ms,
                )
            )
        except Exception as exc:  # noqa: BLE001 (reported as the message's expected outcome)
            out.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def topic_outcome(kind: str, sensor: str) -> Outcome | None:
    """The reject of a telemetry topic that names no known sensor of that kind, or None."""
    if kind not in KINDS or not sensor:
        return Outcome(Counter({("bad_topic", None): 1}), None)
    if sensor not in SENSORS:
        return Outcome(Counter({("unknown_sensor", None): 1}), kept(sensor))
    if SENSORS[sensor][0] != kind:
        return Outcome(Counter({("kind_mismatch", None): 1}), sensor)
    return None


def expect(catalog: Catalog, message: Message, received_ms: int, written_ms: int) -> Outcome | None:
    """What ``message``, received at ``received_ms`` and written at ``written_ms``, must give.

    None when the outcome depends on the exact instant (the strategies keep clear of that).
    """
    kind, sensor = message.topic.split("/")[-2:]
    refused = topic_outcome(kind, sensor)
    if refused is not None:
        return refused
    # Decoded a second time, received later: readings whose time moves with it are relative.
    shift = 7919
    first = reference_decode(message.payload, received_ms)
    second = reference_decode(message.payload, received_ms + shift)
    if isinstance(first, str) or isinstance(second, str):
        return Outcome(Counter(), sensor, opaque=first if isinstance(first, str) else str(second))
    same = (first.metrics, first.values, first.problems) == (
        second.metrics,
        second.values,
        second.problems,
    )
    if not same:
        return None
    out = Outcome(Counter((p.reason, kept(p.metric)) for p in first.problems), sensor)
    for metric, ts1, ts2, value in zip(
        first.metrics, first.ts_ms, second.ts_ms, first.values, strict=True
    ):
        if ts2 not in (ts1, ts1 + shift):
            return None
        reason = catalog.reason(kind, metric, ts1, value, sensor, written_ms)
        if reason:
            out.rejects[(reason, kept(metric))] += 1
        elif ts1 == ts2:
            out.fixed.append(((sensor, metric, ts1), value))
        else:
            out.floating.append((sensor, metric, ts1 - received_ms, value))
    return out


def expect_example(
    root: str, catalog: Catalog, batch: list[Message], lo_ms: int
) -> list[Outcome | None] | None:
    """The outcomes of the delivered messages of ``batch`` (None for the others), received and
    written between ``lo_ms`` and ``lo_ms + SLACK_MS``; None if that instant matters."""
    hi_ms = lo_ms + SLACK_MS
    outcomes: list[Outcome | None] = []
    for message in batch:
        if not delivered(root, message.topic):
            outcomes.append(None)
            continue
        corners = [
            expect(catalog, message, received, written)
            for received, written in ((lo_ms, lo_ms), (lo_ms, hi_ms), (hi_ms, hi_ms))
        ]
        first = corners[0]
        if first is None or any(
            c is None
            or (c.rejects, c.fixed, c.floating) != (first.rejects, first.fixed, first.floating)
            for c in corners
        ):
            return None
        outcomes.append(first)
    return outcomes


# -- the checks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One example's messages, what the reference expects of them, and what they left behind."""

    root: str
    batch: list[Message]
    outcomes: list[Outcome | None]  # None: not delivered to the worker
    before: dict[Key, float]  # readings before the example
    after: dict[Key, float]  # ... and after it
    rejects: list[RejectRow]  # rejects received since the example began
    lo_ms: int  # the example's messages were received and written between these instants
    hi_ms: int

    def pairs(self) -> Iterator[tuple[Message, Outcome]]:
        for message, outcome in zip(self.batch, self.outcomes, strict=True):
            if outcome is not None:
                yield message, outcome

    def stored_rejects(self) -> dict[RejectKey, Counter[tuple[str, str | None, str | None]]]:
        got: dict[RejectKey, Counter[tuple[str, str | None, str | None]]] = {}
        for topic, payload, length, reason, sensor_id, metric in self.rejects:
            got.setdefault((topic, payload, length), Counter())[(reason, sensor_id, metric)] += 1
        return got


def reject_key(message: Message) -> RejectKey:
    return message.topic, message.payload[:KEEP_PAYLOAD_BYTES], len(message.payload)


def show(message: Message, keep: int = 60) -> str:
    """A message for a failure report: its topic and its payload, shortened in the middle."""
    topic, payload = message.topic, message.payload
    t = topic if len(topic) <= 2 * keep else f"{topic[:keep]}...{topic[-20:]} ({len(topic)} chars)"
    if len(payload) <= 2 * keep:
        return f"{t!r} {payload!r}"
    return f"{t!r} {payload[:keep]!r}...{payload[-keep:]!r} ({len(payload)} bytes)"


def check_rejects(ex: Example) -> list[str]:
    """Each message's rejects are the reference's, with known reasons; no other reject exists."""
    problems = [
        f"reject with an unknown reason {r[3]!r} for {r[0][:80]!r}"
        for r in ex.rejects
        if r[3] not in KNOWN_REASONS
    ]
    got = ex.stored_rejects()
    want: dict[RejectKey, Counter[tuple[str, str | None, str | None]]] = {
        reject_key(m): Counter() for m in ex.batch
    }
    opaque: set[RejectKey] = set()
    for message, outcome in ex.pairs():
        if outcome.opaque is not None:
            opaque.add(reject_key(message))
        want[reject_key(message)].update(
            {(r, outcome.sensor_id, metric): n for (r, metric), n in outcome.rejects.items()}
        )
    problems += [
        f"rejects for no message of this example: {key[0][:80]!r} {dict(got[key])}"
        for key in got.keys() - want.keys()
    ]
    for key, counts in want.items():
        stored = got.get(key, Counter())
        if key in opaque and not stored:
            problems.append(f"no reject for a message the decoder cannot read: {key[:2]!r}")
        elif key not in opaque and stored != counts:
            problems.append(
                f"rejects of {key[0][:80]!r} {key[1][:120]!r}: stored {dict(stored)},"
                f" expected {dict(counts)}"
            )
    return problems


def check_readings(ex: Example) -> list[str]:
    """The valid readings are stored, the first of each key wins, nothing else is stored and
    nothing stored before changes (ON CONFLICT DO NOTHING)."""
    problems = [
        f"stored reading {k} = {value} became {ex.after.get(k)}"
        for k, value in ex.before.items()
        if ex.after.get(k) != value
    ]
    new = {k: v for k, v in ex.after.items() if k not in ex.before}
    explained: set[Key] = set()
    for message, outcome in ex.pairs():
        for k, value in outcome.fixed:
            if k not in ex.after:
                problems.append(f"valid reading {k} = {value} of {show(message)} not stored")
            elif k in new and k not in explained and new[k] != value:
                problems.append(f"reading {k} stored as {new[k]}, sent as {value}")
            explained.add(k)
    # Times relative to the receipt, some instant between lo_ms and hi_ms, the same for all the
    # readings of one message: some instant must explain each of them.
    for message, outcome in ex.pairs():
        receipts: set[int] | None = None
        for sensor, metric, offset, value in outcome.floating:
            near = [
                k
                for k in ex.after
                if k[:2] == (sensor, metric) and ex.lo_ms + offset <= k[2] <= ex.hi_ms + offset
            ]
            fits = {k[2] - offset for k in near if ex.after[k] == value or k in ex.before}
            fits |= {k[2] - offset for k in near if k in explained}  # a key sent twice
            receipts = fits if receipts is None else receipts & fits
            explained.update(near)
        if receipts is not None and not receipts:
            problems.append(
                f"valid readings {outcome.floating} timed from the receipt of {show(message)}"
                " are not all stored at one receipt time"
            )
    loose = {m.topic.split("/")[-1] for m, o in ex.pairs() if o.opaque is not None}
    problems += [
        f"stored reading {k} = {new[k]} that no message of this example holds"
        for k in new.keys() - explained
        if k[0] not in loose
    ]
    return problems


def check_accounting(ex: Example) -> list[str]:
    """Without the reference: every delivered message left a reject or a stored reading of its
    sensor and of a metric its payload names, and no more readings are new than payloads hold."""
    problems = []
    got = ex.stored_rejects()
    capacity: Counter[str] = Counter()
    for message in ex.batch:
        if not delivered(ex.root, message.topic):
            continue
        sensor = message.topic.split("/")[-1]
        capacity[sensor] += payload_readings(message.payload)
        named = [
            k for k in ex.after if k[0] == sensor and k[1].split("_")[0].encode() in message.payload
        ]
        if not got.get(reject_key(message)) and not named:
            problems.append(f"message with neither a reject nor a stored reading: {show(message)}")
    for sensor, n in Counter(k[0] for k in ex.after if k not in ex.before).items():
        if n > capacity[sensor]:
            problems.append(f"{n} new readings of {sensor}, the payloads hold {capacity[sensor]}")
    return problems
