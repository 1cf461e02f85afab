"""processing.baseline against plain-Python references: medians of the same hour on past weeks."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processing.baseline import MS_PER_WEEK, lookup, typical, typical_at

NAN = math.nan
HOUR = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z in Unix ms

small_series = st.integers(0, 2)
wide_series = st.integers(-(2**63), 2**63 - 1)


def i64(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def f64(values) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def same(actual: np.ndarray, expected: list[float]) -> bool:
    """Equal element by element, NaN equal to NaN."""
    return np.array_equal(actual, f64(expected), equal_nan=True)


# --- typical, lookup -------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(
            st.one_of(small_series, wide_series),
            st.integers(0, 3),
            st.one_of(st.just(NAN), st.floats(-1e9, 1e9, allow_nan=False)),
        ),
        max_size=80,
    )
)
def test_typical_matches_reference(rows):
    groups: dict[tuple[int, int], list[float]] = {}
    for s, k, v in rows:
        groups.setdefault((s, k), [])
        if not math.isnan(v):
            groups[(s, k)].append(v)
    keys = sorted(groups)
    series, slot, median, count = typical(
        i64([r[0] for r in rows]), i64([r[1] for r in rows]), f64([r[2] for r in rows])
    )
    assert series.tolist() == [k[0] for k in keys]
    assert slot.tolist() == [k[1] for k in keys]
    assert same(median, [statistics.median(groups[k]) if groups[k] else NAN for k in keys])
    assert count.tolist() == [len(groups[k]) for k in keys]


key_pairs = st.tuples(
    st.one_of(small_series, wide_series), st.one_of(st.integers(0, 3), wide_series)
)


@given(
    st.dictionaries(key_pairs, st.floats(-1e6, 1e6, allow_nan=False), max_size=30),
    st.lists(key_pairs, max_size=40),
)
def test_lookup_matches_reference(table, queries):
    queries = queries + list(table)[:5]  # some hits for sure
    actual = lookup(
        i64([q[0] for q in queries]),
        i64([q[1] for q in queries]),
        i64([k[0] for k in table]),
        i64([k[1] for k in table]),
        f64(list(table.values())),
    )
    assert same(actual, [table.get(q, NAN) for q in queries])


def test_typical_median_of_an_even_count():
    zone = i64([3, 3, 3, 3, 3, 1, 3, 3])
    slot = i64([5, 5, 5, 5, 5, 5, 9, 2])
    value = f64([10, 40, NAN, 20, 30, 7, NAN, 1])
    series, slots, median, count = typical(zone, slot, value)
    assert series.tolist() == [1, 3, 3, 3]
    assert slots.tolist() == [5, 2, 5, 9]
    assert same(median, [7, 1, 25, NAN])
    assert count.tolist() == [1, 1, 4, 0]
    # ...and looked up for this week's intervals.
    now = lookup(i64([3, 3, 4]), i64([5, 9, 5]), series, slots, median)
    assert same(now, [25, NAN, NAN])


def test_typical_and_lookup_of_nothing():
    e_i, e_f = i64([]), f64([])
    assert [a.shape for a in typical(e_i, e_i, e_f)] == [(0,)] * 4
    assert lookup(e_i, e_i, i64([1]), i64([1]), f64([1])).shape == (0,)
    assert same(lookup(i64([1]), i64([1]), e_i, e_i, e_f), [NAN])


# --- typical_at ------------------------------------------------------------------------------


def reference_typical_at(queries, past, weeks):
    """For each (series, hour): the median of the past values of that series 1..weeks whole
    weeks earlier, NaN values left out; NaN when none."""
    out = []
    for series, hour in queries:
        found = [
            value
            for s, h, value in past
            if s == series
            and (hour - h) % MS_PER_WEEK == 0
            and 1 <= (hour - h) // MS_PER_WEEK <= weeks
            and not math.isnan(value)
        ]
        out.append(statistics.median(found) if found else NAN)
    return out


# Hours a few weeks around T0, on a grid so that whole-week lags happen often; a few times
# off the hour test that only exact weeks count.
hours = st.one_of(
    st.integers(-6 * 168, 6 * 168).map(lambda h: T0 + h * HOUR),
    st.integers(-6 * 168, 6 * 168).map(lambda h: T0 + h * HOUR + 1),
)
# Few hours of the week (0, 1, 2 and whole weeks) make matches likely.
grid_hours = st.tuples(st.integers(-6, 6), st.integers(0, 2)).map(
    lambda wh: T0 + wh[0] * MS_PER_WEEK + wh[1] * HOUR
)
past_values = st.one_of(st.just(NAN), st.integers(0, 500).map(float), st.floats(0, 1e6))


@given(
    st.dictionaries(
        st.tuples(small_series, st.one_of(grid_hours, hours)), past_values, max_size=60
    ),
    st.lists(
        st.tuples(st.one_of(small_series, wide_series), st.one_of(grid_hours, hours)), max_size=30
    ),
    st.integers(1, 6),
)
def test_typical_at_matches_reference(past, queries, weeks):
    rows = [(s, h, v) for (s, h), v in past.items()]
    got = typical_at(
        i64([q[0] for q in queries]),
        i64([q[1] for q in queries]),
        i64([r[0] for r in rows]),
        i64([r[1] for r in rows]),
        f64([r[2] for r in rows]),
        weeks=weeks,
    )
    assert got.dtype == np.float64
    assert same(got, reference_typical_at(queries, rows, weeks))


def test_typical_sunday_10_00_from_the_last_four_sundays():
    sunday = T0 + 4 * 24 * HOUR + 3 * HOUR  # 2025-01-05 10:00 WIB, a Sunday
    past_hour = [sunday - w * MS_PER_WEEK for w in (1, 2, 3, 4, 5)] + [sunday - HOUR]
    past_value = [120.0, 80.0, 100.0, 300.0, 9999.0, 7.0]  # 5 weeks back, an hour back: not
    got = typical_at(
        i64([4, 4, 5]),
        i64([sunday, sunday + MS_PER_WEEK, sunday]),
        i64([4] * 6),
        i64(past_hour),
        f64(past_value),
        weeks=4,
    )
    # Sunday: the median of 120, 80, 100 and 300; a week later, of the Sundays 1..4 weeks
    # before it: 120, 80 and 100 (this Sunday has no value yet); another zone: none.
    assert same(got, [110.0, 100.0, NAN])


def test_typical_at_rejects_bad_input():
    one = i64([T0])
    with pytest.raises(ValueError, match="weeks"):
        typical_at(one, one, one, one, f64([1]), weeks=0)
    with pytest.raises(ValueError, match="distinct"):
        typical_at(one, one, i64([1, 1]), i64([T0, T0]), f64([1, 2]), weeks=4)
    assert typical_at(i64([]), i64([]), one, one, f64([1]), weeks=4).shape == (0,)
