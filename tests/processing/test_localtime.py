"""processing.localtime against the calendar of the standard library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from processing.localtime import WIB_OFFSET_S, hour_of_week

WIB = timezone(timedelta(hours=7))
EPOCH = datetime(1970, 1, 1)  # naive: local wall-clock arithmetic in the reference

timestamps = st.lists(st.integers(-(2**41), 2**42), max_size=40)
offsets = st.one_of(st.just(WIB_OFFSET_S), st.integers(-12 * 3600, 14 * 3600))


def i64(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def wib_ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> int:
    at = datetime(y, mo, d, h, mi, tzinfo=WIB)
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def reference_hour_of_week(ts_ms: int, offset_s: int) -> int:
    at = EPOCH + timedelta(milliseconds=ts_ms + offset_s * 1000)
    return at.weekday() * 24 + at.hour


@given(timestamps, offsets)
def test_hour_of_week_matches_reference(ts, offset_s):
    expected = [reference_hour_of_week(t, offset_s) for t in ts]
    assert hour_of_week(i64(ts), offset_s).tolist() == expected


def test_hour_of_week_known_hours():
    monday = wib_ms(2024, 1, 1)  # a Monday
    sunday_late = wib_ms(2024, 1, 7, 23, 59)
    ts = i64([monday, monday - 1, sunday_late, sunday_late + 60_000, 0, -1])
    # 1970-01-01 00:00 UTC was a Thursday, 07:00 WIB: 3 * 24 + 7.
    assert hour_of_week(ts).tolist() == [0, 167, 167, 0, 79, 78]
    # The same Monday 00:00 WIB is Sunday 17:00 UTC.
    assert hour_of_week(i64([monday]), tz_offset_s=0).tolist() == [6 * 24 + 17]
    assert hour_of_week(i64([])).shape == (0,)
