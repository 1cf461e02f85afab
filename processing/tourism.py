"""Tourist zones with people counters at their entrances (beaches, Museum Kartini, ...), vectorized.

Counters report ``count_in`` / ``count_out`` per counting interval (typically 60 s). This module
assigns each interval to a visiting day (a zone's day runs from one closing time to the next),
turns the counts into occupancy and visitors so far, grades crowding (Fruin's walkway level of
service and a share of the zone's capacity), and sums the intervals up per hour. The
"typical for this hour of the week" baselines are :mod:`processing.baseline`.

Inputs are aligned columns (one element per interval or per zone). Times are Unix milliseconds
(int64) marking the END of a counting interval; local time is WIB (UTC+7) unless an offset is
given. "Per (series, session), in time order" means grouped by ``series`` and ``session`` and
sorted by ``ts_ms`` within the group, stably (equal times keep input order). Outputs are
aligned with the input unless stated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.arrays import BoolArray, F64Array, I8Array, I64Array
from processing.localtime import MS_PER_H, WIB_OFFSET_S

MS_PER_MIN = 60_000
MS_PER_DAY = 86_400_000
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class FruinLevel:
    """One of Fruin's walkway levels of service; ``code`` is what :func:`fruin_level` returns."""

    code: int
    letter: str
    min_area_m2_per_person: float  # the level holds from this area per person up to the next
    description: str  # English
    description_id: str  # Bahasa Indonesia, for the dashboards


FRUIN_LEVELS: tuple[FruinLevel, ...] = (
    FruinLevel(0, "A", 3.24, "free flow", "lancar bebas"),
    FruinLevel(1, "B", 2.32, "minor conflicts", "sedikit hambatan"),
    FruinLevel(2, "C", 1.39, "restricted", "gerak terbatas"),
    FruinLevel(3, "D", 0.93, "severely restricted", "sangat terbatas"),
    FruinLevel(4, "E", 0.46, "very crowded, shuffling", "berdesakan"),
    FruinLevel(5, "F", 0.0, "jammed", "macet total"),
)

# Densities within this relative distance of a bound count as on it: 10 people on 32.4 m² is
# 3.24 m²/person, but 10 / 32.4 and 1 / 3.24 differ in the last bit. The bounds have three
# significant digits, so this never moves a real measurement.
FRUIN_REL_TOL = 1e-9
# Density (persons/m²) upper bounds of levels A..E, increasing.
_FRUIN_MAX_DENSITY = np.array(
    [(1.0 + FRUIN_REL_TOL) / level.min_area_m2_per_person for level in FRUIN_LEVELS[:-1]],
    dtype=np.float64,
)


@dataclass(frozen=True)
class CrowdingLevel:
    """A level of :func:`crowding`; ``code`` is what it returns."""

    code: int
    name: str  # Bahasa Indonesia, shown on the dashboards
    name_en: str


CROWDING_LEVELS: tuple[CrowdingLevel, ...] = (
    CrowdingLevel(0, "normal", "normal"),
    CrowdingLevel(1, "ramai", "busy"),
    CrowdingLevel(2, "padat", "crowded"),
    CrowdingLevel(3, "melebihi kapasitas", "over capacity"),
)


def session_day(
    ts_ms: I64Array, closing_minute: int | I64Array, tz_offset_s: int = WIB_OFFSET_S
) -> I64Array:
    """The visiting day (local days since 1970-01-01) each counting interval belongs to.

    ``ts_ms`` (Unix ms) is the END of an interval; ``closing_minute`` (minutes after local
    midnight, in [0, 1440)) is the zone's closing time: one for all, or one per interval
    (broadcast against ``ts_ms``). A session runs from one closing time (exclusive) to the
    next (inclusive): an interval ending exactly at closing still belongs to the session that
    is closing. A session is labelled with the local date of its middle, 12 h before it
    closes: closing at or after noon labels it with the closing date (closing 18:00 -> ending
    18:00 is that date, 18:01 the next date); closing before noon, i.e. after midnight, labels
    it with the date before (closing 00:00 or 02:00 -> the evening's date).
    """
    closing = np.asarray(closing_minute, dtype=np.int64)
    outside = (closing < 0) | (closing >= MINUTES_PER_DAY)
    if outside.any():
        raise ValueError(
            f"closing_minute must be in [0, {MINUTES_PER_DAY}), got "
            f"{np.unique(closing[outside]).tolist()}"
        )
    since_closing = ts_ms.astype(np.int64) + tz_offset_s * 1000 - closing * MS_PER_MIN
    # Index of the first closing at or after the interval end: a ceiling division.
    closing_index = -(-since_closing // MS_PER_DAY)
    before_noon = (closing * 2 < MINUTES_PER_DAY).astype(np.int64)
    return (closing_index - before_noon).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Intervals:
    """Counts per (series, interval), in sorted (series, time) order."""

    series: I64Array
    ts_ms: I64Array  # END of the interval, Unix ms
    count_in: F64Array
    count_out: F64Array


def intervals(
    series: I64Array, start_ms: I64Array, is_in: BoolArray, count: F64Array, *, width_ms: int
) -> Intervals:
    """One row per (series, interval start) with both counts: ``count_in`` the sum of the
    rows' ``count`` where ``is_in``, ``count_out`` where not (0 without such rows).

    The input has one row per count, e.g. a zone's summed ``count_in`` or ``count_out`` per
    1-minute rollup bucket (``start_ms``, the bucket's start, Unix ms). The output's ``ts_ms``
    is the interval's end, ``start_ms + width_ms``, as the other functions of this module
    take it. Sums run in input order within a group.
    """
    order = np.lexsort((start_ms, series)).astype(np.int64)
    s, t = series[order].astype(np.int64), start_ms[order].astype(np.int64)
    n = order.shape[0]
    first = np.ones(n, dtype=np.bool_)
    first[1:] = (s[1:] != s[:-1]) | (t[1:] != t[:-1])
    group = np.cumsum(first) - 1
    groups = int(first.sum())
    inward = is_in[order]
    c = count[order].astype(np.float64)
    return Intervals(
        series=s[first],
        ts_ms=t[first] + width_ms,
        count_in=np.bincount(group[inward], c[inward], minlength=groups).astype(np.float64),
        count_out=np.bincount(group[~inward], c[~inward], minlength=groups).astype(np.float64),
    )


def _session_order(
    series: I64Array, session: I64Array, ts_ms: I64Array
) -> tuple[I64Array, I64Array]:
    """Indices sorting per (series, session) in time order, and each sorted row's rank in it.

    Rank 0 is the first interval of its group; lexsort is stable, so equal times keep input
    order.
    """
    n = ts_ms.shape[0]
    order = np.lexsort((ts_ms, session, series)).astype(np.int64)
    s, d = series[order], session[order]
    first = np.ones(n, dtype=np.bool_)
    first[1:] = (s[1:] != s[:-1]) | (d[1:] != d[:-1])
    position = np.arange(n, dtype=np.int64)
    group_start = np.maximum.accumulate(np.where(first, position, 0))
    return order, position - group_start


def _segmented_scan(op: np.ufunc, values: F64Array, rank: I64Array) -> F64Array:
    """Inclusive scan of ``op`` within groups of consecutive rows (``rank`` 0 opens a group).

    Doubling (Hillis-Steele): after the pass with step ``s`` each row holds ``op`` over up to
    ``2s`` rows ending at it, never reaching back past its group's start. Each sum only ever
    involves the group's own values, so a group's result does not depend on what other series
    are in the batch (a global cumsum minus group offsets would round at the batch's
    magnitude), and integer-valued counts stay exact. log2(longest group) passes.
    """
    out = values.copy()
    longest = int(rank.max()) + 1 if rank.size else 0
    step = 1
    while step < longest:
        tail = out[step:]
        out[step:] = np.where(rank[step:] >= step, op(out[:-step], tail), tail)
        step *= 2
    return out


def _missing_as_zero(counts: F64Array) -> F64Array:
    """A count that is not finite as 0: NaN is a missing count, and an infinity no count at all
    (people are counted one by one); a count is never infinite, whatever the sums below do."""
    return np.where(np.isfinite(counts), counts, 0.0)


def occupancy(
    series: I64Array,
    session: I64Array,
    ts_ms: I64Array,
    count_in: F64Array,
    count_out: F64Array,
) -> F64Array:
    """People inside after each interval, aligned with the input.

    Per (series, session) in time order, starting from 0 at each session:
    ``occ = max(0, occ_prev + in - out)``, i.e. the cumulative in - out clamped at 0 (more
    out than in means people entered uncounted); the reset at closing keeps people the
    counters missed leaving from piling up over days. Counts that are not finite (NaN: missing;
    an infinity) count as 0.

    Computed with the reflection identity ``occ = S - min(0, running min of S)``, ``S`` the
    unclamped cumulative in - out; exact for integer-valued counts. Sums beyond float64 (counts
    near 1e308) give an infinity or NaN, without a warning.
    """
    n = ts_ms.shape[0]
    order, rank = _session_order(series, session, ts_ms)
    out = np.empty(n, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        net = _missing_as_zero(count_in[order]) - _missing_as_zero(count_out[order])
        total = _segmented_scan(np.add, net, rank)
        lowest = _segmented_scan(np.minimum, total, rank)
        out[order] = total - np.minimum(lowest, 0.0)
    return out


def cumulative_in(
    series: I64Array, session: I64Array, ts_ms: I64Array, count_in: F64Array
) -> F64Array:
    """Visitors so far in the session after each interval, aligned with the input.

    The cumulative sum of ``count_in`` per (series, session) in time order; counts that are not
    finite count as 0; a sum beyond float64 is an infinity, without a warning.
    """
    n = ts_ms.shape[0]
    order, rank = _session_order(series, session, ts_ms)
    out = np.empty(n, dtype=np.float64)
    with np.errstate(over="ignore"):
        out[order] = _segmented_scan(np.add, _missing_as_zero(count_in[order]), rank)
    return out


def density_ppm2(occupancy: F64Array, area_m2: F64Array) -> F64Array:
    """Persons per m²: ``occupancy / area_m2``; NaN where the area is NaN or <= 0.

    NaN occupancy gives NaN.
    """
    usable = area_m2 > 0  # False for NaN as well
    out = np.full(occupancy.shape, np.nan, dtype=np.float64)
    with np.errstate(over="ignore"):  # a vanishing area is an infinite density, not an error
        return np.divide(occupancy, area_m2, out=out, where=usable)


def fruin_level(density_ppm2: F64Array) -> I8Array:
    """Fruin's walkway level of service A..F as 0..5 (see :data:`FRUIN_LEVELS`); -1 for NaN.

    ``density_ppm2`` is persons per m². The levels are bounded by area per person (m²/person):
    A >= 3.24 > B >= 2.32 > C >= 1.39 > D >= 0.93 > E >= 0.46 > F; compared as densities
    against the reciprocals, with a relative tolerance of :data:`FRUIN_REL_TOL` so that a
    density on a bound up to rounding (``1 / 3.24``, ``10 / 32.4``) is the better level. Zero
    density is A, +inf is F.
    """
    # Number of density bounds strictly below the density = the level.
    level = np.searchsorted(_FRUIN_MAX_DENSITY, density_ppm2, side="left").astype(np.int8)
    level[np.isnan(density_ppm2)] = -1
    return level


def crowding(
    occupancy: F64Array,
    capacity: F64Array,
    *,
    busy: float = 0.7,
    crowded: float = 0.9,
) -> tuple[F64Array, I8Array]:
    """Share of capacity in use (``occupancy / capacity``) and its level (:data:`CROWDING_LEVELS`).

    Levels: 0 normal (ratio < ``busy``), 1 busy (< ``crowded``), 2 crowded (<= 1.0), 3 over
    capacity (> 1.0). Where the capacity is NaN or <= 0, or the occupancy is NaN, the ratio is
    NaN and the level -1. Requires ``0 < busy <= crowded <= 1``.
    """
    if not 0.0 < busy <= crowded <= 1.0:
        raise ValueError(f"need 0 < busy <= crowded <= 1, got busy={busy}, crowded={crowded}")
    out = np.full(occupancy.shape, np.nan, dtype=np.float64)
    with np.errstate(over="ignore"):  # a vanishing capacity is infinitely over, not an error
        ratio = np.divide(occupancy, capacity, out=out, where=capacity > 0)
    # side="right": a ratio equal to ``busy`` or ``crowded`` already belongs to the level
    # above; over capacity is strictly above 1.0, so exactly full is still "crowded".
    level = np.searchsorted(np.array([busy, crowded]), ratio, side="right").astype(np.int8)
    level[ratio > 1.0] = 3
    level[np.isnan(ratio)] = -1
    return ratio, level


@dataclass(frozen=True, eq=False)
class Hourly:
    """Counting intervals summed up per hour, one element per (series, hour) in sorted order."""

    series: I64Array
    hour_ms: I64Array  # start of the hour, Unix ms
    entries: F64Array  # sum of count_in over the hour's intervals
    visitors_to_date: F64Array  # after the hour's last interval
    occupancy: F64Array  # after the hour's last interval


def hourly(
    series: I64Array,
    ts_ms: I64Array,
    count_in: F64Array,
    visitors_to_date: F64Array,
    occupancy: F64Array,
) -> Hourly:
    """Per (series, hour): entries in the hour, and the visitors so far and occupancy at its end.

    ``ts_ms`` is the END of each interval, so an interval ending at 09:00 belongs to the hour
    08:00-09:00 (the hour holding ``ts_ms - 1``); hours are whole UTC hours (WIB is UTC+7,
    so they are whole local hours too). ``entries`` is the sum of ``count_in``, counts that
    are not finite counting as 0; ``visitors_to_date`` and ``occupancy`` (of
    :func:`cumulative_in` and :func:`occupancy`) are those of the hour's last interval in time
    order (equal times: the last in input order).
    """
    end = ts_ms.astype(np.int64)
    hour = (end - 1) - (end - 1) % MS_PER_H
    order = np.lexsort((end, hour, series)).astype(np.int64)
    s, h = series[order].astype(np.int64), hour[order]
    n = order.shape[0]
    first = np.ones(n, dtype=np.bool_)
    first[1:] = (s[1:] != s[:-1]) | (h[1:] != h[:-1])
    group = np.cumsum(first) - 1
    last = np.ones(n, dtype=np.bool_)
    last[:-1] = first[1:]
    entries = np.bincount(
        group, _missing_as_zero(count_in[order]), minlength=int(first.sum())
    ).astype(np.float64)
    return Hourly(
        series=s[first],
        hour_ms=h[first],
        entries=entries,
        visitors_to_date=visitors_to_date[order][last].astype(np.float64),
        occupancy=occupancy[order][last].astype(np.float64),
    )


@dataclass(frozen=True, eq=False)
class StateNow:
    """Each series' state now, one element per series index ``0..n-1``."""

    occupancy: F64Array
    visitors_to_date: F64Array
    ts_ms: I64Array  # end of the interval the state is from; ``now_ms`` when none


def state_now(
    series: I64Array,
    session: I64Array,
    ts_ms: I64Array,
    occupancy: F64Array,
    visitors_to_date: F64Array,
    now_session: I64Array,
    now_ms: int,
) -> StateNow:
    """Each series' occupancy and visitors so far now: those after its last interval in time
    order (equal times: the last in input order) of its current session ``now_session``.

    ``series`` are indices into ``now_session`` (one session day per series, e.g.
    :func:`session_day` of ``now_ms`` at each zone's closing time). A series without an
    interval in its current session has just opened: empty, no visitors, as of ``now_ms``.
    """
    k = now_session.shape[0]
    out = StateNow(
        occupancy=np.zeros(k),
        visitors_to_date=np.zeros(k),
        ts_ms=np.full(k, now_ms, dtype=np.int64),
    )
    current = np.flatnonzero(session == now_session[series])
    if current.shape[0] == 0:
        return out
    order = current[np.lexsort((ts_ms[current], series[current]))]
    s = series[order]
    last = order[np.append(s[1:] != s[:-1], True)]
    out.occupancy[series[last]] = occupancy[last]
    out.visitors_to_date[series[last]] = visitors_to_date[last]
    out.ts_ms[series[last]] = ts_ms[last]
    return out
