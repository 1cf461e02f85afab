"""(d) Publish-to-commit latency at a steady, partial load.

A paho-mqtt publisher (Pantau's own ``MqttSink``, QoS 1) in a thread of this process sends single
readings at a fixed rate, each stamped with the wall-clock time of its publish call. Latency is
``received_at - ts`` per stored reading: ``received_at`` defaults to the database's ``now()``,
which is the start of the worker's write transaction, so the commit itself is not included.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.harness import PROBE_SENSOR, Ingest, bin_ids, ingest_running
from bench.procs import CpuMeter
from bench.workers import WorkerStats
from bench.workloads import fill_pct, now_ms
from ops.stack.local import StackState
from pantau.mqtt import MqttEndpoint
from pantau.registry.fleet import Fleet
from simulators.fleet import Message
from simulators.publish import MqttSink

LATENCY_SQL = """SELECT count(*),
       percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY ms),
       avg(ms), max(ms)
FROM (SELECT (extract(epoch FROM r.received_at - r.ts) * 1000)::float8 AS ms
      FROM readings r JOIN sensors s USING (sensor_key)
      WHERE s.sensor_id <> %s) AS per_reading"""


# The median latency of the readings published in each third of the window: a backlog that
# grows shows as rising thirds, a few slow commits do not.
THIRDS_SQL = """SELECT third, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)
FROM (SELECT ntile(3) OVER (ORDER BY r.ts) AS third,
             (extract(epoch FROM r.received_at - r.ts) * 1000)::float8 AS ms
      FROM readings r JOIN sensors s USING (sensor_key)
      WHERE s.sensor_id <> %s) AS per_reading
GROUP BY third ORDER BY third"""


@dataclass(frozen=True)
class LatencyResult:
    workers: int
    target_rate: float
    achieved_rate: float
    duration_s: float
    messages: int
    committed: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    p50_by_third_ms: list[float]
    cpu_percent: dict[str, float]
    worker_stats: list[WorkerStats]


class PacedPublisher(threading.Thread):
    """Publishes ``total`` single readings at ``rate`` per second, round robin over topics."""

    def __init__(self, mqtt_url: str, topics: list[str], rate: float, total: int) -> None:
        super().__init__(daemon=True)
        self.endpoint = MqttEndpoint.parse(mqtt_url)
        self.topics, self.rate, self.total = topics, rate, total
        self.elapsed_s = 0.0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            sink = MqttSink(self.endpoint, f"bench-latency-{uuid.uuid4().hex[:8]}", 1000)
            start = time.monotonic()
            self._pace(sink, start)
            sink.close()
            self.elapsed_s = time.monotonic() - start
        except Exception as exc:  # noqa: BLE001 (reported by the main thread)
            self.error = exc

    def _pace(self, sink: MqttSink, start: float) -> None:
        last_ts = [0] * len(self.topics)
        sent = 0
        while sent < self.total:
            due = min(self.total, int((time.monotonic() - start) * self.rate) + 1)
            while sent < due:
                i = sent % len(self.topics)
                ts = last_ts[i] = max(now_ms(), last_ts[i] + 1)  # one key per reading
                payload = f'{{"ts": {ts}, "fill_pct": {fill_pct(sent)}}}'.encode()
                sink.send(Message(self.topics[i], payload, ts, 1))
                sent += 1
            time.sleep(0.002)


def _measure(ingest: Ingest, fleet: Fleet, rate: float, duration_s: float) -> LatencyResult:
    total = max(1, int(rate * duration_s))
    topics = [ingest.topic(s) for s in bin_ids(fleet)]
    publisher = PacedPublisher(ingest.state.mqtt_url, topics, rate, total)
    meter = CpuMeter(ingest.cpu_probes())
    start = time.perf_counter()
    publisher.start()
    publisher.join(timeout=duration_s * 3 + 30)
    if publisher.error is not None or publisher.is_alive():
        raise RuntimeError(f"the paced publisher failed: {publisher.error or 'still running'}")
    progress = ingest.wait_for_count(ingest.probes + total, stall_s=20, cap_s=120)
    cpu = meter.percent(progress.seen - start)
    row = ingest.conn.execute(LATENCY_SQL, (PROBE_SENSOR,)).fetchone()
    thirds = ingest.conn.execute(THIRDS_SQL, (PROBE_SENSOR,)).fetchall()
    assert row is not None
    p50, p90, p99 = (float(x) for x in row[1]) if row[1] else (0.0, 0.0, 0.0)
    return LatencyResult(
        workers=len(ingest.workers),
        target_rate=round(rate),
        achieved_rate=round(total / publisher.elapsed_s),
        duration_s=round(publisher.elapsed_s, 2),
        messages=total,
        committed=int(row[0]),
        p50_ms=round(p50, 1),
        p90_ms=round(p90, 1),
        p99_ms=round(p99, 1),
        mean_ms=round(float(row[2] or 0), 1),
        max_ms=round(float(row[3] or 0), 1),
        p50_by_third_ms=[round(float(t[1]), 1) for t in thirds],
        cpu_percent=cpu,
        worker_stats=ingest.stop(),
    )


def run_latency(
    state: StackState,
    fleet: Fleet,
    rate: float,
    duration_s: float,
    n_workers: int,
    scratch: Path,
) -> LatencyResult:
    with ingest_running(state, fleet, n_workers, scratch) as ingest:
        return _measure(ingest, fleet, rate, duration_s)
