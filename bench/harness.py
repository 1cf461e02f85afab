"""A fresh database with a fleet, N ingest workers on a topic root of their own, and a probe.

Before a measurement starts, one probe reading per worker is published and waited for, so the
workers are known to be subscribed, connected to the database and writing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow

from bench.clients import publish_chunks, write_chunk
from bench.procs import (
    CpuProbe,
    cpu_seconds,
    family_cpu_seconds,
    own_cpu_seconds,
    reaped_children_cpu_seconds,
)
from bench.stack import fresh_database
from bench.workers import WorkerProcess, WorkerStats, wait_subscribed, worker_env
from bench.workloads import now_ms
from ops.stack.local import StackState
from pantau.registry.fleet import Fleet, parse_fleet

PROBE_SENSOR = "BENCH-PROBE"
SHARED_GROUP = "bench"
POLL_S = 0.2


def bench_fleet(sensors: int, zones: int = 10) -> Fleet:
    """``sensors`` waste bins spread over ``zones`` villages, plus the probe's own bin."""
    doc = {
        "fleet": {"name": "bench"},
        "zones": [
            {"id": f"BZ{z:02d}", "name": f"Bench {z}", "kind": "village", "lat": -6.6, "lon": 110.7}
            for z in range(zones)
        ],
        "groups": [
            {
                "kind": "waste_bin",
                "id_prefix": "WB",
                "zones": [f"BZ{z:02d}" for z in range(zones)],
                "count": -(-sensors // zones),
            }
        ],
        "sensors": [{"id": PROBE_SENSOR, "kind": "waste_bin", "zone": "BZ00"}],
    }
    return parse_fleet(doc, source="bench")


def bin_ids(fleet: Fleet) -> list[str]:
    return [s.id for s in fleet.sensors if s.id != PROBE_SENSOR]


@dataclass
class Progress:
    count: int  # readings committed
    seen: float  # perf_counter() of the poll that saw ``count``
    longest_gap_s: float = 0.0  # longest time without a new commit once commits began
    polls: int = 0
    poll_s: float = 0.0  # time spent in the count queries

    @property
    def mean_poll_ms(self) -> float:
        return 1000 * self.poll_s / max(self.polls, 1)


@dataclass
class Ingest:
    state: StackState
    url: str
    root: str
    workers: list[WorkerProcess]
    conn: psycopg.Connection[TupleRow]
    scratch: Path
    probes: int = 0

    def topic(self, sensor_id: str) -> str:
        return f"{self.root}/waste_bin/{sensor_id}"

    def count(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM readings").fetchone()
        return int(row[0]) if row else 0

    def wait_for_count(self, target: int, stall_s: float, cap_s: float) -> Progress:
        """Poll until ``target`` readings are committed (or ``stall_s`` without progress, or
        ``cap_s`` in all, or every worker has exited)."""
        deadline = time.monotonic() + cap_s
        progress = Progress(count=self.count(), seen=time.perf_counter())
        changed = progress.seen
        while progress.count < target:
            time.sleep(POLL_S)
            before = time.perf_counter()
            count, now = self.count(), time.perf_counter()
            progress.polls, progress.poll_s = progress.polls + 1, progress.poll_s + now - before
            if count != progress.count:
                if progress.count > 0:
                    progress.longest_gap_s = max(progress.longest_gap_s, now - changed)
                changed = now
            progress.count, progress.seen = count, now
            if now - changed > stall_s or time.monotonic() > deadline or not self.alive():
                break
        return progress

    def alive(self) -> bool:
        return any(w.proc.poll() is None for w in self.workers)

    def failures(self) -> list[str]:
        """The last log lines of every worker that has exited with an error."""
        return [
            f"worker {w.client_id} exited with {w.proc.returncode}:\n{w.tail(8)}"
            for w in self.workers
            if w.proc.poll() not in (None, 0)
        ]

    def probe(self) -> None:
        """One reading per worker through the whole path; raise if they do not arrive."""
        n = len(self.workers)
        lines = [f'{{"ts": {now_ms() - 3_600_000 + i}, "fill_pct": 1}}' for i in range(n)]
        chunk = write_chunk(self.scratch, self.topic(PROBE_SENSOR), lines)
        publish_chunks(self.state.mqtt_url, [chunk], qos=1, parallel=1)
        self.probes += n
        if self.wait_for_count(self.probes, stall_s=30, cap_s=30).count < self.probes:
            logs = "\n".join(w.tail() for w in self.workers)
            raise RuntimeError(f"the probe readings did not arrive; worker logs:\n{logs}")

    def cpu_probes(self) -> dict[str, CpuProbe]:
        """CPU time of: the workers, the broker, PostgreSQL, reaped publishers, this process."""
        assert self.state.mosquitto_pid is not None
        assert self.state.postgres_pid is not None
        broker, postmaster = self.state.mosquitto_pid, self.state.postgres_pid
        pids = [w.pid for w in self.workers]
        return {
            "workers": lambda: sum(cpu_seconds(pid) for pid in pids),
            "broker": lambda: cpu_seconds(broker),
            "postgres": lambda: family_cpu_seconds(postmaster),
            "publishers": reaped_children_cpu_seconds,
            "bench": own_cpu_seconds,
        }

    def stop(self) -> list[WorkerStats]:
        return [w.stop() for w in self.workers]


@contextmanager
def ingest_running(
    state: StackState, fleet: Fleet, n_workers: int, scratch: Path
) -> Iterator[Ingest]:
    """Workers subscribed and probed on a fresh database; stopped and dropped on exit."""
    run_id = uuid.uuid4().hex[:8]
    root = f"bench{run_id}/v1"
    group = SHARED_GROUP if n_workers > 1 else ""
    with fresh_database(state, "e2e", fleet) as url, psycopg.connect(url, autocommit=True) as conn:
        env = worker_env(url, state.mqtt_url, root)
        workers = [
            WorkerProcess(f"bench-{run_id}-{i}", group, env, scratch) for i in range(n_workers)
        ]
        try:
            wait_subscribed(workers, timeout_s=60)
            time.sleep(0.5)  # the SUBACK follows the log line
            ingest = Ingest(state, url, root, workers, conn, scratch)
            ingest.probe()
            yield ingest
        finally:
            for worker in workers:
                worker.stop()
