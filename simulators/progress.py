"""What a run tells the person running it: a backfill's progress bar, the load mode's rate
line every second, and the final summaries. Pure formatting and arithmetic; the clock and the
output stream are passed in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from simulators.labels import Label

BAR_WIDTH = 30
SHORT_OF_TARGET = 0.9  # a second below 90 % of the target counts as missing it
REACHED = 0.95  # a run whose mean rate is 95 % of the target has reached it
MISSED_SECONDS = 3  # say so after this many seconds in a row below the target


def n(value: float) -> str:
    return f"{value:,.0f}"


def duration(seconds: float) -> str:
    s = int(seconds)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def fault_counts(labels: Iterable[Label]) -> str:
    counts = Counter(x.kind for x in labels)
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"


@dataclass
class ProgressBar:
    """A one-line bar on a terminal (redrawn at most 5 times a second), or a plain line every
    10 % on a pipe or file."""

    total_s: float
    write: Callable[[str], object]
    tty: bool
    started: float
    _last: float = -1.0
    _last_tenth: int = -1

    def update(self, now: float, done_s: float, messages: int, readings: int) -> None:
        frac = min(done_s / self.total_s, 1.0) if self.total_s > 0 else 1.0
        elapsed = max(now - self.started, 1e-9)
        if self.tty:
            if now - self._last < 0.2 and frac < 1.0:
                return
            self._last = now
        else:
            tenth = int(frac * 10)
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        filled = int(frac * BAR_WIDTH)
        line = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {100 * frac:5.1f}%  "
            f"{done_s / 86400:.1f}/{self.total_s / 86400:.1f} days  {n(messages)} messages  "
            f"{n(messages / elapsed)} msg/s  {n(readings / elapsed)} readings/s  "
            f"ETA {duration(eta)}"
        )
        self.write(f"\r{line}" if self.tty else line + "\n")

    def done(self) -> None:
        if self.tty:
            self.write("\n")


def summary(
    what: str,
    *,
    simulated_s: float,
    messages: int,
    readings: int,
    wall_s: float,
    labels: Iterable[Label],
    unacked: int,
) -> str:
    wall = max(wall_s, 1e-9)
    return (
        f"{what}: {simulated_s / 86400:.2f} simulated days, {n(messages)} messages, "
        f"{n(readings)} readings in {wall:.1f} s ({n(messages / wall)} msg/s, "
        f"{n(readings / wall)} readings/s); faults: {fault_counts(labels)}"
        + (f"; {n(unacked)} messages not acknowledged by the broker" if unacked else "")
    )


@dataclass
class LoadMeter:
    """Measures the achieved rate every second against the target and says when it is missed.

    ``unit`` is ``messages`` or ``readings``: what the target counts.
    """

    target_per_s: float
    unit: str
    write: Callable[[str], object]
    started: float
    seconds: list[float] = field(default_factory=list)  # achieved rate of each whole second
    warned: bool = False
    _t: float = 0.0
    _units: int = 0
    _messages: int = 0
    _acked: int = 0

    def __post_init__(self) -> None:
        self._t = self.started

    @property
    def short(self) -> str:
        return "msg/s" if self.unit == "messages" else "readings/s"

    def tick(self, now: float, messages: int, readings: int, acked: int) -> None:
        """Called often; reports once a second."""
        if now - self._t < 1.0:
            return
        dt = now - self._t
        units = messages if self.unit == "messages" else readings
        rate = (units - self._units) / dt
        self.seconds.append(rate)
        self.write(
            f"load {len(self.seconds):4d} s: {n(rate)} {self.short} of {n(self.target_per_s)} "
            f"target ({n((messages - self._messages) / dt)} msg/s, "
            f"{n((acked - self._acked) / dt)} acked/s)\n"
        )
        self._t, self._units, self._messages, self._acked = now, units, messages, acked
        recent = self.seconds[-MISSED_SECONDS:]
        if (
            not self.warned
            and len(recent) == MISSED_SECONDS
            and all(r < SHORT_OF_TARGET * self.target_per_s for r in recent)
        ):
            self.warned = True
            self.write(
                f"load: this machine cannot reach {n(self.target_per_s)} {self.short}: "
                f"{n(sum(recent) / len(recent))} {self.short} over the last {MISSED_SECONDS} s\n"
            )

    def verdict(self, units: int, wall_s: float, busy_s: dict[str, float]) -> tuple[bool, str]:
        """Whether the run reached the target on average, and the closing line."""
        mean = units / max(wall_s, 1e-9)
        if mean >= REACHED * self.target_per_s:
            return True, (
                f"load: reached {n(self.target_per_s)} {self.short} "
                f"(mean {n(mean)} over {wall_s:.1f} s)"
            )
        total = max(sum(busy_s.values()), 1e-9)
        shares = ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in busy_s.items())
        return False, (
            f"load: could NOT reach {n(self.target_per_s)} {self.short}: mean {n(mean)} "
            f"({100 * mean / self.target_per_s:.1f} % of the target) over {wall_s:.1f} s. "
            f"Time went to {shares}. Waiting for PUBACKs means the broker is the limit; "
            "otherwise it is this process's CPU: run several `pantau simulate --load` "
            "processes with distinct PANTAU_SIM_CLIENT_ID, or send gateway batches "
            "(--payload batch) for more readings per message"
        )
