"""What the demo prints: lines and a status line that a closed terminal or pipe cannot break,
the history's progress line and the live line.

`make demo 2>&1 | tee demo.log` and Ctrl-C: the terminal's SIGINT reaches tee too, which
exits first, and the demo's next write fails with EPIPE while it still has servers to stop. So
every write goes through :class:`Console`: the first failure turns the console off, points the
descriptor at /dev/null (the interpreter's last flush then has nowhere to fail) and the demo
goes on stopping what it started.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TextIO

from cli.demo_plan import Plan
from processing.localtime import WIB_OFFSET_S
from simulators.progress import duration, n

WIB = timezone(timedelta(seconds=WIB_OFFSET_S), "WIB")
BAR_WIDTH = 20


class Console:
    """Writes lines and a redrawn status line (a terminal) or plain lines (a pipe or file);
    never raises once the reader is gone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.closed = False
        try:
            self.tty = stream.isatty()
        except (OSError, ValueError):
            self.tty = False
        self._status_shown = False

    def line(self, text: str = "") -> None:
        self._write(("\n" if self._status_shown else "") + text + "\n")
        self._status_shown = False

    def status(self, text: str) -> None:
        """Redraw the status line on a terminal; elsewhere write it as a line."""
        if self.tty:
            self._write("\r" + text + "\x1b[K")
            self._status_shown = True
        else:
            self._write(text + "\n")

    def _write(self, text: str) -> None:
        if self.closed:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            self._lost()

    def _lost(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError, ValueError):
            fd = self._stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)


class RateWindow:
    """A count's rate of change over the last ``window_s`` seconds of samples."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, t: float, count: int) -> float | None:
        """Add a sample (monotonic seconds, count); the rate per second over the window, None
        until two samples span some time."""
        self._samples.append((t, count))
        while len(self._samples) > 2 and self._samples[1][0] <= t - self.window_s:
            self._samples.popleft()
        t0, c0 = self._samples[0]
        return (count - c0) / (t - t0) if t > t0 else None


def wib(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, WIB).strftime("%Y-%m-%d %H:%M WIB")


def iso(t_s: float) -> str:
    """ISO 8601 in UTC, for the command lines the demo runs."""
    return datetime.fromtimestamp(t_s, UTC).isoformat()


@dataclass(frozen=True)
class Counts:
    """What the database holds, for the live line."""

    newest_s: float | None  # the newest stored reading
    stored: int  # readings stored (from the daily rollups: each stored reading once)
    rejects: int
    anomalies: int
    alarms_open: int  # open or acknowledged
    alarms_cleared: int
    last_run_s: float | None  # when `pantau process` last ran (wall clock)


def plan_lines(plan: Plan) -> list[str]:
    """What the demo is about to do."""
    lines = []
    if plan.resumed_from_s is not None:
        lines.append(f"resuming after the newest stored reading, {wib(plan.resumed_from_s)}")
    if plan.backfill:
        start, end = plan.backfill[0][0], plan.backfill[-1][1]
        lines.append(
            f"history: {plan.history_s / 86400:.2f} days, {wib(start)} to {wib(end)}, as hourly "
            "gateway batches; `pantau process --at` the end of each day"
        )
    elif plan.resumed_from_s is not None:
        lines.append("history: already stored, nothing to backfill")
    if plan.jobs and not plan.backfill:
        lines.append(f"processing what the last run left: {len(plan.jobs)} run(s)")
    return lines


def history_line(
    *,
    done_s: float,
    total_s: float,
    stored: int,
    rate: float | None,
    jobs_done: int,
    jobs: int,
    started: float,
    now: float,
) -> str:
    """``history [####......] 12.0/29.0 days stored  2,650,112 readings  14,801/s  processed
    11/29 days  ETA 4:10``"""
    frac = min(max(done_s / total_s, 0.0), 1.0) if total_s > 0 else 1.0
    filled = int(frac * BAR_WIDTH)
    elapsed = max(now - started, 1e-9)
    eta = f"  ETA {duration(elapsed * (1 - frac) / frac)}" if 0 < frac < 1 else ""
    return (
        f"history [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done_s / 86400:.1f}/"
        f"{total_s / 86400:.1f} days stored  {n(stored)} readings  "
        f"{n(rate or 0)}/s  processed {jobs_done}/{jobs} days{eta}"
    )


def live_line(counts: Counts, rate: float | None, *, behind_s: float, speed: float) -> str:
    """``07:41 WIB  live  3 readings/s  6,401,234 stored  0 rejects  1,301 anomalies  alarms: 14
    open, 210 cleared``; while the simulation is still behind the present, its clock and
    speed instead of ``live``."""
    when = counts.newest_s if counts.newest_s is not None else time.time()
    clock = wib(when)
    where = f"simulated, {speed:g}x" if behind_s > 90 else "live"
    per_s = "-" if rate is None else n(rate)
    return (
        f"{clock}  {where}  {per_s} readings/s  {n(counts.stored)} stored  "
        f"{n(counts.rejects)} rejects  {n(counts.anomalies)} anomalies  "
        f"alarms: {n(counts.alarms_open)} open, {n(counts.alarms_cleared)} cleared"
    )
