"""`pantau simulate`'s three modes: live, backfill and load.

- **live**: simulated time runs ``speed`` times faster than the wall clock and never passes the
  present, so an accelerated run that started in the past catches up and goes on in real time.
- **backfill**: a span of history published as fast as the publisher's window of
  unacknowledged messages lets it (the broker's PUBACKs are the back-pressure), with a progress
  bar and a summary.
- **load**: messages paced to a target rate (messages or readings per second), simulated
  time advancing as fast as needed; the achieved rate is reported every second, and the run
  says when this machine cannot reach the target.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from simulators.fleet import FleetSimulator
from simulators.payloads import Message
from simulators.progress import LoadMeter, ProgressBar
from simulators.publish import Sink

CHECKPOINT_S = 10.0


@dataclass
class SimulationStats:
    messages: int = 0
    readings: int = 0
    simulated_s: int = 0
    busy_s: dict[str, float] = field(
        default_factory=lambda: {"generation": 0.0, "serialisation": 0.0, "publishing": 0.0}
    )


def _publish(sink: Sink, messages: list[Message], stats: SimulationStats) -> None:
    t0 = time.perf_counter()
    for message in messages:
        sink.send(message)
        stats.messages += 1
        stats.readings += message.readings
    stats.busy_s["publishing"] += time.perf_counter() - t0


def _window(sim: FleetSimulator, t0_s: int, t1_s: int, stats: SimulationStats) -> list[Message]:
    g0 = time.perf_counter()
    frame = sim.frame(t0_s, t1_s)
    g1 = time.perf_counter()
    messages = frame.messages()
    stats.busy_s["generation"] += g1 - g0
    stats.busy_s["serialisation"] += time.perf_counter() - g1
    return messages


def run_live(
    sim: FleetSimulator,
    sink: Sink,
    *,
    start_s: int,
    speed: float,
    duration_s: float | None,
    tick_s: float,
    stop: threading.Event,
    clock: Callable[[], float] | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> SimulationStats:
    """Advance simulated time ``speed`` times faster than the wall clock, publishing what is due.

    Publishes the messages of (start_s, start_s + duration_s] (simulated Unix seconds), or
    until ``stop`` is set. ``speed`` may be infinite (no waiting) with a duration. With a
    ``clock`` (Unix seconds), simulated time never passes it. ``checkpoint`` is called every
    10 s of wall time (the CLI saves the labels file then) and at the end.
    """
    stats = SimulationStats()
    wall0 = last_checkpoint = time.monotonic()
    t_prev = start_s
    if not math.isfinite(speed) and duration_s is None:
        raise ValueError("an unbounded speed needs a duration")
    while not stop.is_set():
        elapsed_sim = (time.monotonic() - wall0) * speed if math.isfinite(speed) else math.inf
        if duration_s is not None:
            elapsed_sim = min(elapsed_sim, duration_s)
        t_now = start_s + int(elapsed_sim)
        if clock is not None:
            t_now = min(t_now, int(clock()))
        if t_now > t_prev:
            _publish(sink, _window(sim, t_prev, t_now, stats), stats)
            stats.simulated_s = t_now - start_s
            t_prev = t_now
        if checkpoint is not None and time.monotonic() - last_checkpoint >= CHECKPOINT_S:
            checkpoint()
            last_checkpoint = time.monotonic()
        if duration_s is not None and t_now - start_s >= duration_s:
            break
        stop.wait(tick_s)
    sink.close()
    if checkpoint is not None:
        checkpoint()
    return stats


def run_backfill(
    sim: FleetSimulator,
    sink: Sink,
    *,
    start_s: int,
    end_s: int,
    stop: threading.Event,
    progress: ProgressBar | None = None,
    window_s: int = 3600,
) -> SimulationStats:
    """Publish every message of (start_s, end_s] as fast as the sink takes them."""
    stats = SimulationStats()
    t = start_s
    while t < end_s and not stop.is_set():
        t1 = min(t + window_s, end_s)
        messages = _window(sim, t, t1, stats)
        for i in range(0, len(messages), 2000):
            if stop.is_set():
                break
            _publish(sink, messages[i : i + 2000], stats)
            if progress is not None:
                done = t + (t1 - t) * min(i + 2000, len(messages)) / max(len(messages), 1)
                progress.update(time.monotonic(), done - start_s, stats.messages, stats.readings)
        stats.simulated_s = t1 - start_s
        t = t1
    if progress is not None:
        progress.update(time.monotonic(), stats.simulated_s, stats.messages, stats.readings)
        progress.done()
    sink.close()
    return stats


@dataclass
class LoadResult:
    stats: SimulationStats
    reached: bool
    verdict: str
    wall_s: float
    exhausted: bool  # simulated time reached ``end_s`` before the duration was over


def run_load(
    sim: FleetSimulator,
    sink: Sink,
    *,
    start_s: int,
    end_s: int,
    rate_per_s: float,
    unit: str,
    duration_s: float,
    stop: threading.Event,
    meter: LoadMeter,
    clock: Callable[[], float] = time.monotonic,
) -> LoadResult:
    """Publish ``rate_per_s`` messages or readings (``unit``) per second for ``duration_s``
    wall-clock seconds, simulated time running from ``start_s`` as fast as needed (up to
    ``end_s``)."""
    stats = SimulationStats()
    natural = sim.messages_per_s() if unit == "messages" else sim.readings_per_s()
    # About a quarter second of messages per window: large enough to amortise, small enough
    # to keep pacing smooth and memory low.
    window_s = int(min(max(math.ceil(0.25 * rate_per_s / max(natural, 1e-9)), 1), 3600))
    queue: deque[Message] = deque()
    t_sim = start_s
    exhausted = False
    started = clock()
    sent_units = 0
    while not stop.is_set():
        now = clock()
        meter.tick(now, stats.messages, stats.readings, sink_acked(sink))
        if now - started >= duration_s:
            break
        if not queue:
            if t_sim >= end_s:
                exhausted = True
                break
            t1 = min(t_sim + window_s, end_s)
            queue.extend(_window(sim, t_sim, t1, stats))
            stats.simulated_s = t1 - start_s
            t_sim = t1
            continue
        due = rate_per_s * (now - started) - sent_units
        if due < 1:
            time.sleep(min(0.002, (1 - due) / rate_per_s))
            continue
        batch: list[Message] = []
        units = 0
        while queue and units < due and len(batch) < 5000:
            message = queue.popleft()
            batch.append(message)
            units += 1 if unit == "messages" else message.readings
        _publish(sink, batch, stats)
        sent_units += units
    wall_s = clock() - started
    sink.close()
    stats.busy_s["waiting for PUBACKs"] = getattr(getattr(sink, "window", None), "wait_s", 0.0)
    stats.busy_s["publishing"] = max(
        stats.busy_s["publishing"] - stats.busy_s["waiting for PUBACKs"], 0.0
    )
    reached, verdict = meter.verdict(
        stats.messages if unit == "messages" else stats.readings, wall_s, stats.busy_s
    )
    return LoadResult(stats, reached, verdict, wall_s, exhausted)


def sink_acked(sink: Sink) -> int:
    return int(getattr(sink, "acked", 0))
