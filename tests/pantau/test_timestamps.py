"""pantau.timestamps: the one timestamp parser (payloads, CSV files, options) and its rounding."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pantau.timestamps import MAX_TS_MS, MS_THRESHOLD, parse_text, parse_ts, utc

TS_MS = 1_795_828_800_000  # 2026-11-28T01:20:00Z


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-28T01:20:00Z", TS_MS),
        ("2026-11-28T01:20:00.250+00:00", TS_MS + 250),
        (TS_MS // 1000, TS_MS),
        (TS_MS, TS_MS),
        (TS_MS / 1000 + 0.5, TS_MS + 500),
    ],
)
def test_timestamp_forms(raw, expected):
    assert parse_ts(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("2026-11-28T01:20:00", "no UTC offset"),
        ("yesterday", "not ISO 8601"),
        (True, "boolean"),
        (None, "NoneType"),
        ([1], "list"),
    ],
)
def test_bad_timestamps(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_ts(raw)


@pytest.mark.parametrize("raw", [1e300, -5, "0001-01-01T00:00:00+00:00", 10**20])
def test_timestamps_outside_1970_to_9999(raw):
    with pytest.raises(ValueError, match="outside the years 1970 to 9999"):
        parse_ts(raw)


def test_timestamps_iso_seconds_and_milliseconds_agree():
    ms = 1_764_000_000_000
    assert parse_text("1764000000") == ms
    assert parse_text("1764000000000") == ms
    assert parse_text("2025-11-24T16:00:00Z") == ms
    assert parse_text("2025-11-24T23:00:00+07:00") == ms
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_text("2025-11-24T16:00:00")


@given(st.integers(0, MAX_TS_MS))
def test_every_form_of_an_instant_reads_the_same(ms: int) -> None:
    """ISO text, epoch ms and epoch seconds with a fraction give the same milliseconds: one
    rounding rule, not one per reader (the CSV reader used to truncate where payloads rounded)."""
    iso = utc(ms).isoformat(timespec="milliseconds")
    assert parse_ts(iso) == parse_text(iso) == ms
    if ms >= MS_THRESHOLD:  # a number this large is read as milliseconds
        assert parse_ts(ms) == parse_text(str(ms)) == ms
    if ms // 1000 < MS_THRESHOLD:  # ... and a smaller one as seconds
        assert parse_text(f"{ms // 1000}.{ms % 1000:03d}") == ms


def test_fractional_milliseconds_round_to_the_nearest() -> None:
    assert parse_text("1764000000.0006") == 1_764_000_000_001
    assert parse_ts(1_764_000_000.0004) == 1_764_000_000_000
    assert parse_text("2025-11-24T16:00:00.0006+00:00") == 1_764_000_000_001


def test_utc_is_aware() -> None:
    assert utc(TS_MS) == datetime(2026, 11, 28, 1, 20, tzinfo=UTC)
