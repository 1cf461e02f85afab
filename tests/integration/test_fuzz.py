"""Hypothesis-generated topics and payloads through the real broker into one real ingest worker.

Guarantee 3 of DESIGN.md ("bad input is data, not a crash") as a property: whatever is published
to a telemetry topic, the worker stays up and every message is accounted for, its valid readings
in ``readings`` and everything else in ``rejects`` with a known reason and the message's topic.

Each Hypothesis example is a handful of messages (tests/integration/fuzz_inputs.py), published at
QoS 1 and waited for. What each message should give comes from a plain-Python reference: the
pure decoder ``ingest.decode.decode`` for what a payload holds, and, written out here, the topic
rules and the checks of each reading against the catalog. Beside that reference the test checks
invariants that do not depend on it: no message is left with neither a reject nor a stored
reading, no more readings are stored than the payloads hold, nothing stored before changes, every
reject names a known reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from ingest.decode import decode
from ingest.decoded import Decoded
from pantau.registry.fleet import parse_fleet
from pantau.registry.load import load_into
from pantau.settings import MqttEndpoint
from pantau.stack.local import StackState
from tests.integration.fuzz_inputs import KINDS, Limits, Message, messages
from tests.services import RunningWorker, wait_for

pytestmark = pytest.mark.integration

MAX_PAYLOAD_BYTES = 4096
MAX_READINGS = 16
FUTURE_TOLERANCE_MS = 300_000  # IngestSettings.future_tolerance_s default
KEEP_PAYLOAD_BYTES = 1024  # a reject keeps this much of the payload
KEEP_TEXT_CHARS = 200  # ... and of its sensor id and metric
SLACK_MS = 20_000  # an example is received and written within this long after publishing starts
EXAMPLES = 200
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


def now_ms() -> int:
    return time.time_ns() // 1_000_000


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


# -- the real services -------------------------------------------------------------------------


class AckedPublisher:
    """QoS 1 publisher on the stack's broker URL (credentials included) that keeps the reason
    code of every PUBACK: the broker must accept every topic the strategies draw."""

    def __init__(self, url: str) -> None:
        endpoint = MqttEndpoint.parse(url)
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-fuzz-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if endpoint.username:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        self.client.max_inflight_messages_set(100)
        self.lock = threading.Lock()
        self.acks: dict[int, ReasonCode] = {}
        self.connack: list[ReasonCode] = []
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        wait_for(lambda: self.connack, what="the publisher's CONNACK")
        assert not self.connack[0].is_failure, f"the broker refused the publisher: {self.connack}"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, p: Any) -> None:
        self.connack.append(rc)

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: ReasonCode, p: Any) -> None:
        with self.lock:
            self.acks[mid] = rc

    def publish_all(self, batch: list[Message]) -> None:
        mids = []
        for message in batch:
            info = self.client.publish(message.topic, message.payload, qos=1)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS, (
                f"paho refused to publish to {message.topic[:100]!r}: {mqtt.error_string(info.rc)}"
            )
            mids.append(info.mid)
        wait_for(lambda: all(mid in self.acks for mid in mids), timeout_s=20, what="every PUBACK")
        with self.lock:
            codes = [self.acks.pop(mid) for mid in mids]
        refused = [
            (m.topic[:100], str(c)) for m, c in zip(batch, codes, strict=True) if c.is_failure
        ]
        assert not refused, f"the broker refused publishable messages: {refused}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def thread_failures() -> Iterator[list[str]]:
    """Tracebacks of exceptions that end any thread (the worker's, say), while the block runs."""
    seen: list[str] = []
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        seen.append(
            "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        )
        previous(args)

    threading.excepthook = hook
    try:
        yield seen
    finally:
        threading.excepthook = previous


def snapshot_readings(url: str) -> dict[Key, float]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT sensor_id, metric, (extract(epoch FROM ts) * 1000)::bigint, value"
            " FROM readings_named"
        ).fetchall()
    return {(str(s), str(m), int(t)): float(v) for s, m, t, v in rows}


def rejects_since(url: str, since_ms: int) -> list[RejectRow]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT topic, payload, payload_len, reason, sensor_id, metric FROM rejects"
            " WHERE received_at >= %s",
            (datetime.fromtimestamp(since_ms / 1000, UTC),),
        ).fetchall()
    return [(str(t), bytes(p), int(n), str(r), s, m) for t, p, n, r, s, m in rows]


class WorkerDiedError(Exception):
    """The ingest worker's thread ended while it had messages to take."""


@dataclass
class Fuzzer:
    """One worker on one database and topic root, fed one Hypothesis example at a time."""

    url: str
    root: str
    catalog: Catalog
    publisher: AckedPublisher
    start: Callable[[], RunningWorker]
    crashes: list[str]
    workers: list[RunningWorker] = field(default_factory=list)
    deaths: list[tuple[str, str]] = field(default_factory=list)  # (messages, traceback)
    delivered: int = 0
    valid: int = 0

    def worker(self) -> RunningWorker:
        """The running worker; a dead one is replaced, so that each example is judged alone."""
        if not self.workers or not self.workers[-1].thread.is_alive():
            self.workers.append(self.start())
        return self.workers[-1]

    def died(self, running: RunningWorker, batch: list[Message]) -> str:
        running.thread.join(timeout=10)
        error = running.worker.writer_error
        if error is not None:
            detail = "".join(traceback.format_exception(error))
        else:
            detail = self.crashes[-1] if self.crashes else "(no traceback)"
        shown = "\n".join(show(m, 100) for m in batch)
        self.deaths.append((shown, detail))
        return f"the ingest worker died on the messages\n{shown}\n{detail}"

    def death_report(self) -> str:
        """The deaths, each traceback once with the messages that caused it."""
        by_detail: dict[str, list[str]] = {}
        for shown, detail in self.deaths:
            by_detail.setdefault(detail, []).append(shown)
        return "\n".join(
            f"{len(shown)} time(s), on:\n" + "\n".join(shown) + f"\n{detail}"
            for detail, shown in by_detail.items()
        )

    def run(self, batch: list[Message], lo_ms: int, outcomes: list[Outcome | None]) -> None:
        """Publish ``batch`` (whose ``outcomes`` the reference gives for a receipt from
        ``lo_ms`` on), wait for the worker to take it, and check what it left."""
        running = self.worker()
        counters = running.worker.counters
        before = snapshot_readings(self.url)
        base = (counters.messages, counters.readings, counters.inserted, counters.rejects)
        n = sum(o is not None for o in outcomes)

        self.publisher.publish_all(batch)

        def done() -> bool:
            if not running.thread.is_alive():
                raise WorkerDiedError(self.died(running, batch))
            return counters.messages >= base[0] + n

        wait_for(done, timeout_s=SLACK_MS / 1000, what=f"the worker to take {n} messages")
        hi_ms = now_ms()
        assert hi_ms - lo_ms <= SLACK_MS, f"an example took {hi_ms - lo_ms} ms"
        after = snapshot_readings(self.url)
        rejects = rejects_since(self.url, lo_ms)
        ex = Example(self.root, batch, outcomes, before, after, rejects, lo_ms, hi_ms)
        problems = check_rejects(ex) + check_readings(ex) + check_accounting(ex)
        deltas = (
            counters.messages - base[0],
            counters.readings - base[1],
            counters.inserted - base[2],
            counters.rejects - base[3],
        )
        valid = sum(o.valid for o in outcomes if o is not None)
        want = (n, valid, len(after) - len(before), len(rejects))
        if any(o is not None and o.opaque is not None for o in outcomes):
            valid = deltas[1]  # the reference cannot tell; the worker's count is taken as is
        elif deltas != want:
            problems.append(
                f"counters moved by (messages, readings, inserted, rejects) = {deltas},"
                f" the database and the reference say {want}"
            )
        assert not problems, "\n".join(problems)
        self.delivered += n
        self.valid += valid


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


# Nesting around CPython's recursion limit (1000 frames, counted by its json module on the
# thread that parses) and orjson's depth limit (1024).
PARSER_LIMIT_DEPTHS = (900, 980, 990, 1000, 1010, 1023, 1024, 1100)


def deep_message(root: str, now: int, depth: int) -> Message:
    """A valid reading beside an entry nested ``depth`` arrays deep around an object."""
    deep = "[" * depth + '{"a": 1}' + "]" * depth
    ts_s = now // 1000 - 3 * 3600 - depth
    return Message(f"{root}/waste_bin/WB-1", f'{{"ts": {ts_s}, "tilt": 1.5, "x": {deep}}}'.encode())


# -- the test ----------------------------------------------------------------------------------


def load_sensors(url: str) -> None:
    zone = {"id": "Z", "name": "Z", "kind": "village", "lat": -6.5, "lon": 110.7}
    sensors = [{"id": s, "kind": kind, "zone": "Z"} for s, (kind, _) in SENSORS.items()]
    with psycopg.connect(url) as conn:
        load_into(conn, parse_fleet({"zones": [zone], "sensors": sensors}))
        for s, (_, installed) in SENSORS.items():
            conn.execute(
                "UPDATE sensors SET installed_at = %s WHERE sensor_id = %s",
                (INSTALLED[installed], s),
            )


def test_fuzzed_topics_and_payloads_are_all_accounted_for(
    stack: StackState,
    db_url: str,
    topic_root: str,
    worker_factory: Callable[..., RunningWorker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    load_sensors(db_url)
    catalog = Catalog.load(db_url)
    limits = Limits(
        now_ms=now_ms(),
        installed_ms=tuple(sorted(set(catalog.installed_ms.values()))),
        max_payload_bytes=MAX_PAYLOAD_BYTES,
        max_readings=MAX_READINGS,
    )
    sensor_kinds = tuple((s, kind) for s, (kind, _) in SENSORS.items())
    publisher = AckedPublisher(stack.mqtt_url)

    def start() -> RunningWorker:
        return worker_factory(
            db_url,
            topic_root,
            batch_max_age_ms=10,
            max_payload_bytes=MAX_PAYLOAD_BYTES,
            max_readings_per_message=MAX_READINGS,
        )

    with thread_failures() as crashes:
        fuzzer = Fuzzer(db_url, topic_root, catalog, publisher, start, crashes)
        fuzzer.worker()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.lists(messages(topic_root, sensor_kinds, limits), min_size=1, max_size=6))
        def fuzz(batch: list[Message]) -> None:
            lo_ms = now_ms()
            outcomes = expect_example(topic_root, catalog, batch, lo_ms)
            assume(outcomes is not None)  # an outcome on a knife's edge in time: not tested
            assert outcomes is not None
            fuzzer.run(batch, lo_ms, outcomes)

        try:
            fuzz()
            # Hypothesis raises the recursion limit (for every thread) while it runs an example,
            # so payloads as deep as the limits of the parsers go through the worker here, after.
            killed_at: list[int] = []
            for depth in PARSER_LIMIT_DEPTHS:
                batch = [deep_message(topic_root, limits.now_ms, depth)]
                lo_ms = now_ms()
                outcomes = expect_example(topic_root, catalog, batch, lo_ms)
                assert outcomes is not None
                try:
                    fuzzer.run(batch, lo_ms, outcomes)
                except WorkerDiedError:  # reported below, with any other death
                    killed_at.append(depth)
        finally:
            publisher.close()

        # After the fuzzing: the same worker is alive, healthy and agrees with the database.
        if fuzzer.deaths:
            pytest.fail(
                f"the ingest worker died {len(fuzzer.deaths)} time(s) (of the nesting depths"
                f" {PARSER_LIMIT_DEPTHS}, on {killed_at}):\n{fuzzer.death_report()}"
            )
        assert not crashes, "a thread died:\n" + "\n".join(crashes)
        assert len(fuzzer.workers) == 1
        running = fuzzer.workers[0]
        assert running.thread.is_alive(), "the ingest worker stopped"
        taken = snapshot_readings(db_url)
        ts_s = next(
            t
            for t in range(limits.now_ms // 1000 - 7200, 0, -1)
            if ("WB-1", "tilt", t * 1000) not in taken
        )
        health = Message(
            f"{topic_root}/waste_bin/WB-1", f'{{"ts": {ts_s}, "tilt": 177.25}}'.encode()
        )
        publisher = AckedPublisher(stack.mqtt_url)
        try:
            publisher.publish_all([health])
        finally:
            publisher.close()
        wait_for(
            lambda: snapshot_readings(db_url).get(("WB-1", "tilt", ts_s * 1000)) == 177.25,
            what="a valid reading after the fuzzing",
        )
        wait_for(
            lambda: running.worker.counters.messages == fuzzer.delivered + 1,
            what="the counters to take the last message",
        )
        counters = running.shutdown()
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
        rejected = conn.execute("SELECT count(*) FROM rejects").fetchone()
        reasons = conn.execute("SELECT DISTINCT reason FROM rejects").fetchall()
    assert stored is not None
    assert rejected is not None
    assert (counters.messages, counters.readings, counters.inserted, counters.rejects) == (
        fuzzer.delivered + 1,
        fuzzer.valid + 1,
        stored[0],
        rejected[0],
    )
    assert {r[0] for r in reasons} <= KNOWN_REASONS
    # The fuzzing reached both sides: many readings stored, most kinds of reject made.
    assert stored[0] >= 30, f"only {stored[0]} readings stored"
    assert len(reasons) >= 12, f"only the reasons {sorted(r[0] for r in reasons)}"
    bad_logs = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not bad_logs, [f"{r.name} {r.levelname}: {r.getMessage()}" for r in bad_logs]
    assert "Traceback" not in caplog.text
