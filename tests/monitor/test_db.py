"""monitor.db: SQL values of the job's results."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from monitor.db import maybe, maybe_utc

LAST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)  # the last representable ms
LAST_MS = (LAST - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def test_maybe_utc_of_a_time():
    assert maybe_utc(0.0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert maybe_utc(1_735_689_600_000.0) == datetime(2025, 1, 1, tzinfo=UTC)
    assert maybe_utc(float(LAST_MS)) == LAST


@pytest.mark.parametrize(
    "ms",
    [
        math.nan,
        math.inf,
        -math.inf,
        # Finite, beyond datetime's range: 50 % to go at 1e-9 %/h is 5e10 h, about 1.8e20 ms.
        float(LAST_MS + 1),
        1.8e20,
        1e300,
        -1e20,
        -62_200_000_000_000.0,  # before the year 1
    ],
)
def test_maybe_utc_is_none_where_no_datetime_is(ms):
    assert maybe_utc(ms) is None


def test_maybe():
    assert maybe(2.5) == 2.5
    assert type(maybe(2.5)) is float
    assert maybe(math.nan) is None
    assert maybe(math.inf) is None
