"""Least-squares trend lines of a value against time, per series, vectorized.

The value is in whatever unit the caller's readings are (fill %, °C, V); the slope is that
unit per hour. Callers name the result with its unit (``fill_pct_per_h``, ``temp_c_per_h``).
Times are Unix milliseconds (int64). "Per series, in time order" means grouped by ``series``
and sorted by ``ts_ms`` within the group, stably (equal times keep input order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.arrays import BoolArray, F64Array, I64Array

MS_PER_H = 3_600_000


def _group_edges(sorted_keys: I64Array) -> tuple[BoolArray, BoolArray]:
    """Masks of the first and of the last element of each run of equal, sorted keys."""
    first = np.ones(sorted_keys.shape[0], dtype=np.bool_)
    last = np.ones(sorted_keys.shape[0], dtype=np.bool_)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    last[:-1] = first[1:]
    return first, last


@dataclass(frozen=True, eq=False)
class Trend:
    """Least-squares lines, one element per distinct series in sorted order (see
    :func:`linear_trend`); values in the input's unit, slopes in that unit per hour."""

    series: I64Array
    n: I64Array  # finite values used in the fit (0 when the series has none)
    slope_per_h: F64Array
    value_at_last: F64Array
    last_ts_ms: I64Array
    last_value: F64Array


def linear_trend(series: I64Array, ts_ms: I64Array, value: F64Array) -> Trend:
    """Least-squares line of ``value`` against time, per series; values that are not finite
    (NaN: missing; an infinity: no line passes through one) are ignored.

    Rows cover every distinct ``series`` of the input, sorted, so they align with
    ``np.unique(series)``:

    - ``n``: number of finite values;
    - ``slope_per_h``: the line's slope in the value's unit per hour, NaN when ``n < 2``, all
      its times are equal (no line through one instant), or the sums overflow float64
      (values near 1e308): never an infinity;
    - ``last_ts_ms``: newest time of a finite value; when ``n == 0``, the series' newest
      reading time (its values are then none, or none finite);
    - ``value_at_last``: the line's value at ``last_ts_ms``; when the slope is NaN, the mean
      value (all values are at one instant); NaN when ``n == 0`` or it overflows;
    - ``last_value``: the newest finite value, on equal times the last in input order; NaN
      when ``n == 0``.
    """
    uniq, inv_raw = np.unique(series, return_inverse=True)
    inv = inv_raw.reshape(-1).astype(np.int64)
    k = uniq.shape[0]
    valid_idx = np.flatnonzero(np.isfinite(value))
    o = valid_idx[np.lexsort((ts_ms[valid_idx], inv[valid_idx]))]
    g, t, v = inv[o], ts_ms[o], value[o]
    first, last = _group_edges(g)

    n = np.bincount(g, minlength=k).astype(np.int64)
    has = n > 0
    # Times relative to the group's first (integer, exact) so the float hours stay small.
    t_first = np.zeros(k, dtype=np.int64)
    t_first[g[first]] = t[first]
    dt_h = (t - t_first[g]).astype(np.float64) / MS_PER_H
    span_h = np.zeros(k)
    span_h[g[last]] = dt_h[last]

    # Values near the float64 limit overflow the sums to infinities (and inf - inf to NaN):
    # no line in float64, so the results below are NaN there, without a warning.
    with np.errstate(over="ignore", invalid="ignore"):
        mean_t = np.divide(np.bincount(g, dt_h, minlength=k), n, out=np.full(k, np.nan), where=has)
        mean_v = np.divide(np.bincount(g, v, minlength=k), n, out=np.full(k, np.nan), where=has)
        # Centred sums: subtract the group means before multiplying, which keeps precision.
        tc = dt_h - mean_t[g]
        vc = v - mean_v[g]
        sxx = np.bincount(g, tc * tc, minlength=k)
        sxy = np.bincount(g, tc * vc, minlength=k)
        sloped = span_h > 0  # implies n >= 2
        slope = np.divide(sxy, sxx, out=np.full(k, np.nan), where=sloped)
        value_at_last = mean_v.copy()
        value_at_last[sloped] += slope[sloped] * (span_h[sloped] - mean_t[sloped])
    slope[~np.isfinite(slope)] = np.nan
    value_at_last[~np.isfinite(value_at_last)] = np.nan

    # Newest reading of any value, for series without one; lexsort keeps input order on ties.
    o_all = np.lexsort((ts_ms, inv))
    g_all = inv[o_all]
    _, last_all = _group_edges(g_all)
    last_ts = np.zeros(k, dtype=np.int64)
    last_ts[g_all[last_all]] = ts_ms[o_all][last_all]
    last_ts[g[last]] = t[last]
    last_value = np.full(k, np.nan)
    last_value[g[last]] = v[last]
    return Trend(
        series=uniq.astype(np.int64),
        n=n,
        slope_per_h=slope,
        value_at_last=value_at_last,
        last_ts_ms=last_ts,
        last_value=last_value,
    )
