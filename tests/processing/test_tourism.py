"""processing.tourism against plain-Python references, and days at the beach with known answers."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processing.localtime import WIB_OFFSET_S
from processing.tourism import (
    CROWDING_LEVELS,
    FRUIN_LEVELS,
    FRUIN_REL_TOL,
    crowding,
    cumulative_in,
    density_ppm2,
    fruin_level,
    hourly,
    intervals,
    occupancy,
    session_day,
    state_now,
)

NAN = math.nan
WIB = timezone(timedelta(hours=7))
EPOCH = datetime(1970, 1, 1)  # naive: local wall-clock arithmetic in the references
EPOCH_DATE = date(1970, 1, 1)


def ms(dt: datetime) -> int:
    """Unix ms of an aware datetime, exactly."""
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def wib_ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> int:
    return ms(datetime(y, mo, d, h, mi, tzinfo=WIB))


def day(y: int, mo: int, d: int) -> int:
    return (date(y, mo, d) - EPOCH_DATE).days


def i64(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def f64(values) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def local(ts_ms: int, offset_s: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ts_ms + offset_s * 1000)


# --- strategies --------------------------------------------------------------------------------

int_counts = st.one_of(st.sampled_from([NAN, math.inf, -math.inf]), st.integers(0, 40).map(float))
float_counts = st.one_of(st.just(NAN), st.floats(0, 1000, allow_nan=False))
# Small key ranges give duplicate timestamps, several sessions and series; wide ones check that
# any int64 key works.
small_series = st.integers(0, 2)
wide_series = st.integers(-(2**63), 2**63 - 1)
count_rows = st.lists(
    st.tuples(
        st.one_of(small_series, wide_series),
        st.integers(0, 3),
        st.integers(0, 6),
        int_counts,
        int_counts,
    ),
    max_size=80,
)
float_count_rows = st.lists(
    st.tuples(small_series, st.integers(0, 2), st.integers(0, 6), float_counts, float_counts),
    max_size=80,
)
single_series_rows = st.lists(
    st.tuples(st.just(7), st.just(0), st.integers(0, 100), int_counts, int_counts), max_size=80
)
timestamps = st.lists(st.integers(-(2**41), 2**42), max_size=40)
offsets = st.one_of(st.just(WIB_OFFSET_S), st.integers(-12 * 3600, 14 * 3600))
densities = st.one_of(
    st.just(NAN),
    st.just(math.inf),
    st.sampled_from([1.0 / level.min_area_m2_per_person for level in FRUIN_LEVELS[:-1]]),
    st.floats(0, 5, allow_nan=False),
)
maybe = st.one_of(st.just(NAN), st.floats(-10, 1000, allow_nan=False))


def count_columns(rows):
    return (
        i64([r[0] for r in rows]),
        i64([r[1] for r in rows]),
        i64([r[2] for r in rows]),
        f64([r[3] for r in rows]),
        f64([r[4] for r in rows]),
    )


# --- plain-Python references -------------------------------------------------------------------


def nz(x: float) -> float:
    """A count as counted: not finite (missing, or no count) is 0."""
    return x if math.isfinite(x) else 0.0


def time_order(rows) -> list[int]:
    return sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1], rows[i][2], i))


def ref_occupancy(rows) -> list[float]:
    inside: dict[tuple[int, int], float] = {}
    out = [0.0] * len(rows)
    for i in time_order(rows):
        key = (rows[i][0], rows[i][1])
        inside[key] = max(0.0, inside.get(key, 0.0) + nz(rows[i][3]) - nz(rows[i][4]))
        out[i] = inside[key]
    return out


def ref_cumulative_in(rows) -> list[float]:
    so_far: dict[tuple[int, int], float] = {}
    out = [0.0] * len(rows)
    for i in time_order(rows):
        key = (rows[i][0], rows[i][1])
        so_far[key] = so_far.get(key, 0.0) + nz(rows[i][3])
        out[i] = so_far[key]
    return out


def ref_session_day(ts_ms: int, closing_minute: int, offset_s: int) -> int:
    at = local(ts_ms, offset_s)
    closing = datetime.combine(at.date(), time()) + timedelta(minutes=closing_minute)
    if at > closing:
        closing += timedelta(days=1)
    # The session is named after the date of its middle, 12 h before it closes.
    return ((closing - timedelta(hours=12)).date() - EPOCH_DATE).days


def ref_fruin(density: float) -> int:
    if math.isnan(density):
        return -1
    area = 1.0 / density if density > 0 else math.inf  # m² per person
    for level in FRUIN_LEVELS[:-1]:
        bound = level.min_area_m2_per_person
        if area >= bound or math.isclose(area, bound, rel_tol=FRUIN_REL_TOL):
            return level.code
    return FRUIN_LEVELS[-1].code


def ref_crowding(occ: float, cap: float, busy: float, crowded: float) -> tuple[float, int]:
    if math.isnan(cap) or cap <= 0 or math.isnan(occ):
        return NAN, -1
    ratio = occ / cap
    if ratio < busy:
        return ratio, 0
    if ratio < crowded:
        return ratio, 1
    if ratio <= 1.0:
        return ratio, 2
    return ratio, 3


def same(actual: np.ndarray, expected: list[float]) -> bool:
    """Equal element by element, NaN equal to NaN."""
    return np.array_equal(actual, f64(expected), equal_nan=True)


# --- property tests ----------------------------------------------------------------------------


@given(st.one_of(count_rows, single_series_rows))
def test_occupancy_matches_reference_exactly_for_whole_counts(rows):
    assert occupancy(*count_columns(rows)).tolist() == ref_occupancy(rows)


@given(float_count_rows)
def test_occupancy_matches_reference_for_fractional_counts(rows):
    np.testing.assert_allclose(
        occupancy(*count_columns(rows)), ref_occupancy(rows), rtol=1e-9, atol=1e-9
    )


@given(float_count_rows)
def test_occupancy_of_a_series_does_not_depend_on_the_rest_of_the_batch(rows):
    series, session, ts, c_in, c_out = count_columns(rows)
    alone = series == 0
    expected = occupancy(series[alone], session[alone], ts[alone], c_in[alone], c_out[alone])
    assert np.array_equal(occupancy(series, session, ts, c_in, c_out)[alone], expected)


@given(st.one_of(count_rows, single_series_rows))
def test_cumulative_in_matches_reference(rows):
    series, session, ts, c_in, _ = count_columns(rows)
    assert cumulative_in(series, session, ts, c_in).tolist() == ref_cumulative_in(rows)


@given(float_count_rows)
def test_cumulative_in_matches_reference_for_fractional_counts(rows):
    series, session, ts, c_in, _ = count_columns(rows)
    np.testing.assert_allclose(
        cumulative_in(series, session, ts, c_in), ref_cumulative_in(rows), rtol=1e-9, atol=1e-9
    )


@given(timestamps, st.integers(0, 1439), offsets)
def test_session_day_matches_reference(ts, closing_minute, offset_s):
    expected = [ref_session_day(t, closing_minute, offset_s) for t in ts]
    assert session_day(i64(ts), closing_minute, offset_s).tolist() == expected


@given(st.lists(st.tuples(maybe, maybe), max_size=40))
def test_density_matches_reference(pairs):
    expected = [NAN if math.isnan(a) or a <= 0 else o / a for o, a in pairs]
    actual = density_ppm2(f64([p[0] for p in pairs]), f64([p[1] for p in pairs]))
    assert same(actual, expected)


@given(st.lists(densities, max_size=40))
def test_fruin_level_matches_reference(values):
    actual = fruin_level(f64(values))
    assert actual.dtype == np.int8
    assert actual.tolist() == [ref_fruin(v) for v in values]


@given(
    st.lists(st.tuples(maybe, maybe), max_size=40),
    st.sampled_from([(0.7, 0.9), (0.5, 0.8), (0.8, 0.8), (0.6, 1.0)]),
)
def test_crowding_matches_reference(pairs, bounds):
    busy, crowded = bounds
    ratio, level = crowding(
        f64([p[0] for p in pairs]), f64([p[1] for p in pairs]), busy=busy, crowded=crowded
    )
    expected = [ref_crowding(o, c, busy, crowded) for o, c in pairs]
    assert same(ratio, [e[0] for e in expected])
    assert level.dtype == np.int8
    assert level.tolist() == [e[1] for e in expected]


@given(
    st.lists(st.tuples(st.integers(-(2**41), 2**42), st.integers(0, 1439)), max_size=40), offsets
)
def test_session_day_per_interval_closing_matches_reference(rows, offset_s):
    expected = [ref_session_day(t, c, offset_s) for t, c in rows]
    got = session_day(i64([r[0] for r in rows]), i64([r[1] for r in rows]), offset_s)
    assert got.tolist() == expected


def test_session_day_rejects_any_closing_outside_the_day():
    with pytest.raises(ValueError, match=r"closing_minute .* got \[1440\]"):
        session_day(i64([0, 0, 0]), i64([0, 1440, 600]))


def ref_intervals(rows, width_ms):
    """rows: (series, start, is_in, count) -> sorted [(series, end, in, out)]."""
    sums: dict[tuple[int, int], list[float]] = {}
    for series, start, is_in, count in rows:
        both = sums.setdefault((series, start), [0.0, 0.0])
        both[0 if is_in else 1] += count
    return [(s, t + width_ms, c[0], c[1]) for (s, t), c in sorted(sums.items())]


@given(
    st.lists(
        st.tuples(
            st.one_of(small_series, wide_series),
            st.integers(0, 5).map(lambda m: m * 60_000),
            st.booleans(),
            st.one_of(st.integers(0, 40).map(float), st.floats(0, 1000)),
        ),
        max_size=60,
    ),
    st.sampled_from([60_000, 900_000]),
)
def test_intervals_matches_reference(rows, width_ms):
    got = intervals(
        i64([r[0] for r in rows]),
        i64([r[1] for r in rows]),
        np.array([r[2] for r in rows], dtype=np.bool_),
        f64([r[3] for r in rows]),
        width_ms=width_ms,
    )
    expected = ref_intervals(rows, width_ms)
    assert got.series.tolist() == [e[0] for e in expected]
    assert got.ts_ms.tolist() == [e[1] for e in expected]
    assert got.count_in.tolist() == [e[2] for e in expected]
    assert got.count_out.tolist() == [e[3] for e in expected]


HOUR_MS = 3_600_000


def ref_hourly(rows):
    """rows: (series, end_ms, in, visitors, occupancy) -> sorted [(series, hour, entries,
    visitors, occupancy)], the hour's last interval in time order (ties: input order)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i in sorted(range(len(rows)), key=lambda i: rows[i][1]):
        end = rows[i][1]
        hour = (end - 1) // HOUR_MS * HOUR_MS  # the hour holding the interval's last ms
        groups.setdefault((rows[i][0], hour), []).append(i)
    out = []
    for (series, hour), indices in sorted(groups.items()):
        entries = 0.0
        for i in indices:
            entries += nz(rows[i][2])
        last = rows[indices[-1]]
        out.append((series, hour, entries, last[3], last[4]))
    return out


@given(
    st.lists(
        st.tuples(
            st.one_of(small_series, wide_series),
            st.one_of(
                st.integers(-3 * 60, 3 * 60).map(lambda m: m * 60_000),  # on whole minutes
                st.integers(-(2**41), 2**42),
            ),
            float_counts,
            st.floats(0, 1e6),
            st.floats(0, 1e6),
        ),
        max_size=60,
    )
)
def test_hourly_matches_reference(rows):
    got = hourly(
        *(i64([r[j] for r in rows]) for j in range(2)),
        *(f64([r[j] for r in rows]) for j in range(2, 5)),
    )
    expected = ref_hourly(rows)
    assert got.series.tolist() == [e[0] for e in expected]
    assert got.hour_ms.tolist() == [e[1] for e in expected]
    assert got.entries.tolist() == [e[2] for e in expected]
    assert got.visitors_to_date.tolist() == [e[3] for e in expected]
    assert got.occupancy.tolist() == [e[4] for e in expected]


def ref_state_now(rows, now_session, now_ms):
    """rows: (series, session, ts, occupancy, visitors) -> per series index (occ, vis, ts)."""
    out = [(0.0, 0.0, now_ms) for _ in now_session]
    for i in sorted(range(len(rows)), key=lambda i: rows[i][2]):  # later rows win
        series, session, ts, occ, visitors = rows[i]
        if session == now_session[series]:
            out[series] = (occ, visitors, ts)
    return out


@given(
    st.integers(1, 4).flatmap(
        lambda k: st.tuples(
            st.lists(
                st.tuples(
                    st.integers(0, k - 1),
                    st.integers(0, 2),
                    st.integers(0, 8),
                    st.floats(0, 1e6),
                    st.floats(0, 1e6),
                ),
                max_size=40,
            ),
            st.lists(st.integers(0, 2), min_size=k, max_size=k),
        )
    ),
    st.integers(0, 10),
)
def test_state_now_matches_reference(rows_and_sessions, now_ms):
    rows, now_session = rows_and_sessions
    got = state_now(
        *(i64([r[j] for r in rows]) for j in range(3)),
        f64([r[3] for r in rows]),
        f64([r[4] for r in rows]),
        i64(now_session),
        now_ms,
    )
    expected = ref_state_now(rows, now_session, now_ms)
    assert got.occupancy.tolist() == [e[0] for e in expected]
    assert got.visitors_to_date.tolist() == [e[1] for e in expected]
    assert got.ts_ms.tolist() == [e[2] for e in expected]
    assert got.ts_ms.dtype == np.int64


# --- scenarios with known answers --------------------------------------------------------------


def test_a_day_at_the_beach():
    """Pantai Kartini closes at 18:00 WIB; rows arrive out of order."""
    beach, museum = 11, 12
    rows = [  # (series, local time, in, out, expected occupancy, expected visitors so far)
        (beach, (2024, 3, 10, 6, 0), 10, 0, 10, 10),
        # More out than in: people came in uncounted; never below zero.
        (beach, (2024, 3, 10, 7, 0), 5, 20, 0, 15),
        (beach, (2024, 3, 10, 8, 0), 30, 0, 30, 45),
        (beach, (2024, 3, 10, 12, 0), 50, 10, 70, 95),
        (beach, (2024, 3, 10, 13, 0), NAN, 5, 65, 95),  # in-counter gap counts as 0
        # The counters missed 30 people leaving: 35 "inside" at closing...
        (beach, (2024, 3, 10, 17, 0), 0, 30, 35, 95),
        (beach, (2024, 3, 10, 18, 0), 0, 0, 35, 95),  # ...still the closing day
        # ...and the next session starts from 0, including the night after closing.
        (beach, (2024, 3, 10, 18, 1), 0, 2, 0, 0),
        (beach, (2024, 3, 11, 6, 0), 4, 0, 4, 4),
        (museum, (2024, 3, 10, 12, 0), 8, 0, 8, 8),  # another series, same times
        (museum, (2024, 3, 10, 17, 0), 1, 3, 6, 9),
    ]
    shuffled = [rows[i] for i in (5, 0, 9, 3, 8, 1, 10, 7, 2, 6, 4)]
    series = i64([r[0] for r in shuffled])
    ts = i64([wib_ms(*r[1]) for r in shuffled])
    c_in, c_out = f64([r[2] for r in shuffled]), f64([r[3] for r in shuffled])
    session = session_day(ts, 18 * 60)
    assert session.tolist() == [
        day(2024, 3, 11) if r[1] >= (2024, 3, 10, 18, 1) else day(2024, 3, 10) for r in shuffled
    ]
    assert occupancy(series, session, ts, c_in, c_out).tolist() == [r[4] for r in shuffled]
    assert cumulative_in(series, session, ts, c_in).tolist() == [r[5] for r in shuffled]


def test_occupancy_keeps_input_order_for_equal_times():
    ts = i64([5, 5, 5])
    zeros = i64([0, 0, 0])
    # In time order and, for equal times, input order: +3, -5 (clamped), +2.
    assert occupancy(zeros, zeros, ts, f64([3, 0, 2]), f64([0, 5, 0])).tolist() == [3, 0, 2]


def test_empty_inputs():
    e_i, e_f = i64([]), f64([])
    assert occupancy(e_i, e_i, e_i, e_f, e_f).shape == (0,)
    assert cumulative_in(e_i, e_i, e_i, e_f).shape == (0,)
    assert intervals(e_i, e_i, np.zeros(0, np.bool_), e_f, width_ms=60_000).ts_ms.shape == (0,)
    assert hourly(e_i, e_i, e_f, e_f, e_f).hour_ms.shape == (0,)
    assert state_now(e_i, e_i, e_i, e_f, e_f, i64([3]), 7).ts_ms.tolist() == [7]
    assert session_day(e_i, 0).shape == (0,)


@pytest.mark.parametrize(
    ("closing", "at", "expected"),
    [
        # Closing 18:00: the day closing at 18:00 includes the interval ending at 18:00.
        ((18, 0), (2024, 3, 10, 17, 59), (2024, 3, 10)),
        ((18, 0), (2024, 3, 10, 18, 0), (2024, 3, 10)),
        ((18, 0), (2024, 3, 10, 18, 1), (2024, 3, 11)),
        ((18, 0), (2024, 3, 10, 23, 59), (2024, 3, 11)),
        ((18, 0), (2024, 3, 11, 0, 0), (2024, 3, 11)),
        ((18, 0), (2024, 3, 11, 0, 1), (2024, 3, 11)),
        # Closing at midnight: the interval ending 00:00 is the day before's last.
        ((0, 0), (2024, 3, 10, 23, 59), (2024, 3, 10)),
        ((0, 0), (2024, 3, 11, 0, 0), (2024, 3, 10)),
        ((0, 0), (2024, 3, 11, 0, 1), (2024, 3, 11)),
        # A night market closing at 02:00 is named after its evening.
        ((2, 0), (2024, 3, 10, 20, 0), (2024, 3, 10)),
        ((2, 0), (2024, 3, 11, 2, 0), (2024, 3, 10)),
        ((2, 0), (2024, 3, 11, 2, 1), (2024, 3, 11)),
        # Closing at noon: named after the closing date.
        ((12, 0), (2024, 3, 10, 12, 0), (2024, 3, 10)),
        ((12, 0), (2024, 3, 10, 12, 1), (2024, 3, 11)),
    ],
)
def test_session_day_around_midnight_and_closing(closing, at, expected):
    closing_minute = closing[0] * 60 + closing[1]
    assert session_day(i64([wib_ms(*at)]), closing_minute).tolist() == [day(*expected)]


def test_session_day_uses_local_time():
    # 18:00 WIB is 11:00 UTC; with a UTC offset the same instant is before an 18:00 closing.
    ts = i64([ms(datetime(2024, 3, 10, 11, 0, tzinfo=UTC)) + 60_000])
    assert session_day(ts, 18 * 60).tolist() == [day(2024, 3, 11)]
    assert session_day(ts, 18 * 60, tz_offset_s=0).tolist() == [day(2024, 3, 10)]


@pytest.mark.parametrize("closing_minute", [-1, 1440])
def test_session_day_rejects_closing_outside_the_day(closing_minute):
    with pytest.raises(ValueError, match="closing_minute"):
        session_day(i64([0]), closing_minute)


def test_fruin_levels_at_the_exact_thresholds():
    bounds = [1 / 3.24, 1 / 2.32, 1 / 1.39, 1 / 0.93, 1 / 0.46]
    at = fruin_level(f64([0.0, *bounds, NAN, math.inf]))
    assert at.tolist() == [0, 0, 1, 2, 3, 4, -1, 5]
    assert fruin_level(f64(bounds) * (1 + 1e-6)).tolist() == [1, 2, 3, 4, 5]
    assert fruin_level(f64(bounds) * (1 - 1e-6)).tolist() == [0, 1, 2, 3, 4]
    # From people and area: 10 people on 32.4 m² is exactly A's lower bound; one more is B.
    assert fruin_level(density_ppm2(f64([10, 11]), f64([32.4, 32.4]))).tolist() == [0, 1]
    assert [lvl.letter for lvl in FRUIN_LEVELS] == list("ABCDEF")
    assert [lvl.code for lvl in FRUIN_LEVELS] == list(range(6))
    assert FRUIN_LEVELS[0].description == "free flow"


def test_density_without_a_usable_area():
    assert same(density_ppm2(f64([10, 10, 10, NAN]), f64([0, -1, NAN, 5])), [NAN] * 4)
    assert density_ppm2(f64([10]), f64([4])).tolist() == [2.5]
    assert density_ppm2(f64([1]), f64([5e-324])).tolist() == [math.inf]


def test_crowding_at_the_level_bounds():
    occ = f64([0, 69, 70, 89, 90, 100, 101, NAN, 10, 10, 10])
    cap = f64([100, 100, 100, 100, 100, 100, 100, 100, 0, -5, NAN])
    ratio, level = crowding(occ, cap)
    assert same(ratio, [0, 0.69, 0.7, 0.89, 0.9, 1.0, 1.01, NAN, NAN, NAN, NAN])
    assert level.tolist() == [0, 0, 1, 1, 2, 2, 3, -1, -1, -1, -1]
    assert [lvl.name for lvl in CROWDING_LEVELS] == [
        "normal",
        "ramai",
        "padat",
        "melebihi kapasitas",
    ]
    assert [lvl.code for lvl in CROWDING_LEVELS] == [0, 1, 2, 3]


@pytest.mark.parametrize(("busy", "crowded"), [(0.0, 0.9), (0.9, 0.7), (0.7, 1.2)])
def test_crowding_rejects_bad_bounds(busy, crowded):
    with pytest.raises(ValueError, match="busy"):
        crowding(f64([1]), f64([2]), busy=busy, crowded=crowded)


def test_counts_near_the_float_limit_give_no_warning():
    """Sums beyond float64 are infinities or NaN; warnings are errors in the tests."""
    series, session = i64([1, 1, 1]), i64([0, 0, 0])
    ts = i64([60_000, 120_000, 180_000])
    big = f64([1e308, 1e308, 0.0])
    occ = occupancy(series, session, ts, big, f64([0.0, 0.0, 1e308]))
    assert occ.tolist()[:2] == [1e308, math.inf]
    assert cumulative_in(series, session, ts, big).tolist()[1:] == [math.inf, math.inf]
    # An infinite count is no count.
    assert occupancy(
        series, session, ts, f64([math.inf, 5, 1]), f64([0, 1, -math.inf])
    ).tolist() == [0, 4, 5]
