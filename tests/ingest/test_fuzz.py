"""Hypothesis-generated topics and payloads through the real broker into one real ingest worker.

Guarantee 3 of DESIGN.md ("bad input is data, not a crash") as a property: whatever is published
to a telemetry topic, the worker stays up and every message is accounted for, its valid readings
in ``readings`` and everything else in ``rejects`` with a known reason and the message's topic.

Each Hypothesis example is a handful of messages (tests/ingest/fuzz_inputs.py), published at
QoS 1 and waited for. What each message should give comes from a plain-Python reference
(tests/ingest/fuzz_oracle.py): the pure decoder ``ingest.decode.decode`` for what a payload
holds, and, written out there, the topic rules and the checks of each reading against the catalog.
Beside that reference the test checks invariants that do not depend on it: no message is left with
neither a reject nor a stored reading, no more readings are stored than the payloads hold,
nothing stored before changes, every reject names a known reason.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ops.stack.local import StackState
from pantau.registry.fleet import parse_fleet
from pantau.registry.load import load_into
from tests.fixtures.broker import ReasonClient
from tests.fixtures.ingest import RunningWorker
from tests.fixtures.polling import wait_for
from tests.ingest.fuzz_inputs import Limits, Message, messages
from tests.ingest.fuzz_oracle import (
    INSTALLED,
    KNOWN_REASONS,
    MAX_PAYLOAD_BYTES,
    MAX_READINGS,
    SENSORS,
    SLACK_MS,
    Catalog,
    Example,
    Key,
    Outcome,
    RejectRow,
    check_accounting,
    check_readings,
    check_rejects,
    expect_example,
    show,
)

pytestmark = pytest.mark.integration

EXAMPLES = 200


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- the real services -------------------------------------------------------------------------


def publish_all(client: ReasonClient, batch: list[Message]) -> None:
    """Publish ``batch``: the broker must accept every topic the strategies draw."""
    codes = client.publish_many([(m.topic, m.payload) for m in batch])
    refused = [(m.topic[:100], c) for m, c in zip(batch, codes, strict=True) if c >= 128]
    assert not refused, f"the broker refused publishable messages: {refused}"


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
    publisher: ReasonClient
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

        publish_all(self.publisher, batch)

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
    publisher = ReasonClient(stack.mqtt_url)

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
        publisher = ReasonClient(stack.mqtt_url)
        try:
            publish_all(publisher, [health])
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
