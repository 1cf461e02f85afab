"""processing.waste against plain-Python references, and scenarios with known answers."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processing.waste import (
    COLLECTION_REASONS,
    MS_PER_H,
    emptying_events,
    fire_risk,
    needs_collection,
    overflow_hours,
    time_to_full_h,
    time_to_next_round_h,
    village_figures,
)

NAN = math.nan
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z in Unix ms: real magnitudes test precision
QUARTER_H = 900_000

series_ids = st.one_of(st.integers(0, 3), st.sampled_from([-(2**40), -1, 7, 2**40]))
# Few distinct offsets give duplicate times; wide ones give irregular gaps.
ts_values = st.one_of(
    st.integers(0, 8).map(lambda q: q * QUARTER_H), st.integers(0, 10 * 86_400_000)
).map(lambda offset: T0 + offset)
fills = st.one_of(
    st.sampled_from([NAN, math.inf, -math.inf, 1e308, -1e308]),
    st.integers(0, 120).map(float),  # whole numbers hit the thresholds exactly
    st.floats(0, 120),
)
tilts = st.one_of(st.just(NAN), st.sampled_from([0.0, 44.9, 45.0, 80.0]), st.floats(0, 180))
readings = st.lists(st.tuples(series_ids, ts_values, fills, tilts), max_size=60)


def columns(rows):
    return (
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.float64),
    )


def by_series_in_time_order(rows) -> dict[int, list[int]]:
    """Input indices per series, sorted by time; sorted() is stable: ties keep input order."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i in sorted(range(len(rows)), key=lambda i: rows[i][1]):
        groups[rows[i][0]].append(i)
    return dict(sorted(groups.items()))


# --- emptying_events -------------------------------------------------------------------------


def reference_emptying(rows, drop_pct=30.0, confirmed_drop_pct=15.0, tilt_threshold_deg=45.0):
    event = [False] * len(rows)
    before = [NAN] * len(rows)
    for indices in by_series_in_time_order(rows).values():
        finite = [i for i in indices if math.isfinite(rows[i][2])]
        for j, i in enumerate(finite):
            if j == 0:
                continue
            fill, tilt = rows[i][2], rows[i][3]
            previous = rows[finite[j - 1]][2]
            drop = previous - fill
            tipped = not math.isnan(tilt) and tilt >= tilt_threshold_deg
            stays_down = j + 1 < len(finite) and previous - rows[finite[j + 1]][2] >= drop_pct
            not_after_spike = j < 2 or rows[finite[j - 2]][2] - fill >= drop_pct
            if (tipped and drop >= confirmed_drop_pct) or (
                drop >= drop_pct and stays_down and not_after_spike
            ):
                event[i] = True
                before[i] = previous
    return event, before


@given(readings)
def test_emptying_events_matches_reference(rows):
    event, before = emptying_events(*columns(rows))
    expected_event, expected_before = reference_emptying(rows)
    assert event.dtype == np.bool_
    assert event.tolist() == expected_event
    np.testing.assert_array_equal(before, np.array(expected_before, dtype=np.float64))


@given(readings, st.sampled_from([10.0, 30.0]), st.sampled_from([5.0, 15.0]), st.floats(0, 90))
def test_emptying_events_settings_match_reference(rows, drop, confirmed, tilt_threshold):
    event, before = emptying_events(
        *columns(rows),
        drop_pct=drop,
        confirmed_drop_pct=confirmed,
        tilt_threshold_deg=tilt_threshold,
    )
    expected_event, expected_before = reference_emptying(rows, drop, confirmed, tilt_threshold)
    assert event.tolist() == expected_event
    np.testing.assert_array_equal(before, np.array(expected_before, dtype=np.float64))


def one_bin(fill, tilt=None):
    n = len(fill)
    ts = T0 + QUARTER_H * np.arange(n, dtype=np.int64)
    tilt_deg = np.full(n, NAN) if tilt is None else np.array(tilt, dtype=np.float64)
    return np.zeros(n, dtype=np.int64), ts, np.array(fill, dtype=np.float64), tilt_deg


def test_collection_round_85_to_5_is_an_event():
    event, before = emptying_events(*one_bin([80.0, 85.0, 5.0, 6.0]))
    assert event.tolist() == [False, False, True, False]
    np.testing.assert_array_equal(before, [NAN, NAN, 85.0, NAN])


def test_noisy_20_point_drop_needs_tilt():
    fill = [70.0, 72.0, 52.0, 53.0]
    assert not emptying_events(*one_bin(fill))[0].any()
    assert not emptying_events(*one_bin(fill, [0.0, 0.0, 10.0, 0.0]))[0].any()
    event, before = emptying_events(*one_bin(fill, [0.0, 0.0, 80.0, 0.0]))
    assert event.tolist() == [False, False, True, False]
    assert before[2] == 72.0


def test_nan_fill_is_skipped_as_previous_and_order_is_by_time():
    series, ts, fill, tilt = one_bin([90.0, NAN, 10.0, 12.0])
    # Reversed input: the outputs follow the input order.
    event, before = emptying_events(series[::-1], ts[::-1], fill[::-1], tilt[::-1])
    assert event.tolist() == [False, True, False, False]
    np.testing.assert_array_equal(before, [NAN, 90.0, NAN, NAN])


def test_one_spiked_reading_is_not_a_collection():
    # A single low reading between two full ones, and the drop after a single high one.
    assert not emptying_events(*one_bin([80.0, 82.0, 20.0, 83.0, 84.0]))[0].any()
    assert not emptying_events(*one_bin([60.0, 61.0, 120.0, 61.0, 62.0]))[0].any()
    # A drop with nothing after it yet is decided by the next reading.
    assert not emptying_events(*one_bin([80.0, 85.0, 5.0]))[0].any()
    event, _ = emptying_events(*one_bin([80.0, 85.0, 5.0], tilt=[0.0, 0.0, 90.0]))
    assert event.tolist() == [False, False, True]  # ... unless the tilt confirms it


def test_emptying_events_empty():
    event, before = emptying_events(*columns([]))
    assert event.shape == before.shape == (0,)


# --- time_to_full_h, time_to_next_round_h, needs_collection, fire_risk -----------------------

values = st.one_of(
    st.just(NAN), st.sampled_from([-1.0, 0.0, 2.0, 80.0, 100.0, math.inf]), st.floats(-200, 200)
)
pairs = st.lists(st.tuples(values, values), max_size=40)


def reference_time_to_full(fill, slope, full=100.0):
    if fill >= full:
        return 0.0
    if math.isnan(fill) or math.isnan(slope):
        return NAN
    return (full - fill) / slope if slope > 0 else math.inf


@given(pairs, st.sampled_from([100.0, 90.0]))
def test_time_to_full_matches_reference(rows, full):
    fill = np.array([r[0] for r in rows], dtype=np.float64)
    slope = np.array([r[1] for r in rows], dtype=np.float64)
    expected = [reference_time_to_full(f, s, full) for f, s in rows]
    got = time_to_full_h(fill, slope, full_pct=full)
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.float64))


def test_time_to_full_cases():
    fill = np.array([60.0, 100.0, 120.0, 50.0, 50.0, NAN, 50.0, 100.0])
    slope = np.array([2.0, 2.0, -1.0, 0.0, -3.0, 2.0, NAN, NAN])
    got = time_to_full_h(fill, slope)
    np.testing.assert_array_equal(got, [20.0, 0.0, 0.0, math.inf, math.inf, NAN, NAN, 0.0])


def reference_next_round_h(now_ms, collection_hour, offset_s):
    """Hours from now to the first local collection_hour:00 at or after it, by the calendar."""
    local = datetime(1970, 1, 1) + timedelta(milliseconds=now_ms + offset_s * 1000)
    round_at = datetime.combine(local.date(), datetime.min.time()) + timedelta(
        hours=collection_hour
    )
    if round_at < local:
        round_at += timedelta(days=1)
    return (round_at - local) / timedelta(hours=1)


@given(
    st.lists(st.integers(-(2**41), 2**42), max_size=40),
    st.integers(0, 23),
    st.one_of(st.just(7 * 3600), st.integers(-12 * 3600, 14 * 3600)),
)
def test_time_to_next_round_matches_reference(now, collection_hour, offset_s):
    got = time_to_next_round_h(np.array(now, dtype=np.int64), collection_hour, tz_offset_s=offset_s)
    assert got.dtype == np.float64
    assert got.tolist() == [reference_next_round_h(t, collection_hour, offset_s) for t in now]


def test_time_to_next_round_in_wib():
    wib = timezone(timedelta(hours=7))
    at = [
        datetime(2026, 11, 23, 16, 5, tzinfo=wib),  # after today's 07:00: tomorrow's
        datetime(2026, 11, 23, 7, 0, tzinfo=wib),  # exactly at the round: now
        datetime(2026, 11, 23, 6, 59, 59, 999000, tzinfo=wib),
        datetime(2026, 11, 23, 0, 0, tzinfo=UTC),  # 07:00 WIB
    ]
    now = np.array([int(t.timestamp() * 1000) for t in at], dtype=np.int64)
    assert time_to_next_round_h(now, 7).tolist() == [14 + 55 / 60, 0.0, 1 / 3_600_000, 0.0]


@pytest.mark.parametrize("hour", [-1, 24])
def test_time_to_next_round_rejects_an_hour_outside_the_day(hour):
    with pytest.raises(ValueError, match="collection_hour"):
        time_to_next_round_h(np.array([T0], dtype=np.int64), hour)


def reference_needs_collection(fill, hours, next_round, threshold=80.0, full=100.0):
    if fill >= full:
        return 3
    if fill >= threshold:
        return 1
    if math.isfinite(hours) and hours <= next_round:
        return 2
    return 0


@given(st.lists(st.tuples(values, values, values), max_size=40))
def test_needs_collection_matches_reference(rows):
    fill, hours, next_round = (np.array([r[j] for r in rows], dtype=np.float64) for j in range(3))
    got = needs_collection(fill, hours, next_round)
    assert got.dtype == np.int8
    assert got.tolist() == [reference_needs_collection(*r) for r in rows]


def test_needs_collection_each_reason():
    fill = np.array([100.0, 85.0, 50.0, 50.0, NAN, NAN, 50.0, 79.9])
    hours = np.array([0.0, 7.5, 10.0, 30.0, 5.0, NAN, math.inf, 100.0])
    next_round = np.array([24.0, 24.0, 24.0, 24.0, 24.0, 24.0, math.inf, 24.0])
    got = needs_collection(fill, hours, next_round)
    assert got.tolist() == [3, 1, 2, 0, 2, 0, 0, 0]
    assert [COLLECTION_REASONS[c] for c in got[:4]] == [
        "overflow",
        "over_threshold",
        "predicted_full",
        "none",
    ]


def reference_fire_risk(temp, rise, watch=45.0, alert=60.0, fast=10.0):
    if math.isnan(temp):
        return -1
    is_fast = not math.isnan(rise) and rise >= fast
    if temp >= alert or (temp >= watch and is_fast):
        return 2
    if temp >= watch or is_fast:
        return 1
    return 0


temperatures = st.one_of(
    st.just(NAN), st.sampled_from([44.9, 45.0, 60.0, 10.0]), st.floats(-20, 90)
)


@given(st.lists(st.tuples(temperatures, temperatures), max_size=40))
def test_fire_risk_matches_reference(rows):
    temp = np.array([r[0] for r in rows], dtype=np.float64)
    rise = np.array([r[1] for r in rows], dtype=np.float64)
    got = fire_risk(temp, rise)
    assert got.dtype == np.int8
    assert got.tolist() == [reference_fire_risk(*r) for r in rows]


def test_fire_risk_at_thresholds():
    temp = np.array([30.0, 44.9, 45.0, 45.0, 59.9, 60.0, 30.0, NAN, 45.0, 44.9])
    rise = np.array([0.0, 0.0, 0.0, 10.0, 9.9, 0.0, 10.0, 50.0, NAN, 10.0])
    assert fire_risk(temp, rise).tolist() == [0, 0, 1, 2, 1, 2, 1, -1, 1, 1]


# --- overflow_hours --------------------------------------------------------------------------


def reference_overflow(rows, max_gap_ms, full=100.0):
    out = {}
    for key, indices in by_series_in_time_order(rows).items():
        total = 0
        for here, after in pairwise(indices):
            if rows[here][2] >= full:
                total += min(rows[after][1] - rows[here][1], max_gap_ms)
        out[key] = total / MS_PER_H
    return out


@given(readings, st.integers(0, 5 * MS_PER_H), st.sampled_from([100.0, 90.0]))
def test_overflow_hours_matches_reference(rows, max_gap_ms, full):
    series, ts, fill, _ = columns(rows)
    keys, hours = overflow_hours(series, ts, fill, max_gap_ms=max_gap_ms, full_pct=full)
    expected = reference_overflow(rows, max_gap_ms, full)
    assert keys.tolist() == list(expected)
    assert hours.tolist() == list(expected.values())


def test_overflow_3_hours_and_a_capped_gap():
    hour = MS_PER_H
    rows = [  # (series, hours since T0, fill); input not in time order
        (1, 15, 20.0),
        (1, 0, 100.0),
        (1, 1, 100.0),
        (1, 2, 104.0),
        (1, 3, 50.0),  # emptied: 3 h full
        (1, 5, 100.0),  # then offline 10 h: counts max_gap (2 h)
        (2, 0, 60.0),
        (2, 1, 70.0),  # never full
        (3, 0, 100.0),  # one reading: no known end
    ]
    series = np.array([r[0] for r in rows], dtype=np.int64)
    ts = np.array([T0 + r[1] * hour for r in rows], dtype=np.int64)
    fill = np.array([r[2] for r in rows])
    keys, hours = overflow_hours(series, ts, fill, max_gap_ms=2 * hour)
    assert keys.tolist() == [1, 2, 3]
    assert hours.tolist() == [5.0, 0.0, 0.0]


def test_overflow_hours_rejects_negative_gap():
    with pytest.raises(ValueError, match="max_gap_ms"):
        overflow_hours(*columns([])[:3], max_gap_ms=-1)


# --- village_figures -------------------------------------------------------------------------


@given(
    st.integers(1, 5).flatmap(
        lambda k: st.tuples(
            st.just(k), st.lists(st.tuples(st.integers(0, k - 1), fills), max_size=40)
        )
    ),
    st.floats(0.5, 60),
    st.booleans(),
)
def test_village_figures_matches_reference(case, period_days, per_village):
    k, rows = case
    village = np.array([r[0] for r in rows], dtype=np.int64)
    fill = np.array([r[1] for r in rows], dtype=np.float64)
    # One period for all, or one per village (the days each village's bins have reported).
    days = [period_days / (1 + v) if per_village else period_days for v in range(k)]
    got = village_figures(village, fill, k, np.array(days) if per_village else period_days)
    count, known, total, wasted = [0] * k, [0] * k, [0.0] * k, [0] * k
    for v, f in rows:
        count[v] += 1
        if not math.isnan(f):
            known[v] += 1
            total[v] += f
            wasted[v] += f < 40.0
    assert got.collections.tolist() == count
    assert got.collections_per_week.tolist() == [
        c / d * 7 for c, d in zip(count, days, strict=True)
    ]
    expected_mean = [t / n if n else NAN for t, n in zip(total, known, strict=True)]
    assert got.mean_fill_at_collection_pct.tolist() == pytest.approx(expected_mean, nan_ok=True)
    assert got.wasted_trips.tolist() == wasted
    assert got.collections.dtype == got.wasted_trips.dtype == np.int64


def test_two_villages_over_14_days():
    village = np.array([0, 1, 0, 0], dtype=np.int64)
    fill_before = np.array([90.0, 85.0, 80.0, 30.0])
    got = village_figures(village, fill_before, n_villages=3, period_days=14.0)
    assert got.collections.tolist() == [3, 1, 0]
    assert got.collections_per_week.tolist() == [1.5, 0.5, 0.0]
    np.testing.assert_allclose(got.mean_fill_at_collection_pct, [200 / 3, 85.0, NAN])
    assert got.wasted_trips.tolist() == [1, 0, 0]


def test_village_figures_rejects_bad_input():
    with pytest.raises(ValueError, match="village index"):
        village_figures(np.array([2], dtype=np.int64), np.array([50.0]), 2, 7.0)
    with pytest.raises(ValueError, match="period_days"):
        village_figures(np.array([0], dtype=np.int64), np.array([50.0]), 2, 0.0)
