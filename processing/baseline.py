"""Baselines: "typical for this hour of the week", from the same hour on past weeks, vectorized.

A tourist zone's visitors so far at 10:00 on a Sunday are compared with the median of the
previous few Sundays at 10:00 (DESIGN: "typical for this hour of the week"). Times are Unix
milliseconds (int64); a week is 168 h (WIB has no daylight saving, so the same local hour of
the week is always a whole number of weeks back). Outputs are aligned with the queries unless
stated.
"""

from __future__ import annotations

import numpy as np

from processing import join
from processing.arrays import F64Array, I64Array

MS_PER_WEEK = 7 * 86_400_000


def typical(
    series: I64Array, slot: I64Array, value: F64Array
) -> tuple[I64Array, I64Array, F64Array, I64Array]:
    """Median value per distinct (series, slot), in sorted (series, slot) order.

    Returns ``(series, slot, median, count)``: ``median`` of the non-NaN values (the mean of
    the two middle ones for an even count; NaN when there are none) and ``count`` of non-NaN
    values. With ``slot`` = :func:`hour_of_week` and ``value`` = visitors so far at that hour
    on past weeks, the median is the "typical" figure for this hour of the week.
    """
    nan = np.isnan(value)
    # NaN last within each group, so a group's non-NaN values are its first ``count`` rows.
    order = np.lexsort((value, nan, slot, series)).astype(np.int64)
    s, k, v = series[order], slot[order], value[order]
    n = order.shape[0]
    first = np.ones(n, dtype=np.bool_)
    first[1:] = (s[1:] != s[:-1]) | (k[1:] != k[:-1])
    start = np.flatnonzero(first).astype(np.int64)
    if n:
        count = np.add.reduceat((~nan[order]).astype(np.int64), start).astype(np.int64)
    else:
        count = np.zeros(0, dtype=np.int64)
    has = count > 0
    lo = start + np.maximum(count - 1, 0) // 2
    hi = start + count // 2
    a, b = v[lo], v[hi]
    # (a + b) / 2 like statistics.median; for odd counts a is b, taken as is.
    middle = np.where(lo == hi, a, (a + b) / 2)
    median = np.where(has, middle, np.nan)
    return s[start].astype(np.int64), k[start].astype(np.int64), median, count


def lookup(
    series: I64Array,
    slot: I64Array,
    table_series: I64Array,
    table_slot: I64Array,
    table_value: F64Array,
) -> F64Array:
    """The table's value for each (series, slot), aligned with the queries; NaN when absent.

    The table's (series, slot) keys must be distinct; any order.
    """
    return join.lookup(
        join.pack(series, slot),
        join.pack(table_series, table_slot),
        table_value.astype(np.float64, copy=False),
        np.nan,
    )


def typical_at(
    series: I64Array,
    hour_ms: I64Array,
    past_series: I64Array,
    past_hour_ms: I64Array,
    past_value: F64Array,
    *,
    weeks: int,
) -> F64Array:
    """The "typical" value of each (series, hour): the median over the ``weeks`` weeks before.

    For each query row, the past rows of the same series exactly 1, 2, ... ``weeks`` weeks
    (of 168 h: WIB has no daylight saving) before ``hour_ms`` are the same hour of the week
    on past weeks; their median (:func:`typical`: NaN values ignored, the mean of the two
    middle ones for an even count) is the result, NaN when there are none. Times are Unix ms.
    Aligned with the queries.

    One past value per (series, hour): ValueError for repeated past keys, or ``weeks < 1``.
    """
    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, got {weeks}")
    past_key = join.pack(past_series, past_hour_ms)
    if np.unique(past_key).shape[0] != past_key.shape[0]:
        raise ValueError("past (series, hour) keys must be distinct")
    n = series.shape[0]
    # Each query asks for its own hour 1..weeks weeks back: n * weeks lookups.
    back_ms = np.arange(1, weeks + 1, dtype=np.int64) * MS_PER_WEEK
    want_hour = (hour_ms.astype(np.int64)[:, None] - back_ms[None, :]).reshape(-1)
    want_series = np.repeat(series.astype(np.int64), weeks)
    value = join.lookup(
        join.pack(want_series, want_hour),
        past_key,
        past_value.astype(np.float64, copy=False),
        np.nan,
    )
    query = np.repeat(np.arange(n, dtype=np.int64), weeks)
    # Every query has its ``weeks`` rows, so typical() returns one median per query, in order.
    _, _, median, _ = typical(query, np.zeros(query.shape[0], dtype=np.int64), value)
    return median
