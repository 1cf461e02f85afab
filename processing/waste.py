"""Waste bins with ultrasonic fill sensors (DLH, "desa mandiri sampah" villages), vectorized.

Bins report ``fill_pct``, ``distance_cm``, ``battery_v``, ``temp_c`` and ``tilt`` (degrees)
about every 15 minutes. This module finds emptying events, predicts when a bin is full (from
its fill rate, a :func:`processing.trend.linear_trend` of the fill), ranks bins for
collection, flags fire risk and sums up per village.

Inputs are aligned columns (one element per reading or per bin). Times are Unix milliseconds
(int64), fills are percent of the bin's capacity, temperatures are degrees Celsius. "Per
series, in time order" means grouped by ``series`` and sorted by ``ts_ms`` within the group,
stably (equal times keep input order). Outputs are aligned with the input unless stated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.arrays import BoolArray, F64Array, I8Array, I64Array
from processing.localtime import WIB_OFFSET_S

MS_PER_H = 3_600_000
MS_PER_DAY = 86_400_000

# Reason codes of needs_collection, indexed by code; the names are stable identifiers.
COLLECTION_REASONS: tuple[str, ...] = ("none", "over_threshold", "predicted_full", "overflow")
REASON_NONE = 0
REASON_OVER_THRESHOLD = 1
REASON_PREDICTED_FULL = 2
REASON_OVERFLOW = 3

# Levels of fire_risk, indexed by level + 1 (level -1 is "unknown").
FIRE_RISK_LEVELS: tuple[str, ...] = ("unknown", "none", "watch", "alert")


def _time_order(series: I64Array, ts_ms: I64Array) -> I64Array:
    """Indices sorting by series, then time; lexsort is stable, so equal times keep input order."""
    return np.lexsort((ts_ms, series)).astype(np.int64)


def emptying_events(
    series: I64Array,
    ts_ms: I64Array,
    fill_pct: F64Array,
    tilt_deg: F64Array,
    *,
    drop_pct: float = 30.0,
    confirmed_drop_pct: float = 15.0,
    tilt_threshold_deg: float = 45.0,
) -> tuple[BoolArray, F64Array]:
    """Which readings are emptying events, and the fill just before each one.

    Per series in time order, over its finite fills (NaN: missing; an infinity: no measurement;
    neither is ever an event nor "previous"), a reading is an event when its fill (%) is:

    - at least ``confirmed_drop_pct`` percentage points below the previous fill and the tilt at
      this reading is >= ``tilt_threshold_deg`` (a bin tipped into the truck confirms it); or
    - at least ``drop_pct`` below the previous fill, the next fill stays at least ``drop_pct``
      below that previous one, and, when there is one, the fill before the previous is also at
      least ``drop_pct`` above this one. One spiked reading is not a collection: a single low
      reading between two full ones fails the first check, the drop after a single high one the
      second. A drop with no reading after it yet is decided when the next one arrives.

    NaN tilt: no tilt sensor, so only the second rule applies.

    Returns ``(event, fill_before)``, aligned with the input: ``fill_before`` is the previous
    fill (%) where ``event``, NaN elsewhere.
    """
    n = series.shape[0]
    order = _time_order(series, ts_ms)
    valid = np.isfinite(fill_pct[order])
    at = order[valid]  # input index of each finite fill, per series in time order
    s, f, tilt = series[at], fill_pct[at], tilt_deg[at]
    m = at.shape[0]

    def shifted(k: int) -> tuple[F64Array, BoolArray]:
        """The fill ``k`` finite readings earlier (k > 0) or later (k < 0) in the same series,
        and where there is one."""
        values = np.full(m, np.nan)
        same = np.zeros(m, dtype=np.bool_)
        if m > abs(k):
            if k > 0:
                values[k:], same[k:] = f[:-k], s[k:] == s[:-k]
            else:
                values[:k], same[:k] = f[-k:], s[:k] == s[-k:]
        return np.where(same, values, np.nan), same

    before, has_prev = shifted(1)
    before2, has_prev2 = shifted(2)
    after, has_next = shifted(-1)
    with np.errstate(over="ignore", invalid="ignore"):  # fills near +-1e308: infinite drops
        drop = before - f  # NaN where no previous fill: comparisons below are False
        stays_down = (before - after) >= drop_pct
        not_after_spike = ~has_prev2 | ((before2 - f) >= drop_pct)
    tipped = tilt >= tilt_threshold_deg
    confirmed = has_prev & (drop >= confirmed_drop_pct) & tipped
    unconfirmed = has_prev & (drop >= drop_pct) & has_next & stays_down & not_after_spike
    found = confirmed | unconfirmed

    event = np.zeros(n, dtype=np.bool_)
    event[at] = found
    fill_before = np.full(n, np.nan)
    fill_before[at] = np.where(found, before, np.nan)
    return event, fill_before


def time_to_full_h(
    fill_pct: F64Array, slope_pct_per_h: F64Array, *, full_pct: float = 100.0
) -> F64Array:
    """Hours until the bin reaches ``full_pct``, elementwise.

    0 when ``fill_pct >= full_pct`` (already full, whatever the slope, even NaN);
    ``(full_pct - fill_pct) / slope`` when the slope (%/h) is > 0; +inf when it is <= 0 (not
    filling); NaN when the fill, or the slope of a bin not yet full, is NaN.
    """
    hours = np.full(np.broadcast(fill_pct, slope_pct_per_h).shape, np.inf)
    # A tiny positive slope overflows to +inf, the right answer (never); inf / inf (inputs are
    # validated finite, so only from a caller's own arrays) is NaN, unknown: no warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        np.divide(full_pct - fill_pct, slope_pct_per_h, out=hours, where=slope_pct_per_h > 0)
    hours[np.isnan(fill_pct) | np.isnan(slope_pct_per_h)] = np.nan
    hours[fill_pct >= full_pct] = 0.0
    return hours


def time_to_next_round_h(
    now_ms: I64Array, collection_hour: int, *, tz_offset_s: int = WIB_OFFSET_S
) -> F64Array:
    """Hours from each ``now_ms`` (Unix ms) to the next daily collection round, elementwise.

    The round starts every day at ``collection_hour``:00 local time (``tz_offset_s`` east of
    UTC, WIB by default); exactly at the round the wait is 0, not a day. Floor division keeps
    times before 1970 right. Raises ValueError for an hour outside 0..23.
    """
    if not 0 <= collection_hour < 24:
        raise ValueError(f"collection_hour must be in 0..23, got {collection_hour}")
    since_midnight_ms = (now_ms.astype(np.int64) + tz_offset_s * 1000) % MS_PER_DAY
    wait_ms = (collection_hour * MS_PER_H - since_midnight_ms) % MS_PER_DAY
    return wait_ms.astype(np.float64) / MS_PER_H


def needs_collection(
    fill_pct: F64Array,
    hours_to_full: F64Array,
    hours_to_next_round: F64Array,
    *,
    threshold_pct: float = 80.0,
    full_pct: float = 100.0,
) -> I8Array:
    """Why each bin should be collected: a code indexing :data:`COLLECTION_REASONS`.

    3 ``overflow``: fill (%) >= ``full_pct``; else 1 ``over_threshold``: fill >=
    ``threshold_pct``; else 2 ``predicted_full``: ``hours_to_full`` is finite and <=
    ``hours_to_next_round`` (both in hours from now); else 0 ``none``. A NaN fill gives 0
    unless the prediction gives 2; a NaN or infinite ``hours_to_full`` never predicts (an
    infinite one would otherwise match a bin with no next round scheduled, also +inf).
    """
    predicted = np.isfinite(hours_to_full) & (hours_to_full <= hours_to_next_round)
    reason = np.where(predicted, REASON_PREDICTED_FULL, REASON_NONE).astype(np.int8)
    reason[fill_pct >= threshold_pct] = REASON_OVER_THRESHOLD
    reason[fill_pct >= full_pct] = REASON_OVERFLOW
    return reason


def fire_risk(
    temp_c: F64Array,
    rise_c_per_h: F64Array,
    *,
    watch_c: float = 45.0,
    alert_c: float = 60.0,
    fast_rise_c_per_h: float = 10.0,
) -> I8Array:
    """Fire risk level per bin: -1 unknown, 0 none, 1 watch, 2 alert.

    ``temp_c`` is the bin's inside temperature (°C), ``rise_c_per_h`` its recent rise (°C/h).
    1 watch: temp >= ``watch_c``, or rise >= ``fast_rise_c_per_h``. 2 alert: temp >=
    ``alert_c``, or both temp >= ``watch_c`` and a fast rise. -1 when temp is NaN; a NaN rise
    counts as no rise.

    Why these defaults: Jepara's ambient temperature is 24-34 °C and a closed bin standing in
    the sun reaches the low 40s, so 45 °C is already unusual and 60 °C is not explained by
    weather. Smouldering waste (hot ash, cigarette ends, fermenting organics) heats up fast,
    so a fast rise is worth watching at any level and alarming once the bin is warm. The
    thresholds are settings: tune them per site from the data.
    """
    warm = temp_c >= watch_c
    fast = rise_c_per_h >= fast_rise_c_per_h  # NaN rise: False, i.e. no rise
    level = np.where(warm | fast, 1, 0).astype(np.int8)
    level[(temp_c >= alert_c) | (warm & fast)] = 2
    level[np.isnan(temp_c)] = -1
    return level


def overflow_hours(
    series: I64Array,
    ts_ms: I64Array,
    fill_pct: F64Array,
    *,
    max_gap_ms: int,
    full_pct: float = 100.0,
) -> tuple[I64Array, F64Array]:
    """Hours each bin spent at or above ``full_pct``, per distinct series (sorted).

    Per series in time order, each reading's state holds until the series' next reading, for
    at most ``max_gap_ms`` (a longer gap counts only ``max_gap_ms``: the bin may have been
    offline and emptied meanwhile). The last reading of a series contributes nothing (its
    state has no known end); a NaN fill counts as not full (state unknown).

    Returns ``(series, hours)``: the distinct series, sorted, and their hours (0 when never
    full). Raises ValueError for a negative ``max_gap_ms``.
    """
    if max_gap_ms < 0:
        raise ValueError(f"max_gap_ms must not be negative, got {max_gap_ms}")
    uniq, inv_raw = np.unique(series, return_inverse=True)
    inv = inv_raw.reshape(-1).astype(np.int64)
    order = np.lexsort((ts_ms, inv))
    g, t, f = inv[order], ts_ms[order], fill_pct[order]
    held_ms = np.minimum(np.diff(t), max_gap_ms)
    counts = (g[1:] == g[:-1]) & (f[:-1] >= full_pct)
    # Sums of whole milliseconds stay exact in float64 (below 2**53 ms, ~285,000 years).
    total_ms = np.bincount(g[:-1], np.where(counts, held_ms, 0), minlength=uniq.shape[0])
    return uniq.astype(np.int64), total_ms / MS_PER_H


@dataclass(frozen=True, eq=False)
class VillageFigures:
    """Collection figures, one element per village index ``0..n_villages-1``."""

    collections: I64Array
    collections_per_week: F64Array
    mean_fill_at_collection_pct: F64Array
    wasted_trips: I64Array


def village_figures(
    village: I64Array,
    event_fill_pct: F64Array,
    n_villages: int,
    period_days: float | F64Array,
    *,
    wasted_below_pct: float = 40.0,
) -> VillageFigures:
    """Per village: collections, collections per week, mean fill at collection, wasted trips.

    Input has one row per emptying event: the village index (``0..n_villages-1``) of the bin
    and its fill (%) before emptying (``fill_before`` of :func:`emptying_events`), over a
    period of ``period_days`` days: one for all, or one per village (the days its bins have
    reported, when that is less than the period). ``collections_per_week`` is
    ``collections / period_days * 7``. ``mean_fill_at_collection_pct`` is NaN for a village
    without collections; NaN fills count as collections but not in the mean. ``wasted_trips``
    counts events with fill < ``wasted_below_pct``: emptying a bin that empty is a truck trip
    made too early.

    Raises ValueError for a village index out of range or a non-positive period.
    """
    days = np.broadcast_to(np.asarray(period_days, dtype=np.float64), (n_villages,))
    if not (days > 0).all():
        raise ValueError(f"period_days must be positive, got {period_days}")
    if village.shape[0] and (village.min() < 0 or village.max() >= n_villages):
        raise ValueError(f"village index outside 0..{n_villages - 1}")
    known = ~np.isnan(event_fill_pct)
    collections = np.bincount(village, minlength=n_villages).astype(np.int64)
    n_known = np.bincount(village[known], minlength=n_villages)
    fill_sum = np.bincount(village[known], event_fill_pct[known], minlength=n_villages)
    mean_fill = np.divide(fill_sum, n_known, out=np.full(n_villages, np.nan), where=n_known > 0)
    wasted = np.bincount(village[event_fill_pct < wasted_below_pct], minlength=n_villages)
    return VillageFigures(
        collections=collections,
        collections_per_week=collections / days * 7.0,
        mean_fill_at_collection_pct=mean_fill,
        wasted_trips=wasted.astype(np.int64),
    )
