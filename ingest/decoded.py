"""What decoding produces: readings in payload order, and problems with reason codes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """A rejected message (``metric`` None) or a rejected reading of a message; ``reason`` is one
    of :mod:`processing.reasons`."""

    reason: str
    detail: str
    metric: str | None = None


@dataclass
class Decoded:
    """Readings of one message, in payload order, plus what was rejected while decoding."""

    metrics: list[str] = field(default_factory=list)
    ts_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def add(self, metric: str, ts_ms: int, value: float) -> None:
        self.metrics.append(metric)
        self.ts_ms.append(ts_ms)
        self.values.append(value)
