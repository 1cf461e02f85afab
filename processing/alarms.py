"""Alarm conditions: hysteresis and minimum durations, vectorized.

DESIGN: alarms go open -> acknowledged -> cleared, with hysteresis and a minimum duration, so
one bad minute does not page anyone twenty times; one alarm per (subject, rule) at a time.

The rules are data, :func:`rules`: one row per rule with its thresholds, durations, severity
and message. One row per (subject, rule) condition: :func:`evaluate_rules` broadcasts each
rule's thresholds and durations onto its rows and evaluates them; the caller stores the new
since-times (``alarm_conditions``) and opens or clears ``alarms`` rows from the masks. Times
are Unix milliseconds (int64), -1 means "missing"; values and thresholds are in the rule's
metric unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processing.arrays import BoolArray, F64Array, I64Array

MISSING_MS = -1
MS_PER_MIN = 60_000
# Anomaly kinds with a rule ``anomaly_<kind>``: the value is the count in the last 30 minutes.
ANOMALY_RULE_KINDS: tuple[str, ...] = (
    "spike", "level_shift", "stuck", "drift", "out_of_range", "impossible"
)  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One alarm rule; see :func:`evaluate` for what the thresholds and durations do."""

    name: str  # stable identifier, stored in alarms.rule
    severity: str  # "info", "warning" or "critical"
    raise_at: float  # in the unit of the rule's value
    clear_at: float
    higher_is_worse: bool
    min_bad_ms: int
    min_good_ms: int
    message: str  # str.format template, given the value

    def describe(self, value: float) -> str:
        """The alarm's message for ``value``."""
        return self.message.format(value)


def rules(*, battery_low_v: float) -> tuple[Rule, ...]:
    """The alarm rules; ``battery_low_v`` (V) is a setting: battery_low clears 0.1 V above it.

    Values: sensor_offline 1 offline / 0 online; bin_overflow the fill (%); bin_predicted_full
    1 when the bin's collection reason is ``predicted_full``; bin_fire_risk the level (0 none,
    1 watch, 2 alert); ispu_unhealthy the ISPU (101 and up is Tidak Sehat); crowding the
    share of capacity; ``anomaly_<kind>`` a count.
    """
    table = [
        Rule("sensor_offline", "warning", 1, 1, True, 0, 0, "sensor offline"),
        Rule("battery_low", "warning", battery_low_v, battery_low_v + 0.1, False,
             30 * MS_PER_MIN, 60 * MS_PER_MIN, "battery low: {:.2f} V"),
        Rule("bin_overflow", "critical", 100, 90, True, 15 * MS_PER_MIN, 30 * MS_PER_MIN,
             "bin overflowing: {:.0f} % full"),
        Rule("bin_predicted_full", "info", 1, 1, True, 0, 60 * MS_PER_MIN,
             "bin will be full before the next collection round"),
        # Two readings in a row, not one: bins report every 15 minutes, and a single spiked
        # temp_c reading (a glitch) must not page anyone with a critical alarm.
        Rule("bin_fire_risk", "critical", 2, 1, True, 20 * MS_PER_MIN, 30 * MS_PER_MIN,
             "fire risk in bin (level {:.0f})"),
        Rule("ispu_unhealthy", "warning", 101, 90, True, 0, 60 * MS_PER_MIN,
             "ISPU {:.0f}: Tidak Sehat or worse"),
        Rule("crowding", "warning", 1.0, 0.9, True, 10 * MS_PER_MIN, 15 * MS_PER_MIN,
             "over capacity: {:.0%} of capacity"),
    ]  # fmt: skip
    table.extend(
        Rule(f"anomaly_{kind}", "info", 1, 1, True, 0, 60 * MS_PER_MIN,
             f"{kind.replace('_', ' ')} anomalies: {{:.0f}} in the last 30 minutes")
        for kind in ANOMALY_RULE_KINDS
    )  # fmt: skip
    return tuple(table)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The outcome of :func:`evaluate`, aligned with its input rows."""

    bad_since_ms: I64Array  # new value: start of the current bad streak, -1 when not bad
    good_since_ms: I64Array  # new value: start of the current good streak, -1 when not good
    open: BoolArray  # open a new alarm now
    clear: BoolArray  # clear the active (open or acknowledged) alarm now
    active: BoolArray  # an alarm is active after this evaluation


def _streak_since(
    now_ms: int, since_ms: I64Array, now_true: BoolArray, known: BoolArray
) -> I64Array:
    """Start of the streak after this value: kept while true, now when it starts, -1 when it
    breaks; unchanged where the value is unknown (NaN)."""
    started = np.where(since_ms == MISSING_MS, now_ms, since_ms)
    updated = np.where(now_true, started, MISSING_MS)
    return np.where(known, updated, since_ms).astype(np.int64)


def _lasted(now_ms: int, since_ms: I64Array, min_ms: I64Array) -> BoolArray:
    """Whether a streak (since_ms, -1: none) has lasted at least ``min_ms`` at ``now_ms``."""
    lasted: BoolArray = (since_ms != MISSING_MS) & (now_ms - since_ms >= min_ms)
    return lasted


def evaluate(
    now_ms: int,
    value: F64Array,
    raise_at: F64Array,
    clear_at: F64Array,
    higher_is_worse: BoolArray,
    bad_since_ms: I64Array,
    good_since_ms: I64Array,
    active: BoolArray,
    min_bad_ms: I64Array,
    min_good_ms: I64Array,
) -> Evaluation:
    """One evaluation step of each condition at ``now_ms``; feed the result back next time.

    The value is *bad* when ``value >= raise_at`` and *good* when ``value < clear_at`` where
    ``higher_is_worse``; otherwise (e.g. battery voltage) bad when ``value <= raise_at`` and
    good when ``value > clear_at``. Between the two is the hysteresis band: neither bad nor
    good. A NaN value (no data) is neither, and changes nothing: since-times are kept and no
    alarm opens or clears.

    ``bad_since_ms`` is when the value became continuously bad (-1: not bad): kept while bad,
    set to ``now_ms`` when it turns bad, -1 once a value is not bad (the band breaks a bad
    streak; a NaN does not). ``good_since_ms`` likewise with good.

    An alarm opens where none is ``active`` and the value is bad and has been for at least
    ``min_bad_ms`` (``now_ms - bad_since >= min_bad_ms``: 0 opens at once). An active alarm
    (open or acknowledged) clears where the value is good and has been for at least
    ``min_good_ms``. Opening needs a bad streak and clearing a good one, so a flapping value
    opens one alarm and keeps it until it has been good for ``min_good_ms``.

    Raises ValueError when the arrays are not aligned, ``clear_at`` is on the bad side of
    ``raise_at`` (equal is allowed: no band) or either is NaN, or a minimum is negative.
    """
    arrays = (value, raise_at, clear_at, higher_is_worse, bad_since_ms, good_since_ms, active)
    shapes = {a.shape for a in (*arrays, min_bad_ms, min_good_ms)}
    if len(shapes) > 1:
        raise ValueError(f"arrays must be aligned, got shapes {sorted(shapes)}")
    # Written as "not ok" so that a NaN threshold, which compares False, is rejected too.
    ordered = np.where(higher_is_worse, clear_at <= raise_at, clear_at >= raise_at)
    if not ordered.all():
        raise ValueError("clear_at must not be NaN nor on the bad side of raise_at")
    if (min_bad_ms < 0).any() or (min_good_ms < 0).any():
        raise ValueError("min_bad_ms and min_good_ms must not be negative")

    known = ~np.isnan(value)
    # NaN compares False either way: neither bad nor good.
    bad = np.where(higher_is_worse, value >= raise_at, value <= raise_at)
    good = np.where(higher_is_worse, value < clear_at, value > clear_at)
    new_bad_since = _streak_since(now_ms, bad_since_ms, bad, known)
    new_good_since = _streak_since(now_ms, good_since_ms, good, known)

    # `bad` / `good` are False on NaN: no data never opens or clears, even after a long streak.
    opened = ~active & bad & _lasted(now_ms, new_bad_since, min_bad_ms)
    cleared = active & good & _lasted(now_ms, new_good_since, min_good_ms)
    return Evaluation(
        bad_since_ms=new_bad_since,
        good_since_ms=new_good_since,
        open=opened,
        clear=cleared,
        active=(active | opened) & ~cleared,
    )


def evaluate_rules(
    now_ms: int,
    table: Sequence[Rule],
    rule: I64Array,
    value: F64Array,
    bad_since_ms: I64Array,
    good_since_ms: I64Array,
    active: BoolArray,
) -> Evaluation:
    """:func:`evaluate` with each row's thresholds and durations those of its rule.

    ``rule`` indexes ``table`` (one element per condition row); the other arrays are as in
    :func:`evaluate`, aligned with ``rule``. Raises ValueError for an index outside the table,
    or what :func:`evaluate` raises.
    """
    if rule.shape[0] and (rule.min() < 0 or rule.max() >= len(table)):
        raise ValueError(f"rule index outside 0..{len(table) - 1}")

    def column(name: str, dtype: type[np.generic]) -> np.ndarray:
        return np.array([getattr(r, name) for r in table], dtype=dtype)[rule]

    return evaluate(
        now_ms,
        value,
        column("raise_at", np.float64),
        column("clear_at", np.float64),
        column("higher_is_worse", np.bool_),
        bad_since_ms,
        good_since_ms,
        active,
        column("min_bad_ms", np.int64),
        column("min_good_ms", np.int64),
    )
