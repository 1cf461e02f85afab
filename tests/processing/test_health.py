"""processing.health against plain-Python references, and scenarios with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processing.health import (
    HEALTH_REASONS,
    REASON_LAST_WILL,
    REASON_NEVER_SEEN,
    REASON_REPORTING,
    REASON_SILENT,
    sensor_online,
    transitions,
)

T0 = 1_735_689_600_000  # 2025-01-01T00:00Z in Unix ms: real magnitudes test precision
MINUTE = 60_000

# Few distinct times give ties between readings, wills and now; wide ones give any gap.
times = st.one_of(
    st.just(-1),
    st.integers(0, 4).map(lambda m: T0 + m * MINUTE),
    st.integers(0, 2 * 86_400_000).map(lambda offset: T0 + offset),
)
nows = st.one_of(
    st.integers(0, 4).map(lambda m: T0 + m * MINUTE),
    st.integers(0, 3 * 86_400_000).map(lambda offset: T0 + offset),
)
intervals = st.one_of(st.sampled_from([1, 60, 300, 900]), st.integers(1, 86_400))
ks = st.one_of(st.sampled_from([3.0, 1.0, 2.5]), st.floats(0.01, 20.0))
sensors = st.lists(st.tuples(times, intervals, times, times), max_size=40)


def columns(rows):
    return tuple(np.array([r[i] for r in rows], dtype=np.int64) for i in range(4))


def reference_online(now, last_seen, interval_s, will_offline, will_online, k=3.0):
    """One sensor; Python ints compare with floats exactly."""
    if last_seen == -1:
        return False, REASON_NEVER_SEEN
    if will_offline != -1 and will_offline >= last_seen and will_offline >= will_online:
        return False, REASON_LAST_WILL
    if now - last_seen > k * interval_s * 1000.0:
        return False, REASON_SILENT
    return True, REASON_REPORTING


@given(nows, sensors, ks)
def test_sensor_online_matches_reference(now, rows, k):
    online, reason = sensor_online(now, *columns(rows), k=k)
    expected = [reference_online(now, *row, k=k) for row in rows]
    assert online.dtype == np.bool_
    assert reason.dtype == np.int8
    assert online.shape == reason.shape == (len(rows),)
    assert online.tolist() == [e[0] for e in expected]
    assert reason.tolist() == [e[1] for e in expected]


def reference_online_heard(now, last_seen, interval_s, will_off, will_on, heard, heard_now, k):
    """One sensor, live: silence on the arrival clock where it was heard, else by reading."""
    if last_seen == -1:
        return False, REASON_NEVER_SEEN
    if will_off != -1 and will_off >= last_seen and will_off >= will_on:
        return False, REASON_LAST_WILL
    silence = heard_now - heard if heard != -1 else now - last_seen
    if silence > k * interval_s * 1000.0:
        return False, REASON_SILENT
    return True, REASON_REPORTING


heard_sensors = st.lists(st.tuples(times, intervals, times, times, times), max_size=40)


@given(nows, heard_sensors, nows, ks)
def test_sensor_online_on_the_arrival_clock_matches_reference(now, rows, heard_now, k):
    cols = tuple(np.array([r[i] for r in rows], dtype=np.int64) for i in range(5))
    online, reason = sensor_online(now, *cols[:4], k=k, heard_ms=cols[4], heard_now_ms=heard_now)
    expected = [reference_online_heard(now, *row, heard_now, k) for row in rows]
    assert online.tolist() == [e[0] for e in expected]
    assert reason.tolist() == [e[1] for e in expected]


@given(nows, sensors, ks)
def test_never_heard_sensors_are_judged_by_their_readings(now, rows, k):
    cols = columns(rows)
    missing = np.full(len(rows), -1, dtype=np.int64)
    live = sensor_online(now, *cols, k=k, heard_ms=missing, heard_now_ms=now + 10**9)
    np.testing.assert_array_equal(live[1], sensor_online(now, *cols, k=k)[1])


@given(nows, sensors)
def test_sensor_online_default_k_is_3(now, rows):
    default = sensor_online(now, *columns(rows))
    explicit = sensor_online(now, *columns(rows), k=3.0)
    np.testing.assert_array_equal(default[0], explicit[0])
    np.testing.assert_array_equal(default[1], explicit[1])


bools = st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), max_size=40)


def reference_transitions(rows):
    went_offline, came_online = [], []
    for prev_online, prev_known, online in rows:
        went_offline.append(prev_known and prev_online and not online)
        came_online.append(prev_known and not prev_online and online)
    return went_offline, came_online


@given(bools)
def test_transitions_match_reference(rows):
    cols = [np.array([r[i] for r in rows], dtype=np.bool_) for i in range(3)]
    went_offline, came_online = transitions(*cols)
    expected_offline, expected_online = reference_transitions(rows)
    assert went_offline.dtype == came_online.dtype == np.bool_
    assert went_offline.tolist() == expected_offline
    assert came_online.tolist() == expected_online


# --- scenarios ------------------------------------------------------------------------------


def one(now, last_seen, interval_s=60, will_offline=-1, will_online=-1, k=3.0):
    """Online flag and reason of a single sensor."""
    online, reason = sensor_online(
        now,
        np.array([last_seen], dtype=np.int64),
        np.array([interval_s], dtype=np.int64),
        np.array([will_offline], dtype=np.int64),
        np.array([will_online], dtype=np.int64),
        k=k,
    )
    return bool(online[0]), HEALTH_REASONS[reason[0]]


def test_reason_codes_index_the_names():
    assert HEALTH_REASONS[REASON_REPORTING] == "reporting"
    assert HEALTH_REASONS[REASON_SILENT] == "silent"
    assert HEALTH_REASONS[REASON_LAST_WILL] == "last_will"
    assert HEALTH_REASONS[REASON_NEVER_SEEN] == "never_seen"


def test_silent_for_3_01_intervals_is_offline_2_99_online():
    interval_ms = 60_000
    assert one(T0 + int(3.01 * interval_ms), T0) == (False, "silent")
    assert one(T0 + int(2.99 * interval_ms), T0) == (True, "reporting")
    # Exactly k intervals is not "more than": still online; one millisecond later is not.
    assert one(T0 + 3 * interval_ms, T0) == (True, "reporting")
    assert one(T0 + 3 * interval_ms + 1, T0) == (False, "silent")


def test_k_sets_the_tolerance():
    assert one(T0 + 4 * MINUTE, T0, k=3.0) == (False, "silent")
    assert one(T0 + 4 * MINUTE, T0, k=5.0) == (True, "reporting")
    assert one(T0 + 90_000, T0, k=1.5) == (True, "reporting")
    assert one(T0 + 90_001, T0, k=1.5) == (False, "silent")


def test_daily_sensor_is_online_after_a_quiet_day():
    assert one(T0 + 86_400_000, T0, interval_s=86_400) == (True, "reporting")


def test_last_will_after_last_reading_is_offline_until_the_next_reading():
    last_reading, will_at = T0, T0 + 30_000
    # The will wins although the sensor is not yet silent for 3 intervals.
    assert one(T0 + 40_000, last_reading, will_offline=will_at) == (False, "last_will")
    # The will stays in force however long it lasts.
    assert one(T0 + 86_400_000, last_reading, will_offline=will_at) == (False, "last_will")
    # Back online on its next message.
    assert one(T0 + 90_000, T0 + 90_000, will_offline=will_at) == (True, "reporting")


def test_last_will_at_the_time_of_the_last_reading_is_offline():
    assert one(T0 + 1000, T0, will_offline=T0) == (False, "last_will")


def test_last_will_before_the_last_reading_is_history():
    assert one(T0 + MINUTE, T0 + 30_000, will_offline=T0) == (True, "reporting")


def test_online_status_newer_than_the_will_cancels_it_but_not_silence():
    assert one(T0 + MINUTE, T0, will_offline=T0 + 10_000, will_online=T0 + 20_000) == (
        True,
        "reporting",
    )
    assert one(T0 + 10 * MINUTE, T0, will_offline=T0 + 10_000, will_online=T0 + 20_000) == (
        False,
        "silent",
    )
    # An "online" status older than the will does not cancel it; an equal one neither.
    assert one(T0 + MINUTE, T0, will_offline=T0 + 20_000, will_online=T0 + 10_000) == (
        False,
        "last_will",
    )
    assert one(T0 + MINUTE, T0, will_offline=T0 + 20_000, will_online=T0 + 20_000) == (
        False,
        "last_will",
    )


def test_never_seen_is_offline_whatever_the_status_says():
    assert one(T0, -1) == (False, "never_seen")
    assert one(T0, -1, will_online=T0) == (False, "never_seen")
    assert one(T0, -1, will_offline=T0) == (False, "never_seen")


def test_last_will_outranks_silence():
    assert one(T0 + 86_400_000, T0, will_offline=T0 + 1) == (False, "last_will")


def test_several_sensors_at_once():
    online, reason = sensor_online(
        T0 + 10 * MINUTE,
        np.array([T0 + 9 * MINUTE, T0, -1, T0 + 5 * MINUTE], dtype=np.int64),
        np.array([60, 60, 60, 900], dtype=np.int64),
        np.array([-1, -1, -1, T0 + 6 * MINUTE], dtype=np.int64),
        np.array([-1, -1, -1, -1], dtype=np.int64),
    )
    assert online.tolist() == [True, False, False, False]
    assert [HEALTH_REASONS[r] for r in reason] == ["reporting", "silent", "never_seen", "last_will"]


def test_empty_input():
    empty = np.zeros(0, dtype=np.int64)
    online, reason = sensor_online(T0, empty, empty, empty, empty)
    assert online.shape == reason.shape == (0,)
    assert online.dtype == np.bool_
    assert reason.dtype == np.int8
    no = np.zeros(0, dtype=np.bool_)
    went_offline, came_online = transitions(no, no, no)
    assert went_offline.shape == came_online.shape == (0,)


def test_a_backlog_heard_now_is_not_silent_and_a_silent_arrival_is():
    """Live: readings 6 h old heard a second ago are reporting; heard 181 s ago, silent."""
    last = np.array([T0 - 6 * 3_600_000], dtype=np.int64)
    interval, none = np.array([60], dtype=np.int64), np.array([-1], dtype=np.int64)
    for heard_ago, expected in ((1000, REASON_REPORTING), (180_000, REASON_REPORTING),
                                (180_001, REASON_SILENT)):  # fmt: skip
        _, reason = sensor_online(
            T0, last, interval, none, none, heard_ms=np.array([T0 - heard_ago]), heard_now_ms=T0
        )
        assert reason.tolist() == [expected]
    # The arrival clock is the database's: its now need not be the job's.
    _, reason = sensor_online(
        T0, last, interval, none, none, heard_ms=np.array([5_000]), heard_now_ms=6_000
    )
    assert reason.tolist() == [REASON_REPORTING]
    # A last will still marks offline, and a sensor without readings is never seen.
    _, reason = sensor_online(
        T0, last, interval, last + 1, none, heard_ms=np.array([T0]), heard_now_ms=T0
    )
    assert reason.tolist() == [REASON_LAST_WILL]
    _, reason = sensor_online(
        T0, none, interval, none, none, heard_ms=np.array([T0]), heard_now_ms=T0
    )
    assert reason.tolist() == [REASON_NEVER_SEEN]


def test_heard_and_its_now_go_together():
    one_ = np.array([T0], dtype=np.int64)
    with pytest.raises(ValueError, match="go together"):
        sensor_online(T0, one_, one_, one_, one_, heard_ms=one_)
    with pytest.raises(ValueError, match="go together"):
        sensor_online(T0, one_, one_, one_, one_, heard_now_ms=T0)
    with pytest.raises(ValueError, match="aligned"):
        sensor_online(T0, one_, one_, one_, one_, heard_ms=np.array([T0, T0]), heard_now_ms=T0)


def test_misaligned_or_bad_k_is_an_error():
    one_ = np.array([T0], dtype=np.int64)
    two = np.array([T0, T0], dtype=np.int64)
    with pytest.raises(ValueError, match="aligned"):
        sensor_online(T0, one_, two, one_, one_)
    for k in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="k must be positive"):
            sensor_online(T0, one_, one_, one_, one_, k=k)
    b1, b2 = np.array([True]), np.array([True, False])
    with pytest.raises(ValueError, match="aligned"):
        transitions(b1, b1, b2)


def test_a_sensor_going_offline_and_coming_back():
    """Evaluate every minute, feeding the state back; one sensor reporting every minute."""
    interval = np.array([60], dtype=np.int64)
    none = np.array([-1], dtype=np.int64)
    # (now, last reading, last will): reports, dies with a will, comes back on its next reading.
    steps = [
        (T0, T0, -1),
        (T0 + MINUTE, T0 + MINUTE, -1),
        (T0 + 2 * MINUTE, T0 + MINUTE, T0 + 90_000),
        (T0 + 3 * MINUTE, T0 + MINUTE, T0 + 90_000),
        (T0 + 4 * MINUTE, T0 + 4 * MINUTE, T0 + 90_000),
        (T0 + 8 * MINUTE, T0 + 4 * MINUTE, T0 + 90_000),
    ]
    prev_online, prev_known = np.array([False]), np.array([False])
    events = []
    for now, last, will in steps:
        online, _ = sensor_online(
            now, np.array([last], dtype=np.int64), interval, np.array([will]), none
        )
        went_offline, came_online = transitions(prev_online, prev_known, online)
        events.append((bool(online[0]), bool(went_offline[0]), bool(came_online[0])))
        prev_online, prev_known = online, np.array([True])
    assert events == [
        (True, False, False),  # first evaluation: a state, not a transition
        (True, False, False),
        (False, True, False),  # the last will
        (False, False, False),
        (True, False, True),  # its next reading
        (False, True, False),  # silent for 4 intervals
    ]


def test_first_evaluation_offline_is_no_transition():
    went_offline, came_online = transitions(
        np.array([True, False]), np.array([False, False]), np.array([False, True])
    )
    assert went_offline.tolist() == [False, False]
    assert came_online.tolist() == [False, False]
