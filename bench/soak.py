"""Soak drill: a realistic fleet at half of what the pipeline can take, for a long time; worker
memory and lag sampled throughout; nothing may be lost.

Run from the repository root::

    .venv/bin/python -m bench.soak                 # 60 minutes (plus about a minute around it)
    .venv/bin/python -m bench.soak --minutes 5     # a short run
    .venv/bin/python -m bench.soak --rate 1000     # 1,000 messages/s instead of half the capacity

On a private Mosquitto and PostgreSQL + TimescaleDB (started for the run on free ports, removed
afterwards): one ``pantau ingest`` subprocess, and a paho QoS 1 publisher in this process sending
the simulated Jepara fleet scaled to ``--sensors`` devices (``simulators/``, faults off): one
JSON report per message, as the devices send them (a bin reports 5 readings, an air station 8,
a footfall counter 2), simulated time running as fast as the rate needs, in the past.

1. Capacity (unless ``--rate``): the publisher sends as fast as the broker acknowledges for
   ``--capacity-s`` seconds; the worker's stored readings per second over the last 80 % of
   that window is the capacity (of the worker, or of the publisher when the worker kept up: the
   report says which). After the backlog has drained, the soak runs at half of it.
2. Soak: messages paced at the rate for ``--minutes``; every ``--sample-s`` seconds a line with
   the worker's resident memory (VmRSS from /proc) and CPU, readings published (sent) and
   stored (the worker's ``pantau_ingest_inserted_total``), the lag between the two, and rejects.
3. Drain, then count ``readings`` in the database.

PASS when no reading is lost (stored in the database == published and acknowledged, after
draining) and the worker's RSS never rises more than 10 % above its value at the end of the
warm-up (the first 10 % of the run, at least 2 minutes, at most half the run). Printed, and
written to bench/results/soak-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.drills import (
    DrillPublisher,
    reap,
    rss_mib,
    run_drill,
    say,
    scrape_metrics,
    spawn_worker,
    utc_stamp,
    wait_until,
)
from bench.procs import cpu_seconds
from bench.stack import fresh_database
from bench.workers import WorkerProcess, WorkerStats, wait_subscribed
from ops.stack.local import LocalStack, StackState
from ops.stack.processes import free_port
from pantau.registry.fleet import Fleet, load_fleet
from simulators.fleet import FleetSimulator
from simulators.payloads import Message
from simulators.scale import scale_fleet

RSS_LIMIT = 1.10  # RSS after the warm-up may not exceed its value then by more than 10 %
MAX_RATE = 20_000.0  # messages/s no Python publisher here reaches: sizes the simulated past
STALL_S = 60.0  # drain: give up after this long without a new stored reading


@dataclass(frozen=True)
class SoakConfig:
    minutes: float = 60.0
    rate: float | None = None  # messages/s; None: half the measured capacity
    sensors: int = 10_000
    capacity_s: float = 30.0
    sample_s: float = 10.0
    seed: int = 20261128

    @property
    def duration_s(self) -> float:
        return self.minutes * 60

    @property
    def warmup_s(self) -> float:
        return min(max(120.0, 0.1 * self.duration_s), 0.5 * self.duration_s)


class Source:
    """The fleet's messages, window after window of simulated time, never reaching now."""

    def __init__(self, fleet: Fleet, seed: int, root: str, config: SoakConfig) -> None:
        self.sim = FleetSimulator(fleet, seed, root, fault_rate=0.0)
        self.natural = self.sim.messages_per_s()  # per simulated second
        fastest = max(MAX_RATE, config.rate or 0.0)
        lookback = math.ceil(fastest * (config.capacity_s + config.duration_s) / self.natural)
        self.end_s = int(time.time()) - 3600
        self.t_s = self.end_s - lookback
        self.start_s = self.t_s

    def next(self, rate: float) -> list[Message]:
        """About a quarter of a second of messages at ``rate`` (per wall-clock second)."""
        window = max(1, math.ceil(0.25 * rate / self.natural))
        t1 = min(self.t_s + window, self.end_s)
        if t1 <= self.t_s:
            raise RuntimeError("the simulated past is used up: lower --rate or raise --sensors")
        messages = self.sim.frame(self.t_s, t1).messages()
        self.t_s = t1
        return messages


class Pump(threading.Thread):
    """Publishes ``source`` at ``rate`` messages/s (``None``: as fast as the broker acknowledges)
    for ``duration_s``, then waits for every PUBACK."""

    def __init__(
        self,
        publisher: DrillPublisher,
        source: Source,
        rate: float | None,
        duration_s: float,
    ) -> None:
        super().__init__(daemon=True)
        self.publisher = publisher
        self.source = source
        self.rate = rate
        self.duration_s = duration_s
        self.stop = threading.Event()
        self.acked = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._pump()
            self.acked = self.publisher.drain(300)
        except Exception as exc:  # noqa: BLE001 (reported by the main thread)
            self.error = exc

    def _pump(self) -> None:
        started = time.monotonic()
        sent = 0
        queue: list[Message] = []
        while not self.stop.is_set():
            elapsed = time.monotonic() - started
            if elapsed >= self.duration_s:
                return
            if not queue:
                queue = self.source.next(self.rate or 10_000.0)
                queue.reverse()
            if self.rate is not None:
                ahead = sent / self.rate - elapsed
                if ahead > 0:
                    time.sleep(min(ahead, 0.05))
                    continue
            message = queue.pop()
            self.publisher.publish(message.topic, message.payload, message.readings)
            sent += 1


@dataclass
class Sample:
    t_s: float  # since the soak (after the capacity step) started
    rss_mib: float | None  # the worker's VmRSS
    worker_cpu_percent: float  # of one core, since the previous sample
    broker_rss_mib: float | None
    published: int  # readings sent (the soak's and the capacity step's)
    acked: int  # ... acknowledged by the broker
    stored: int  # readings newly stored by the worker
    lag: int  # published - stored
    rejects: int
    worker_unacked: int  # messages in the worker awaiting their commit

    def line(self) -> str:
        rss = f"{self.rss_mib:6.1f}" if self.rss_mib is not None else "  gone"
        return (
            f"t={self.t_s:7.1f} s  RSS {rss} MiB  CPU {self.worker_cpu_percent:5.1f}%  "
            f"published {self.published:>11,}  stored {self.stored:>11,}  "
            f"lag {self.lag:>8,}  rejects {self.rejects}"
        )


@dataclass
class SoakResult:
    started_utc: str
    config: dict[str, Any]
    sensors: int
    readings_per_message: float
    simulated_start_utc: str
    rate_source: str  # "given" or "measured"
    capacity: dict[str, Any] | None
    rate_messages_per_s: float
    rate_readings_per_s: float
    achieved_messages_per_s: float
    warmup_s: float
    samples: list[Sample]
    baseline_rss_mib: float | None
    max_rss_after_warmup_mib: float | None
    min_rss_after_warmup_mib: float | None
    rss_growth_percent: float | None
    max_lag: int
    published: int  # readings acknowledged by the broker, capacity step included
    stored: int  # rows in readings at the end
    lost: int
    rejects: int
    drain_s: float
    database_mib: float
    worker: WorkerStats | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


class Probe:
    """Samples the worker, the broker and the publisher."""

    def __init__(
        self, worker: WorkerProcess, metrics_port: int, state: StackState, pub: DrillPublisher
    ) -> None:
        self.worker, self.port, self.state, self.pub = worker, metrics_port, state, pub
        self.metrics: dict[str, float] = {}
        self.cpu = cpu_seconds(worker.pid)
        self.at = time.monotonic()

    def stored(self) -> int:
        self.refresh()
        return int(self.metrics.get("pantau_ingest_inserted_total", 0))

    def refresh(self) -> None:
        # A busy or gone worker keeps its last figures (its RSS says whether it is gone).
        with contextlib.suppress(OSError):
            self.metrics = scrape_metrics(self.port)

    def sample(self, t_s: float) -> Sample:
        stored = self.stored()
        now, cpu = time.monotonic(), cpu_seconds(self.worker.pid)
        percent = 100 * (cpu - self.cpu) / max(now - self.at, 1e-9)
        self.cpu, self.at = cpu, now
        broker = self.state.mosquitto_pid
        return Sample(
            t_s=round(t_s, 1),
            rss_mib=round(r, 1) if (r := rss_mib(self.worker.pid)) is not None else None,
            worker_cpu_percent=round(percent, 1),
            broker_rss_mib=round(b, 1) if broker and (b := rss_mib(broker)) else None,
            published=self.pub.sent_readings,
            acked=self.pub.acked_readings,
            stored=stored,
            lag=self.pub.sent_readings - stored,
            rejects=int(self.metrics.get("pantau_ingest_rejects_total", 0)),
            worker_unacked=int(self.metrics.get("pantau_ingest_unacked_messages", 0)),
        )

    def drained(self) -> bool:
        return self.pub.unacked == 0 and self.stored() >= self.pub.acked_readings


def measure_capacity(
    probe: Probe, publisher: DrillPublisher, source: Source, seconds: float
) -> dict[str, Any]:
    """Publish flat out for ``seconds``; the worker's stored rate over the last 80 % of them."""
    say(f"measuring capacity: publishing as fast as the broker acknowledges for {seconds:g} s")
    pump = Pump(publisher, source, None, seconds)
    started = time.monotonic()
    pump.start()
    time.sleep(0.2 * seconds)
    probe.refresh()
    t0, m0 = time.monotonic(), dict(probe.metrics)
    pump.join(timeout=seconds + 310)
    probe.refresh()
    t1, m1 = time.monotonic(), dict(probe.metrics)
    if pump.error is not None:
        raise RuntimeError(f"the publisher failed: {pump.error}") from pump.error
    stored_per_s = (
        m1.get("pantau_ingest_inserted_total", 0) - m0.get("pantau_ingest_inserted_total", 0)
    ) / (t1 - t0)
    messages_per_s = (
        m1.get("pantau_ingest_messages_total", 0) - m0.get("pantau_ingest_messages_total", 0)
    ) / (t1 - t0)
    backlog = publisher.sent_readings - int(m1.get("pantau_ingest_inserted_total", 0))
    published_per_s = publisher.sent_messages / (t1 - started)
    drain_start = time.monotonic()
    wait_until(probe.drained, probe.stored, stall_s=STALL_S, cap_s=600)
    # A backlog of more than a second of work at the end: the worker was the bottleneck.
    bound = "worker" if backlog > stored_per_s else "publisher (the worker kept up)"
    result = {
        "seconds": seconds,
        "readings_per_s": round(stored_per_s),
        "messages_per_s": round(messages_per_s),
        "published_messages_per_s": round(published_per_s),
        "backlog_readings_at_end": backlog,
        "drain_s": round(time.monotonic() - drain_start, 1),
        "bound_by": bound,
    }
    say(
        f"capacity {stored_per_s:,.0f} readings/s ({messages_per_s:,.0f} messages/s), "
        f"bound by the {bound}; backlog drained in {result['drain_s']} s"
    )
    return result


def rss_verdict(samples: Sequence[Sample], warmup_s: float) -> tuple[float | None, list[float]]:
    """The RSS at the end of the warm-up, and every RSS figure after it."""
    after = [s.rss_mib for s in samples if s.t_s >= warmup_s and s.rss_mib is not None]
    return (after[0] if after else None), after


def _soak(
    config: SoakConfig,
    probe: Probe,
    publisher: DrillPublisher,
    source: Source,
    rate: float,
) -> tuple[list[Sample], float]:
    """Publish at ``rate`` for the duration, one sample per period; returns the samples and the
    messages/s achieved."""
    say(
        f"soak: {rate:,.0f} messages/s for {config.minutes:g} min, "
        f"a sample every {config.sample_s:g} s"
    )
    sent_before = publisher.sent_messages
    pump = Pump(publisher, source, rate, config.duration_s)
    samples: list[Sample] = []
    started = time.monotonic()
    probe.sample(0.0)  # CPU baseline
    pump.start()
    k = 1
    while k * config.sample_s <= config.duration_s + 1e-6:
        due = started + k * config.sample_s
        while time.monotonic() < due and pump.is_alive():
            time.sleep(min(0.2, max(due - time.monotonic(), 0)))
        if not pump.is_alive():
            break  # the publisher failed
        samples.append(probe.sample(time.monotonic() - started))
        print(samples[-1].line(), flush=True)
        if samples[-1].rss_mib is None:
            pump.stop.set()  # the worker is gone
            break
        k += 1
    pump.join(timeout=config.duration_s + 400)
    if pump.error is not None:
        raise RuntimeError(f"the publisher failed: {pump.error}") from pump.error
    achieved = (publisher.sent_messages - sent_before) / max(time.monotonic() - started, 1e-9)
    return samples, achieved


def run_soak(state: StackState, config: SoakConfig, scratch: Path) -> SoakResult:
    """The soak on ``state``'s servers, in a database of its own."""
    started = utc_stamp()
    fleet = scale_fleet(load_fleet(), config.sensors)
    run_id = uuid.uuid4().hex[:8]
    root = f"soak{run_id}/v1"
    port = free_port()
    with fresh_database(state, "soak", fleet) as url:
        worker = spawn_worker(
            state.mqtt_url,
            url,
            root,
            f"soak-{run_id}",
            scratch,
            {"PANTAU_INGEST_METRICS_PORT": str(port)},
        )
        try:
            wait_subscribed([worker], timeout_s=60)
            time.sleep(0.5)  # the SUBACK follows the log line
            return _run(state, config, url, worker, port, fleet, root, started)
        finally:
            worker.stop()
            reap(worker)


def _run(
    state: StackState,
    config: SoakConfig,
    url: str,
    worker: WorkerProcess,
    port: int,
    fleet: Fleet,
    root: str,
    started: str,
) -> SoakResult:
    source = Source(fleet, config.seed, root, config)
    publisher = DrillPublisher(state.mqtt_url, "soak-pub")
    probe = Probe(worker, port, state, publisher)
    try:
        capacity = None
        if config.rate is None:
            capacity = measure_capacity(probe, publisher, source, config.capacity_s)
            rate = max(capacity["messages_per_s"] / 2, 1.0)
        else:
            rate = config.rate
        samples, achieved = _soak(config, probe, publisher, source, rate)
        drain_start = time.monotonic()
        drained = wait_until(probe.drained, probe.stored, stall_s=STALL_S, cap_s=900)
        drain_s = time.monotonic() - drain_start
        final = probe.sample(samples[-1].t_s + drain_s if samples else drain_s)
        say(f"drained in {drain_s:.1f} s: {final.line()}")
    finally:
        publisher.close()
    stats = worker.stop()
    with psycopg.connect(url, autocommit=True) as conn:
        stored = _int(conn, "SELECT count(*) FROM readings")
        rejects = _int(conn, "SELECT count(*) FROM rejects")
        db_bytes = _int(conn, "SELECT pg_database_size(current_database())")
    published = publisher.acked_readings
    baseline, after = rss_verdict(samples, config.warmup_s)
    readings_per_message = publisher.sent_readings / max(publisher.sent_messages, 1)
    result = SoakResult(
        started_utc=started,
        config=asdict(config),
        sensors=len(fleet.sensors),
        readings_per_message=round(readings_per_message, 2),
        simulated_start_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(source.start_s)),
        rate_source="given" if config.rate is not None else "measured",
        capacity=capacity,
        rate_messages_per_s=round(rate, 1),
        rate_readings_per_s=round(rate * readings_per_message, 1),
        achieved_messages_per_s=round(achieved, 1),
        warmup_s=config.warmup_s,
        samples=samples,
        baseline_rss_mib=baseline,
        max_rss_after_warmup_mib=max(after, default=None),
        min_rss_after_warmup_mib=min(after, default=None),
        rss_growth_percent=(
            round(100 * (max(after) / baseline - 1), 1) if baseline and after else None
        ),
        max_lag=max((s.lag for s in samples), default=0),
        published=published,
        stored=stored,
        lost=published - stored,
        rejects=rejects,
        drain_s=round(drain_s, 1),
        database_mib=round(db_bytes / 2**20, 1),
        worker=stats,
    )
    f = result.failures
    if publisher.sent_readings != published:
        f.append(f"the broker acknowledged {published:,} of {publisher.sent_readings:,} readings")
    if not drained:
        f.append("the backlog did not drain")
    if result.lost:
        f.append(f"{result.lost:,} readings lost ({stored:,} stored of {published:,} published)")
    if any(s.rss_mib is None for s in samples) or stats.exit_code != 0:
        f.append(f"the worker died or failed (exit code {stats.exit_code}):\n{worker.tail(8)}")
    if baseline is None:
        f.append("no RSS sample after the warm-up")
    elif max(after) > RSS_LIMIT * baseline:
        f.append(
            f"RSS rose to {max(after):.1f} MiB, more than 10 % above {baseline:.1f} MiB "
            f"at the end of the warm-up"
        )
    return result


def _int(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def render(r: SoakResult) -> str:
    cap = r.capacity
    how = (
        f"half the measured capacity ({cap['readings_per_s']:,} readings/s, "
        f"{cap['messages_per_s']:,} messages/s over {cap['seconds']:g} s, bound by the "
        f"{cap['bound_by']})"
        if cap
        else "given with --rate"
    )
    lines = [
        f"Pantau soak drill, {r.started_utc}",
        f"  fleet: Jepara scaled to {r.sensors:,} devices, one report per message "
        f"({r.readings_per_message} readings on average), QoS 1; simulated time from "
        f"{r.simulated_start_utc}",
        f"  rate: {r.rate_messages_per_s:,.0f} messages/s = {r.rate_readings_per_s:,.0f} "
        f"readings/s, {how}; achieved {r.achieved_messages_per_s:,.0f} messages/s",
        f"  {len(r.samples)} samples; warm-up {r.warmup_s:g} s",
        f"  worker RSS: {r.baseline_rss_mib} MiB at the end of the warm-up, then "
        f"{r.min_rss_after_warmup_mib}-{r.max_rss_after_warmup_mib} MiB "
        f"(growth {r.rss_growth_percent} %, limit 10 %)",
        f"  lag: at most {r.max_lag:,} readings published and not yet stored; drained in "
        f"{r.drain_s} s",
        f"  published {r.published:,} readings, stored {r.stored:,}, lost {r.lost:,}, "
        f"rejects {r.rejects}; database {r.database_mib:,.0f} MiB",
    ]
    verdict = "PASS" if r.passed else "FAIL"
    lines.append(
        f"{verdict}: {r.lost:,} lost of {r.published:,}; RSS {r.baseline_rss_mib} -> max "
        f"{r.max_rss_after_warmup_mib} MiB ({r.rss_growth_percent} %)"
    )
    lines += [f"  - {failure}" for failure in r.failures]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = SoakConfig()
    parser.add_argument("--minutes", type=float, default=d.minutes)
    parser.add_argument(
        "--rate", type=float, help="messages/s (default: half the capacity measured first)"
    )
    parser.add_argument("--sensors", type=int, default=d.sensors, help="fleet size")
    parser.add_argument("--capacity-s", type=float, default=d.capacity_s)
    parser.add_argument("--sample-s", type=float, default=d.sample_s)
    parser.add_argument("--fsync", action="store_true", help="run PostgreSQL with fsync on")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.sample_s <= 0 or args.capacity_s <= 0:
        parser.error("--minutes, --sample-s and --capacity-s must be positive")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    if args.sensors < 3:
        parser.error("--sensors must be at least 3 (one of each kind)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = SoakConfig(
        minutes=args.minutes,
        rate=args.rate,
        sensors=args.sensors,
        capacity_s=args.capacity_s,
        sample_s=args.sample_s,
    )
    return run_drill(
        "soak", args.fsync, lambda local, scratch: run_soak(_state(local), config, scratch), render
    )


def _state(local: LocalStack) -> StackState:
    state = local.read_state()
    assert state is not None
    return state


if __name__ == "__main__":
    sys.exit(main())
