"""Chaos drill: stream readings while the ingest worker is killed again and again, the broker is
restarted once and the database once; then count every reading in raw and in every rollup.

Run from the repository root::

    .venv/bin/python -m bench.chaos                      # 1,000,000 readings, about 2 minutes
    .venv/bin/python -m bench.chaos --readings 50000     # a short run

On a private Mosquitto and PostgreSQL + TimescaleDB (started for the run on free ports, removed
afterwards): one ``pantau ingest`` subprocess with a fixed client id (a persistent session), and a
paho QoS 1 publisher in this process sending gateway messages (``--per-message`` readings each,
default 100) to ``--sensors`` waste bins at ``--rate`` readings/s. Meanwhile the worker is
killed with SIGKILL every ``--kill-every`` seconds and started again at once, until every reading
is stored; the broker is stopped and started once after a third of the readings were published,
the database after two thirds. The publisher reconnects and resends what the broker had not
acknowledged.

Then, with the worker stopped: readings in ``readings`` against the expected per sensor (count,
first and last time, sum of values): lost and doubled; every rollup width (``rollup_1m``,
``rollup_15m``, ``rollup_1h``, ``rollup_1d``) against a recomputation from raw per bucket:
readings missing from a bucket (lost), counted more than once (doubled), and buckets whose count,
sum, min or max differ; anomalies without their reading; rejects. PASS needs all of them 0.
Printed, and written to bench/results/chaos-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from bench.drills import (
    DrillPublisher,
    count_readings,
    reap,
    run_drill,
    say,
    spawn_worker,
    utc_stamp,
    wait_until,
)
from bench.stack import fresh_database
from bench.workers import WorkerProcess, wait_subscribed
from bench.workloads import now_ms
from ops.stack.local import LocalStack
from pantau.registry.fleet import Fleet, parse_fleet
from processing.anomalies import Params
from processing.detect import KIND_NAMES, State, detect
from processing.rollup import ROLLUPS
from processing.rules import metric_rules

DAY_MS = 86_400_000
BROKER_DOWN_S = 1.0  # how long the broker stays stopped
DB_DOWN_S = 2.0  # how long the database stays stopped
STALL_S = 120.0  # give up when nothing new is stored for this long
WIDTHS = {r.table: r.interval for r in ROLLUPS}


@dataclass(frozen=True)
class ChaosConfig:
    readings: int = 1_000_000
    per_message: int = 100  # readings per gateway message
    sensors: int = 100
    rate: float = 20_000.0  # readings published per second
    kill_every_s: float = 5.0
    step_s: int = 10  # time between a sensor's consecutive readings

    @property
    def messages(self) -> int:
        return -(-self.readings // self.per_message)

    @property
    def expected(self) -> int:
        return self.messages * self.per_message


def drill_fleet(sensors: int) -> Fleet:
    """``sensors`` waste bins ``CB0000``... in one village."""
    zones = [{"id": "CZ", "name": "Chaos", "kind": "village", "lat": -6.59, "lon": 110.67}]
    bins = [{"id": f"CB{i:04d}", "kind": "waste_bin", "zone": "CZ"} for i in range(sensors)]
    return parse_fleet({"fleet": {"name": "chaos"}, "zones": zones, "sensors": bins}, "chaos")


def fill(j: int) -> float:
    """Reading ``j`` of a bin: a slow wave with noise, a spike every 487 readings, and 12
    identical readings every 1,000 (a stuck sensor), so that the detectors have work."""
    if 500 <= j % 1000 < 512:
        j -= j % 1000 - 500
    value = 40 + 10 * math.sin(2 * math.pi * j / 360) + (j * 7919 % 13) / 10
    if j % 487 == 200:
        value += 45
    return round(value, 1)


class Stream:
    """Message ``n`` goes to bin ``n % sensors``: its readings ``j = (n // sensors) * per_message
    + k`` of that bin, at ``t0 + j * step``, so every (sensor, time) is published once."""

    def __init__(self, config: ChaosConfig, root: str, t0_ms: int) -> None:
        self.c, self.root, self.t0_ms = config, root, t0_ms

    def topic(self, n: int) -> str:
        return f"{self.root}/waste_bin/CB{n % self.c.sensors:04d}"

    def payload(self, n: int) -> bytes:
        first = (n // self.c.sensors) * self.c.per_message
        step = self.c.step_s * 1000
        items = ",".join(
            f'{{"ts":{self.t0_ms + j * step},"fill_pct":{fill(j)}}}'
            for j in range(first, first + self.c.per_message)
        )
        return f"[{items}]".encode()

    def expected(self) -> dict[str, tuple[int, int, int, float]]:
        """Per bin: readings, first and last time (ms), sum of values."""
        out = {}
        for s in range(min(self.c.sensors, self.c.messages)):
            count = len(range(s, self.c.messages, self.c.sensors)) * self.c.per_message
            step = self.c.step_s * 1000
            out[f"CB{s:04d}"] = (
                count,
                self.t0_ms,
                self.t0_ms + (count - 1) * step,
                sum(fill(j) for j in range(count)),
            )
        return out


class Pump(threading.Thread):
    """Publishes the stream at ``rate`` readings/s, then waits for every PUBACK."""

    def __init__(self, publisher: DrillPublisher, stream: Stream) -> None:
        super().__init__(daemon=True)
        self.publisher, self.stream = publisher, stream
        self.started_at = 0.0
        self.published_at: float | None = None  # every message sent
        self.acked_at: float | None = None  # ... and acknowledged
        self.error: BaseException | None = None

    def run(self) -> None:
        c = self.stream.c
        per_s = c.rate / c.per_message
        try:
            self.started_at = time.monotonic()
            for n in range(c.messages):
                ahead = n / per_s - (time.monotonic() - self.started_at)
                if ahead > 0:
                    time.sleep(ahead)
                self.publisher.publish(self.stream.topic(n), self.stream.payload(n), c.per_message)
            self.published_at = time.monotonic()
            if self.publisher.drain(600):
                self.acked_at = time.monotonic()
        except Exception as exc:  # noqa: BLE001 (reported by the main thread)
            self.error = exc


@dataclass
class WidthCheck:
    table: str
    stored: int  # sum of the bucket counts
    lost: int  # raw readings missing from their bucket's count
    doubled: int  # readings counted more than once in their bucket
    buckets: int
    mismatched_buckets: int  # count, sum, min or max different from raw


@dataclass
class ChaosResult:
    started_utc: str
    config: dict[str, Any]
    expected: int
    published: int  # readings in messages the broker acknowledged
    stored: int
    lost: int
    doubled: int
    sensors_wrong: int  # bins whose count, first/last time or sum differ from what was sent
    rollups: list[WidthCheck]
    rejects: int
    anomalies: int
    anomalies_expected: int  # found by the detectors run once over the stored readings
    anomalies_missing: int  # expected and not stored
    anomalies_extra: int  # stored and not expected (e.g. a reading judged twice)
    detector_readings: int  # sum of detector_state.n: readings the detectors took in order
    kills: int
    worker_exits: int  # workers that exited on their own (e.g. started while the DB was down)
    broker_restarts: int
    db_restarts: int
    publisher_disconnects: int  # paho on_disconnect calls (a failed reconnect attempt counts too)
    duration_s: float  # first publish -> every reading stored
    publish_s: float  # first publish -> every message sent
    readings_per_s: float
    events: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


RAW_BY_SENSOR = """SELECT s.sensor_id, count(*), (extract(epoch FROM min(r.ts)) * 1000)::bigint,
       (extract(epoch FROM max(r.ts)) * 1000)::bigint, sum(r.value)
FROM readings r JOIN sensors s USING (sensor_key) GROUP BY s.sensor_id"""

WIDTH_SQL = """WITH raw AS (
    SELECT sensor_key, metric_id, time_bucket(%s::interval, ts) AS bucket,
           count(*) AS n, sum(value) AS sum, min(value) AS min, max(value) AS max
    FROM readings GROUP BY 1, 2, 3)
SELECT coalesce(sum(r.n), 0),
       coalesce(sum(greatest(coalesce(raw.n, 0) - coalesce(r.n, 0), 0)), 0),
       coalesce(sum(greatest(coalesce(r.n, 0) - coalesce(raw.n, 0), 0)), 0),
       count(*),
       count(*) FILTER (WHERE raw.n IS DISTINCT FROM r.n OR raw.min IS DISTINCT FROM r.min
                        OR raw.max IS DISTINCT FROM r.max
                        OR abs(raw.sum - r.sum) > 1e-9 * greatest(abs(raw.sum), 1))
FROM raw FULL JOIN {table} r USING (sensor_key, metric_id, bucket)"""


def reference_anomalies(conn: psycopg.Connection[Any]) -> set[tuple[int, int, int, str]]:
    """What the detectors find over every stored reading at once, from a fresh state: the
    ingest, which ran them batch by batch across restarts, must have stored the same."""
    ids = {str(name): int(i) for name, i in conn.execute("SELECT name, metric_id FROM metrics")}
    rows = conn.execute(
        "SELECT sensor_key, metric_id, (extract(epoch FROM ts) * 1000)::bigint, value FROM readings"
    ).fetchall()
    # float64 holds every column exactly (keys are small, times are ms below 2**53).
    cols = np.array(rows, dtype=np.float64).reshape(-1, 4)
    _, anomalies, _ = detect(
        State.empty(),
        metric_rules(ids),
        Params(),
        cols[:, 0].astype(np.int32),
        cols[:, 1].astype(np.int16),
        cols[:, 2].astype(np.int64),
        cols[:, 3],
    )
    a = anomalies.arrays()
    return set(
        zip(
            a["sensor_key"].tolist(),
            a["metric_id"].tolist(),
            a["ts_ms"].tolist(),
            [KIND_NAMES[k] for k in a["kind"].tolist()],
            strict=True,
        )
    )


def _scalar(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def check(url: str, stream: Stream, result: ChaosResult) -> None:
    """Fill in the counts of ``result`` from the database, and its failures."""
    expected = stream.expected()
    with psycopg.connect(url, autocommit=True) as conn:
        stored_by = {row[0]: row[1:] for row in conn.execute(RAW_BY_SENSOR).fetchall()}
        result.stored = _scalar(conn, "SELECT count(*) FROM readings")
        distinct = _scalar(conn, "SELECT count(DISTINCT (sensor_key, metric_id, ts)) FROM readings")
        for table, width in WIDTHS.items():
            row = conn.execute(WIDTH_SQL.format(table=table), (width,)).fetchone()
            assert row is not None
            result.rollups.append(WidthCheck(table, *(int(x) for x in row)))
        result.rejects = _scalar(conn, "SELECT count(*) FROM rejects")
        stored_anomalies = {
            (int(k), int(m), int(t), str(kind))
            for k, m, t, kind in conn.execute(
                "SELECT sensor_key, metric_id, (extract(epoch FROM ts) * 1000)::bigint, kind "
                "FROM anomalies"
            ).fetchall()
        }
        found = reference_anomalies(conn)
        result.anomalies, result.anomalies_expected = len(stored_anomalies), len(found)
        result.anomalies_missing = len(found - stored_anomalies)
        result.anomalies_extra = len(stored_anomalies - found)
        result.detector_readings = _scalar(conn, "SELECT coalesce(sum(n), 0) FROM detector_state")
    lost = doubled = wrong = 0
    for sensor in expected.keys() | stored_by.keys():
        want = expected.get(sensor, (0, 0, 0, 0.0))
        got = stored_by.get(sensor, (0, 0, 0, 0.0))
        lost += max(want[0] - int(got[0]), 0)
        doubled += max(int(got[0]) - want[0], 0)
        same_sum = abs(float(got[3]) - want[3]) <= 1e-9 * max(abs(want[3]), 1.0)
        if tuple(int(x) for x in got[:3]) != want[:3] or not same_sum:
            wrong += 1
    result.lost, result.sensors_wrong = lost, wrong
    result.doubled = doubled + (result.stored - distinct)
    f = result.failures
    if result.published != result.expected:
        f.append(f"the broker acknowledged {result.published:,} of {result.expected:,} readings")
    if result.stored != result.expected:
        f.append(f"{result.stored:,} readings stored, {result.expected:,} expected")
    if lost or result.doubled or wrong:
        f.append(f"raw: {lost:,} lost, {result.doubled:,} doubled, {wrong} bins differ")
    for w in result.rollups:
        if w.lost or w.doubled or w.mismatched_buckets or w.stored != result.stored:
            f.append(
                f"{w.table}: {w.stored:,} counted for {result.stored:,} raw, {w.lost:,} lost, "
                f"{w.doubled:,} doubled, {w.mismatched_buckets:,} buckets differ from raw"
            )
    if result.rejects:
        f.append(f"{result.rejects} rejects")
    if result.anomalies_missing or result.anomalies_extra:
        f.append(
            f"anomalies: {result.anomalies:,} stored, {result.anomalies_expected:,} found by the "
            f"detectors over the stored readings in one pass; {result.anomalies_missing} "
            f"missing, {result.anomalies_extra} extra"
        )


class Chaos:
    """The worker, its killer and the two restarts, driven from the main thread."""

    def __init__(
        self, local: LocalStack, url: str, root: str, config: ChaosConfig, scratch: Path
    ) -> None:
        state = local.read_state()
        assert state is not None
        self.local, self.state, self.url, self.root = local, state, url, root
        self.config, self.scratch = config, scratch
        self.client_id = f"chaos-{uuid.uuid4().hex[:8]}"
        self.worker = self._spawn()
        self.kills = self.exits = self.broker_restarts = self.db_restarts = 0
        self.events: list[str] = []
        self.t0 = time.monotonic()

    def _spawn(self) -> WorkerProcess:
        return spawn_worker(
            self.state.mqtt_url,
            self.url,
            self.root,
            self.client_id,
            self.scratch,
            {"PANTAU_INGEST_BATCH_MAX_AGE_MS": "50"},
        )

    def event(self, text: str) -> None:
        line = f"{time.monotonic() - self.t0:6.1f} s  {text}"
        self.events.append(line)
        say(text)

    def kill(self) -> None:
        self.worker.proc.send_signal(signal.SIGKILL)
        self.worker.proc.wait()
        reap(self.worker)
        self.kills += 1
        self.worker = self._spawn()

    def respawn_if_exited(self) -> None:
        code = self.worker.proc.poll()
        if code is None:
            return
        reap(self.worker)
        self.exits += 1
        log = self.worker.log
        self.event(
            f"the worker (pid {self.worker.pid}) exited by itself with {code} after "
            f"{len(log)} log lines" + "".join(f"\n      | {line}" for line in log[-4:])
        )
        time.sleep(0.5)
        self.worker = self._spawn()

    def restart_broker(self) -> None:
        broker, _ = self.local.parts()
        self.event("stopping the broker")
        broker.stop()
        time.sleep(BROKER_DOWN_S)
        broker.start()
        self.broker_restarts += 1
        self.event("broker started again")

    def restart_database(self) -> None:
        _, cluster = self.local.parts()
        self.event("stopping the database")
        cluster.stop()
        time.sleep(DB_DOWN_S)
        cluster.start()
        self.db_restarts += 1
        self.event("database started again")

    def stop_worker(self) -> None:
        self.worker.stop()
        reap(self.worker)


def _drive(chaos: Chaos, pump: Pump, publisher: DrillPublisher) -> float | None:
    """Kill, restart and poll until every reading is stored; returns when (monotonic)."""
    c = chaos.config
    next_kill = time.monotonic() + c.kill_every_s
    next_poll = 0.0
    stored, changed = 0, time.monotonic()
    while True:
        now = time.monotonic()
        chaos.respawn_if_exited()
        if now >= next_kill:
            chaos.kill()
            next_kill = time.monotonic() + c.kill_every_s
        if not chaos.broker_restarts and publisher.sent_readings >= c.expected / 3:
            chaos.restart_broker()
        if not chaos.db_restarts and publisher.sent_readings >= 2 * c.expected / 3:
            chaos.restart_database()
        if now >= next_poll:
            count = count_readings(chaos.url)
            next_poll = now + 1.0
            if count > stored:
                stored, changed = count, now
                say(
                    f"{stored:,} of {c.expected:,} stored, {publisher.sent_readings:,} "
                    f"published; {chaos.kills} kills"
                )
            if count == c.expected and pump.acked_at is not None:
                return now
            if pump.error is not None or now - changed > STALL_S:
                return None
        time.sleep(0.1)


def run_chaos(local: LocalStack, config: ChaosConfig, scratch: Path) -> ChaosResult:
    """The drill on ``local``'s servers (which it restarts), in a database of its own."""
    state = local.read_state()
    assert state is not None
    started = utc_stamp()
    run_id = uuid.uuid4().hex[:8]
    root = f"chaos{run_id}/v1"
    # Every reading in the past: the last one a day before now, the first a day-aligned start.
    span_ms = (-(-config.messages // config.sensors) * config.per_message) * config.step_s * 1000
    t0_ms = (now_ms() - span_ms - DAY_MS) // DAY_MS * DAY_MS
    stream = Stream(config, root, t0_ms)
    with fresh_database(state, "chaos", drill_fleet(config.sensors)) as url:
        chaos = Chaos(local, url, root, config, scratch)
        try:
            wait_subscribed([chaos.worker], timeout_s=60)
            time.sleep(0.5)  # the SUBACK follows the log line: the session exists after it
            publisher = DrillPublisher(state.mqtt_url, "chaos-pub")
            pump = Pump(publisher, stream)
            chaos.event(
                f"publishing {config.expected:,} readings in {config.messages:,} messages "
                f"at {config.rate:,.0f} readings/s; SIGKILL every {config.kill_every_s:g} s"
            )
            pump.start()
            try:
                done_at = _drive(chaos, pump, publisher)
                pump.join(timeout=60)
            finally:
                publisher.close()
            chaos.stop_worker()
            if done_at is None:
                chaos.event("stopped waiting: nothing new stored for too long, or no publisher")
            # The database answers again (it was restarted) before the counts are taken.
            wait_until(lambda: count_readings(url) >= 0, lambda: 0, stall_s=60, cap_s=60)
            duration = (done_at or time.monotonic()) - pump.started_at
            result = ChaosResult(
                started_utc=started,
                config=asdict(config),
                expected=config.expected,
                published=publisher.acked_readings,
                stored=0,
                lost=0,
                doubled=0,
                sensors_wrong=0,
                rollups=[],
                rejects=0,
                anomalies=0,
                anomalies_expected=0,
                anomalies_missing=0,
                anomalies_extra=0,
                detector_readings=0,
                kills=chaos.kills,
                worker_exits=chaos.exits,
                broker_restarts=chaos.broker_restarts,
                db_restarts=chaos.db_restarts,
                publisher_disconnects=publisher.disconnects,
                duration_s=round(duration, 1),
                publish_s=round((pump.published_at or time.monotonic()) - pump.started_at, 1),
                readings_per_s=round(config.expected / duration) if done_at else 0.0,
                events=chaos.events,
            )
            check(url, stream, result)
            if pump.error is not None:
                result.failures.append(f"the publisher failed: {pump.error}")
            if done_at is None:
                result.failures.append("not every reading was stored before the drill gave up")
                result.failures.append(f"last worker log:\n{chaos.worker.tail(10)}")
            return result
        finally:
            if chaos.worker.proc.poll() is None:
                chaos.worker.proc.kill()
                chaos.worker.proc.wait()
            reap(chaos.worker)


def render(r: ChaosResult) -> str:
    c = r.config
    lines = [
        f"Pantau chaos drill, {r.started_utc}",
        f"  {r.expected:,} readings in {r.expected // c['per_message']:,} messages of "
        f"{c['per_message']} to {c['sensors']} bins, published at {c['rate']:,.0f} readings/s "
        f"(QoS 1, paho, reconnecting)",
        f"  faults: {r.kills} SIGKILLs of the worker (every {c['kill_every_s']:g} s), "
        f"{r.broker_restarts} broker restart, {r.db_restarts} database restart; "
        f"{r.worker_exits} worker exits on their own; publisher disconnected "
        f"{r.publisher_disconnects}x",
        f"  {r.duration_s:.1f} s from first publish to every reading stored "
        f"(publishing took {r.publish_s:.1f} s): {r.readings_per_s:,.0f} readings/s",
        f"  raw      published {r.published:,}  stored {r.stored:,}  lost {r.lost:,}  "
        f"doubled {r.doubled:,}  bins differing {r.sensors_wrong}",
    ]
    lines += [
        f"  {w.table:<10} counted {w.stored:,}  lost {w.lost:,}  doubled {w.doubled:,}  "
        f"buckets {w.buckets:,} ({w.mismatched_buckets} differ from raw)"
        for w in r.rollups
    ]
    lines.append(
        f"  anomalies stored {r.anomalies:,}, found by the detectors in one pass over raw "
        f"{r.anomalies_expected:,}: missing {r.anomalies_missing}, extra {r.anomalies_extra}; "
        f"readings the detectors took in order {r.detector_readings:,}; rejects {r.rejects}"
    )
    lines.append("  events:")
    lines += [f"    {e}" for e in r.events]
    verdict = "PASS" if r.passed else "FAIL"
    lines.append(
        f"{verdict}: {r.stored:,} of {r.expected:,} stored, {r.lost:,} lost, {r.doubled:,} "
        f"doubled in raw; rollups lost/doubled "
        + ", ".join(f"{w.table[7:]} {w.lost}/{w.doubled}" for w in r.rollups)
    )
    lines += [f"  - {failure}" for failure in r.failures]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = ChaosConfig()
    parser.add_argument("--readings", type=int, default=d.readings)
    parser.add_argument(
        "--per-message", type=int, default=d.per_message, help="readings per gateway message"
    )
    parser.add_argument("--sensors", type=int, default=d.sensors)
    parser.add_argument("--rate", type=float, default=d.rate, help="readings published per second")
    parser.add_argument(
        "--kill-every", type=float, default=d.kill_every_s, help="seconds between SIGKILLs"
    )
    parser.add_argument("--fsync", action="store_true", help="run PostgreSQL with fsync on")
    args = parser.parse_args(argv)
    if args.readings < 1 or not 1 <= args.per_message <= 1000 or args.sensors < 1:
        parser.error("--readings and --sensors must be >= 1, --per-message 1 to 1000")
    if args.rate <= 0 or args.kill_every <= 0:
        parser.error("--rate and --kill-every must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = ChaosConfig(
        readings=args.readings,
        per_message=args.per_message,
        sensors=args.sensors,
        rate=args.rate,
        kill_every_s=args.kill_every,
    )
    return run_drill(
        "chaos", args.fsync, lambda local, scratch: run_chaos(local, config, scratch), render
    )


if __name__ == "__main__":
    sys.exit(main())
