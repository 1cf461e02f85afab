"""`pantau simulate`: run the fleet simulator in (accelerated) real time."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from simulators.fleet import FleetSimulator
from simulators.publish import Sink

logger = logging.getLogger(__name__)


@dataclass
class SimulationStats:
    messages: int = 0
    readings: int = 0
    simulated_s: int = 0


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
) -> SimulationStats:
    """Advance simulated time ``speed`` times faster than the wall clock, publishing what is due.

    Simulated time starts at ``start_s`` (Unix seconds) and stops after ``duration_s`` simulated
    seconds, or when ``stop`` is set. ``speed`` may be infinite (no waiting) with a duration.
    With a ``clock`` (Unix seconds), simulated time never passes it: an accelerated run that
    started in the past catches up with the present, then goes on in real time, so no reading
    carries a future timestamp.
    """
    stats = SimulationStats()
    wall0 = time.monotonic()
    t_prev = start_s - 1  # the window (t_prev, t] includes the start second
    if not math.isfinite(speed) and duration_s is None:
        raise ValueError("an unbounded speed needs a duration")
    while not stop.is_set():
        # At unbounded speed (writing to a file) the whole duration is due at once.
        elapsed_sim = (time.monotonic() - wall0) * speed if math.isfinite(speed) else float("inf")
        if duration_s is not None:
            elapsed_sim = min(elapsed_sim, duration_s)
        t_now = start_s + int(elapsed_sim)
        if clock is not None:
            t_now = min(t_now, int(clock()))
        if t_now > t_prev:
            for message in sim.step(t_prev, t_now):
                sink.send(message)
                stats.messages += 1
                stats.readings += message.readings
            stats.simulated_s = t_now - start_s
            t_prev = t_now
        if duration_s is not None and t_now - start_s >= duration_s:
            break
        stop.wait(tick_s)
    sink.close()
    return stats
