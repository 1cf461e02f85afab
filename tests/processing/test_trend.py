"""processing.trend against a plain-Python reference in exact arithmetic, and known lines."""

from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processing.trend import MS_PER_H, linear_trend

NAN = math.nan
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z in Unix ms: real magnitudes test precision
QUARTER_H = 900_000

series_ids = st.one_of(st.integers(0, 3), st.sampled_from([-(2**40), -1, 7, 2**40]))
# Few distinct offsets give duplicate times; wide ones give irregular gaps.
ts_values = st.one_of(
    st.integers(0, 8).map(lambda q: q * QUARTER_H), st.integers(0, 10 * 86_400_000)
).map(lambda offset: T0 + offset)
# Fill levels (%), temperatures (°C) and battery voltages (V) alike: the unit is the caller's.
values = st.one_of(
    st.sampled_from([NAN, math.inf, -math.inf]),
    st.integers(0, 120).map(float),
    st.floats(0, 120),
    st.floats(-40, 80),
    st.floats(2.5, 4.5),
)
readings = st.lists(st.tuples(series_ids, ts_values, values), max_size=60)


def columns(rows):
    return (
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
    )


def by_series_in_time_order(rows) -> dict[int, list[int]]:
    """Input indices per series, sorted by time; sorted() is stable: ties keep input order."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i in sorted(range(len(rows)), key=lambda i: rows[i][1]):
        groups[rows[i][0]].append(i)
    return dict(sorted(groups.items()))


def reference_trend(rows):
    """Per series: (series, n, slope, value_at_last, last_ts, last_value, and the scales of
    the slope and the value, for the tolerance), by least squares in exact fractions."""
    out = []
    for key, indices in by_series_in_time_order(rows).items():
        used = [i for i in indices if math.isfinite(rows[i][2])]
        n = len(used)
        last_ts = rows[(used or indices)[-1]][1]  # newest valid value, else newest reading
        last_value = rows[used[-1]][2] if used else NAN
        slope = value_at_last = NAN
        scale_slope = scale_value = 0.0
        if n:
            ts = [Fraction(rows[i][1], MS_PER_H) for i in used]
            vs = [Fraction(rows[i][2]) for i in used]
            mean_t, mean_v = sum(ts) / n, sum(vs) / n
            sxx = sum((t - mean_t) ** 2 for t in ts)
            syy = sum((v - mean_v) ** 2 for v in vs)
            if sxx:
                exact = sum((t - mean_t) * (v - mean_v) for t, v in zip(ts, vs, strict=True)) / sxx
                slope = float(exact)
                value_at_last = float(mean_v + exact * (Fraction(last_ts, MS_PER_H) - mean_t))
                scale_slope = math.sqrt(syy / sxx)
            else:
                value_at_last = float(mean_v)
            scale_value = max(abs(v) for v in vs) + math.sqrt(syy)
        out.append((key, n, slope, value_at_last, last_ts, last_value, scale_slope, scale_value))
    return out


def close(got, expected, scale):
    if math.isnan(expected):
        return math.isnan(got)
    return abs(got - expected) <= 1e-9 * (abs(expected) + scale) + 1e-12


@given(readings)
def test_linear_trend_matches_reference(rows):
    trend = linear_trend(*columns(rows))
    expected = reference_trend(rows)
    assert trend.series.tolist() == [e[0] for e in expected]
    assert trend.series.tolist() == np.unique(columns(rows)[0]).tolist()
    assert trend.n.tolist() == [e[1] for e in expected]
    assert trend.last_ts_ms.tolist() == [e[4] for e in expected]
    np.testing.assert_array_equal(trend.last_value, np.array([e[5] for e in expected]))
    for got_slope, got_value, (_, _, slope, value_at_last, _, _, s_slope, s_value) in zip(
        trend.slope_per_h, trend.value_at_last, expected, strict=True
    ):
        assert close(float(got_slope), slope, s_slope), (got_slope, slope)
        assert close(float(got_value), value_at_last, s_value), (got_value, value_at_last)
    for array in (trend.series, trend.n, trend.last_ts_ms):
        assert array.dtype == np.int64


def test_bin_filling_at_2_pct_per_hour():
    ts = T0 + QUARTER_H * np.arange(41, dtype=np.int64)  # 10 h of readings
    fill_pct = 10.0 + 2.0 * (ts - T0) / MS_PER_H
    trend = linear_trend(np.full(41, 5, dtype=np.int64), ts, fill_pct)
    assert trend.series.tolist() == [5]
    assert trend.n.tolist() == [41]
    assert trend.slope_per_h[0] == pytest.approx(2.0, rel=1e-12)  # % per hour
    assert trend.value_at_last[0] == pytest.approx(30.0, rel=1e-12)
    assert trend.last_ts_ms[0] == ts[-1]
    assert trend.last_value[0] == 30.0


def test_battery_draining_in_volts_per_hour():
    ts = T0 + 3_600_000 * np.arange(25, dtype=np.int64)  # a day of hourly readings
    battery_v = 4.1 - 0.005 * np.arange(25)
    trend = linear_trend(np.zeros(25, dtype=np.int64), ts, battery_v)
    assert trend.slope_per_h[0] == pytest.approx(-0.005, rel=1e-9)  # V per hour
    assert trend.last_value[0] == pytest.approx(3.98)


def test_linear_trend_degenerate_series():
    series = np.array([1, 2, 2, 3, 3], dtype=np.int64)
    ts = np.array([T0, T0, T0, T0 + 5, T0 + 9], dtype=np.int64)
    value = np.array([40.0, 30.0, 50.0, NAN, NAN])
    trend = linear_trend(series, ts, value)
    assert trend.n.tolist() == [1, 2, 0]
    assert np.isnan(trend.slope_per_h).all()  # one reading; equal times; no value
    np.testing.assert_array_equal(trend.value_at_last, [40.0, 40.0, NAN])
    np.testing.assert_array_equal(trend.last_value, [40.0, 50.0, NAN])  # tie: last in input
    assert trend.last_ts_ms.tolist() == [T0, T0, T0 + 9]


def test_linear_trend_ignores_infinities_and_never_overflows_to_one():
    series = np.array([1, 1, 1, 2, 2, 3, 3], dtype=np.int64)
    ts = T0 + np.array([0, 1, 2, 0, 1, 0, 1], dtype=np.int64) * 3_600_000
    value = np.array([10.0, math.inf, 12.0, 1e308, -1e308, 5.0, -math.inf])
    trend = linear_trend(series, ts, value)  # no warning (warnings are errors in the tests)
    assert trend.n.tolist() == [2, 2, 1]
    assert trend.slope_per_h[0] == pytest.approx(1.0)  # the infinity is not on the line
    assert trend.last_value.tolist() == [12.0, -1e308, 5.0]
    # -2e308 per hour is beyond float64: no line, rather than an infinite one.
    assert np.isnan(trend.slope_per_h[1:]).all()
    assert np.isnan(trend.value_at_last[1])
    assert trend.last_ts_ms.tolist() == [T0 + 2 * 3_600_000, T0 + 3_600_000, T0]


@given(st.lists(st.tuples(series_ids, ts_values, st.floats(allow_nan=True)), max_size=30))
def test_linear_trend_results_are_finite_or_nan_whatever_the_values(rows):
    trend = linear_trend(*columns(rows))
    for array in (trend.slope_per_h, trend.value_at_last, trend.last_value):
        assert not np.isinf(array).any()


def test_linear_trend_empty():
    empty = np.zeros(0, dtype=np.int64)
    trend = linear_trend(empty, empty, np.zeros(0))
    assert trend.series.shape == trend.slope_per_h.shape == trend.last_value.shape == (0,)
