"""(a) The broker's limit with the C clients: mosquitto_pub -l into mosquitto_sub -C N."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.clients import PublishThread, Subscriber, publish_message
from bench.procs import CpuMeter, cpu_seconds, reaped_children_cpu_seconds
from bench.workloads import Workload, write_workload
from ops.stack.local import StackState

# Longer than mosquitto_sub's 60 s keepalive: a delivery stall that the next PINGREQ ends
# shows up as a long gap instead of a failed run.
STALL_S = 65.0


@dataclass(frozen=True)
class BrokerResult:
    qos: int
    messages: int
    received: int
    complete: bool
    seconds: float
    messages_per_s: float
    longest_gap_s: float
    slowest_publisher_s: float
    chunks: int
    parallel: int
    cpu_percent: dict[str, float]


def measure_broker(
    state: StackState, scratch: Path, workload: Workload, *, qos: int, parallel: int
) -> BrokerResult:
    """Rate = messages / (first publish start -> subscriber has received them all)."""
    root = f"bench-broker-{uuid.uuid4().hex[:8]}"
    topics = [f"{root}/data/{i}" for i in range(workload.chunks)]
    chunks = write_workload(scratch, topics, workload)
    subscriber = Subscriber(state.mqtt_url, root, qos, workload.messages)
    try:
        if not subscriber.ready.wait(15):
            raise RuntimeError("mosquitto_sub did not receive its retained probe within 15 s")
        assert state.mosquitto_pid is not None
        broker_pid = state.mosquitto_pid
        meter = CpuMeter(
            {"broker": lambda: cpu_seconds(broker_pid), "clients": reaped_children_cpu_seconds}
        )
        publisher = PublishThread(state.mqtt_url, chunks, parallel, qos)
        start = time.perf_counter()
        publisher.start()
        complete = subscriber.wait_complete(stall_s=STALL_S, cap_s=300)
        end = subscriber.done_at if subscriber.done_at is not None else time.perf_counter()
        subscriber.stop()
        cpu = meter.percent(end - start)  # now: a lingering publisher would stretch the window
        publisher.join(timeout=300)
        if publisher.error is not None:
            raise RuntimeError(f"a publisher failed: {publisher.error}") from publisher.error
    finally:
        subscriber.stop()
        publish_message(state.mqtt_url, subscriber.probe_topic, "", retain=True)
        for chunk in chunks:
            chunk.path.unlink(missing_ok=True)
    return BrokerResult(
        qos=qos,
        messages=workload.messages,
        received=subscriber.received,
        complete=complete,
        seconds=round(end - start, 3),
        messages_per_s=round(subscriber.received / (end - start)),
        longest_gap_s=round(subscriber.longest_gap_s, 2),
        slowest_publisher_s=round(max(publisher.lifetimes, default=0.0), 2),
        chunks=len(chunks),
        parallel=parallel,
        cpu_percent=cpu,
    )
