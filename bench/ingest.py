"""Ingest benchmark: broker and database limits, Pantau end to end, latency, worker memory.

Run from the repository root::

    .venv/bin/python -m bench.ingest            # full run, about 2 minutes on 2 cores
    .venv/bin/python -m bench.ingest --quick    # small sizes, under a minute (smoke test)

Everything runs on a private Mosquitto and PostgreSQL + TimescaleDB started for this run on free
ports of 127.0.0.1 (through Pantau's stack code) and removed afterwards. The report is printed
and written as JSON to bench/results/ingest-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import workers as worker_procs
from bench.broker import BrokerResult, measure_broker
from bench.database import METHODS, DbResult, measure_db, synthetic_readings
from bench.e2e import E2EResult, run_e2e
from bench.harness import bench_fleet
from bench.latency import LatencyResult, run_latency
from bench.procs import OTHER, background_percent, machine
from bench.report import Results, render
from bench.stack import fresh_database, private_stack, server_versions
from bench.workloads import Workload
from ingest.settings import IngestSettings
from ops.stack.local import StackState
from ops.stack.mosquitto import BrokerConfig

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Flag a measurement when the rest of the machine used this much CPU (in % of one core); on
# an otherwise idle machine "other" stays under ~15%.
OTHER_WARN_PERCENT = 30.0
STARTED = time.monotonic()


@dataclass(frozen=True)
class Sizes:
    broker_messages: int
    chunk_lines: int  # single-reading messages per mosquitto_pub process
    publishers: int  # mosquitto_pub processes at a time
    db_rows: int
    db_batches: tuple[int, ...]
    single_messages: int
    batch_messages: int
    batch_readings: int
    batch_chunk_messages: int
    latency_s: float
    sensors: int


FULL = Sizes(200_000, 10_000, 4, 1_000_000, (5_000, 50_000), 200_000, 5_000, 100, 250, 15, 1_000)
QUICK = Sizes(20_000, 2_500, 4, 100_000, (5_000, 50_000), 10_000, 400, 100, 40, 3, 1_000)


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def worker_counts(text: str) -> tuple[int, ...]:
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 1,2,3") from None
    if not counts or counts[0] < 1 or counts[-1] > 8:
        raise argparse.ArgumentTypeError("worker counts must be between 1 and 8")
    return tuple(counts)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument(
        "--workers", type=worker_counts, default=(1, 2, 3), help="worker counts (default 1,2,3)"
    )
    parser.add_argument("--fsync", action="store_true", help="run PostgreSQL with fsync on")
    parser.add_argument(
        "--mqtt-version",
        choices=["5", "3.1.1"],
        default="5",
        help="MQTT version of the workers' connections (PANTAU_INGEST_MQTT_VERSION; default 5)",
    )
    return parser.parse_args(argv)


def run_broker(state: StackState, scratch: Path, sizes: Sizes) -> list[BrokerResult]:
    workload = Workload("broker", sizes.broker_messages, 1, sizes.chunk_lines)
    results = []
    for qos in (1, 0):
        say(f"(a) broker, QoS {qos}: {workload.messages:,} messages")
        results.append(measure_broker(state, scratch, workload, qos=qos, parallel=sizes.publishers))
        say(f"    {results[-1].messages_per_s:,.0f} msg/s")
    return results


def run_database(state: StackState, sizes: Sizes) -> list[DbResult]:
    readings = synthetic_readings(sizes.db_rows, sizes.sensors)
    results = []
    for method in METHODS:
        for batch in sizes.db_batches:
            say(f"(b) database, {method}, batches of {batch:,}: {sizes.db_rows:,} rows")
            results.append(measure_db(state, method, readings, batch))
            say(f"    {results[-1].rows_per_s:,.0f} rows/s")
    return results


def workloads(sizes: Sizes) -> list[Workload]:
    return [
        Workload("single", sizes.single_messages, 1, sizes.chunk_lines),
        Workload(
            f"batch{sizes.batch_readings}",
            sizes.batch_messages,
            sizes.batch_readings,
            sizes.batch_chunk_messages,
        ),
    ]


def limit_for(
    workload: Workload, broker: Sequence[BrokerResult], db: Sequence[DbResult]
) -> tuple[str, float]:
    """Single readings compare with the broker's QoS 1 rate, batches with the upsert rate at
    Pantau's batch size (or the smallest measured)."""
    if workload.per_message == 1:
        return "broker QoS 1", next(b.messages_per_s for b in broker if b.qos == 1)
    upserts = sorted((d for d in db if d.method == "upsert"), key=lambda d: d.batch_rows)
    default = IngestSettings.model_fields["batch_max_readings"].default
    chosen = next((d for d in upserts if d.batch_rows == default), upserts[0])
    return f"upsert @{chosen.batch_rows:,}", chosen.rows_per_s


def run_end_to_end(
    state: StackState,
    scratch: Path,
    sizes: Sizes,
    workers: Sequence[int],
    limits: tuple[Sequence[BrokerResult], Sequence[DbResult]],
) -> list[E2EResult]:
    fleet = bench_fleet(sizes.sensors)
    results = []
    for workload in workloads(sizes):
        for n_workers in workers:
            say(f"(c) end to end, {workload.name}, {n_workers} worker(s): {workload.readings:,}")
            e = run_e2e(state, fleet, workload, n_workers, scratch, sizes.publishers)
            e.limit, e.limit_per_s = limit_for(workload, *limits)
            e.ratio = e.readings_per_s / e.limit_per_s
            say(f"    {e.readings_per_s:,.0f} readings/s in {e.seconds:.1f} s")
            for note in e.notes:
                say(f"    {note}")
            results.append(e)
    return results


def run_half_load(
    state: StackState, scratch: Path, sizes: Sizes, e2e: Sequence[E2EResult]
) -> LatencyResult | None:
    fewest = min(e.workers for e in e2e)
    full = next(e for e in e2e if e.workload == "single" and e.workers == fewest)
    if not full.complete:
        say("(d) latency skipped: the single-reading run it scales from did not complete")
        return None
    rate = full.readings_per_s / 2
    say(f"(d) latency, {fewest} worker(s): {rate:,.0f} readings/s for {sizes.latency_s} s")
    result = run_latency(state, bench_fleet(sizes.sensors), rate, sizes.latency_s, fewest, scratch)
    say(f"    p50 {result.p50_ms} ms, p99 {result.p99_ms} ms")
    return result


def settings_of(sizes: Sizes, workers: Sequence[int]) -> dict[str, Any]:
    ingest = IngestSettings.model_fields
    return asdict(sizes) | {
        "workers": list(workers),
        "worker_batch_max_readings": ingest["batch_max_readings"].default,
        "worker_batch_max_age_ms": ingest["batch_max_age_ms"].default,
        "worker_receive_maximum": ingest["receive_maximum"].default,
    }


def notes(r: Results) -> list[str]:
    s = r.settings
    out = [
        f"Workers run with Pantau's default settings: batches of up to "
        f"{s['worker_batch_max_readings']:,} readings or {s['worker_batch_max_age_ms']} ms, "
        f"MQTT receive maximum {s['worker_receive_maximum']}; 1 worker subscribes directly, "
        "N > 1 share $share/bench/...",
        f"End-to-end traffic: {s['sensors']:,} registered bins; each publisher chunk goes to "
        "one bin's topic (single: "
        f"{s['chunk_lines']:,} messages per chunk, batches: {s['batch_chunk_messages']} "
        "messages per chunk), timestamps one second apart",
        "The broker is configured by Pantau's stack (persistence on, autosave every 30 s, "
        f"max_inflight_messages {BrokerConfig(port=0, directory=Path('.')).max_inflight}); "
        f"mosquitto_pub/sub use MQTT 3.1.1, the workers MQTT {worker_procs.MQTT_VERSION}",
        "Database limits write synthetic rows (readings has no foreign key), every sensor once "
        "per second, in arrival order",
    ]
    out += [f"INCOMPLETE: {e.workload} with {e.workers} worker(s)" for e in r.e2e if not e.complete]
    return out + interference(r)


def interference(r: Results) -> list[str]:
    """Warnings for measurements during which other processes used much CPU."""
    measured: list[tuple[str, dict[str, float]]] = [
        (f"broker QoS {b.qos}", b.cpu_percent) for b in r.broker
    ]
    measured += [(f"database {d.method} @{d.batch_rows:,}", d.cpu_percent) for d in r.database]
    measured += [(f"e2e {e.workload} x{e.workers}", e.cpu_percent) for e in r.e2e]
    if r.latency is not None:
        measured.append(("latency", r.latency.cpu_percent))
    baseline = float(r.machine["background_cpu_percent"])
    return [
        f"DISTURBED: the rest of the machine used {cpu[OTHER]:.0f}% CPU during {name} "
        f"(before the run: {baseline:.0f}%)"
        for name, cpu in measured
        if cpu.get(OTHER, 0.0) >= OTHER_WARN_PERCENT
    ]


def code_version() -> str:
    """The commit this tree is at, and whether tracked files differ from it (read-only git)."""
    git = ["git", "--no-optional-locks", "-C", str(Path(__file__).resolve().parent.parent)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    if not head:
        return "unknown (not a git checkout)"
    return f"commit {head}" + (f" + uncommitted changes in {len(changed)} files" if changed else "")


def write_json(r: Results) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"ingest-{r.started_utc.replace(':', '').replace('-', '')}.json"
    path.write_text(json.dumps(asdict(r), indent=2) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    worker_procs.MQTT_VERSION = args.mqtt_version
    sizes = QUICK if args.quick else FULL
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    host = machine() | {"background_cpu_percent": str(background_percent())}
    say(f"starting a private broker and database (fsync {'on' if args.fsync else 'off'})")
    with private_stack(fsync=args.fsync) as state:
        scratch = Path(state.state_dir) / "bench"
        scratch.mkdir()
        with fresh_database(state, "versions") as url:
            versions = server_versions(url) | {"code": code_version()}
        broker = run_broker(state, scratch, sizes)
        database = run_database(state, sizes)
        e2e = run_end_to_end(state, scratch, sizes, args.workers, (broker, database))
        latency = run_half_load(state, scratch, sizes, e2e)
    results = Results(
        started_utc=started,
        mode="quick" if args.quick else "full",
        fsync=args.fsync,
        total_s=round(time.monotonic() - STARTED, 1),
        machine=host,
        versions=versions,
        settings=settings_of(sizes, args.workers),
        broker=broker,
        database=database,
        e2e=e2e,
        latency=latency,
        notes=[],
    )
    results.notes = notes(results)
    print(render(results))
    say(f"written to {write_json(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
