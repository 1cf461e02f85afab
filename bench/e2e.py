"""(c) Pantau end to end: C-client publishers -> broker -> `pantau ingest` workers -> database.

The clock starts when the first publisher starts and stops at the first poll of
``SELECT count(*) FROM readings`` (every 0.2 s) that sees every reading committed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.clients import Chunk, PublishThread
from bench.harness import Ingest, Progress, bin_ids, ingest_running
from bench.procs import CpuMeter
from bench.workers import WorkerStats
from bench.workloads import Workload, write_workload
from ops.stack.local import StackState
from pantau.registry.fleet import Fleet


@dataclass
class E2EResult:
    workload: str
    workers: int
    messages: int
    readings: int
    committed: int
    complete: bool
    seconds: float
    publish_s: float | None
    slowest_publisher_s: float
    readings_per_s: float
    messages_per_s: float
    longest_gap_s: float
    mean_poll_ms: float
    cpu_percent: dict[str, float]
    worker_stats: list[WorkerStats]
    limit: str = ""
    limit_per_s: float = 0.0
    ratio: float = 0.0
    notes: list[str] = field(default_factory=list)


STALL_S = 65.0  # give up after this long without a new commit (longer than MQTT keepalives)


@dataclass(frozen=True)
class Timed:
    progress: Progress
    seconds: float  # first publish -> the poll that saw every reading
    publish_s: float | None  # first publish -> last publisher exited
    slowest_publisher_s: float
    cpu_percent: dict[str, float]


def _publish_and_wait(ingest: Ingest, chunks: list[Chunk], target: int, parallel: int) -> Timed:
    meter = CpuMeter(ingest.cpu_probes())
    publisher = PublishThread(ingest.state.mqtt_url, chunks, parallel)
    start = time.perf_counter()
    publisher.start()
    progress = ingest.wait_for_count(target, stall_s=STALL_S, cap_s=900)
    seconds = progress.seen - start
    # Read CPU now: a publisher that lingers after delivering would stretch the window.
    cpu = meter.percent(seconds)
    publisher.join(timeout=300)
    if publisher.error is not None:
        raise RuntimeError(f"a publisher failed: {publisher.error}") from publisher.error
    return Timed(
        progress=progress,
        seconds=seconds,
        publish_s=publisher.finished_at - start if publisher.finished_at else None,
        slowest_publisher_s=max(publisher.lifetimes, default=0.0),
        cpu_percent=cpu,
    )


def _measure(ingest: Ingest, fleet: Fleet, workload: Workload, parallel: int) -> E2EResult:
    topics = [ingest.topic(s) for s in bin_ids(fleet)]
    chunks = write_workload(ingest.scratch, topics, workload)
    target = ingest.probes + workload.readings
    try:
        timed = _publish_and_wait(ingest, chunks, target, parallel)
    finally:
        for chunk in chunks:
            chunk.path.unlink(missing_ok=True)
    committed = timed.progress.count - ingest.probes
    stats = ingest.stop()
    return E2EResult(
        workload=workload.name,
        workers=len(ingest.workers),
        messages=workload.messages,
        readings=workload.readings,
        committed=committed,
        complete=timed.progress.count >= target,
        seconds=round(timed.seconds, 3),
        publish_s=round(timed.publish_s, 3) if timed.publish_s is not None else None,
        slowest_publisher_s=round(timed.slowest_publisher_s, 2),
        readings_per_s=round(committed / timed.seconds),
        messages_per_s=round(committed / workload.per_message / timed.seconds),
        longest_gap_s=round(timed.progress.longest_gap_s, 2),
        mean_poll_ms=round(timed.progress.mean_poll_ms, 1),
        cpu_percent=timed.cpu_percent,
        worker_stats=stats,
        notes=ingest.failures(),
    )


def run_e2e(
    state: StackState,
    fleet: Fleet,
    workload: Workload,
    n_workers: int,
    scratch: Path,
    parallel: int,
) -> E2EResult:
    with ingest_running(state, fleet, n_workers, scratch) as ingest:
        return _measure(ingest, fleet, workload, parallel)
