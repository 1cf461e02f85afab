"""Times, in one place: how a timestamp is read (one parser, one rounding rule) and how Unix
milliseconds become datetimes. Pure.

A timestamp is ISO 8601 with an offset (``Z`` or ``+07:00``), or epoch seconds, or epoch
milliseconds: a number of magnitude 1e11 or more is taken as milliseconds (1e11 s is the year
5138, 1e11 ms is 1973). It becomes whole Unix milliseconds, rounded to the nearest. A time
without an offset is refused: a clock of unknown zone would shift every reading by hours.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

MS_THRESHOLD = 1e11
# Timestamps must lie in 1970..9999 (they become int64 milliseconds and datetimes downstream).
MAX_TS_MS = 253_402_300_799_999
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_ts(raw: Any) -> int:
    """Unix milliseconds from an ISO 8601 string with offset or an epoch number.

    Raises ``ValueError`` saying what is wrong.
    """
    if isinstance(raw, bool):
        raise ValueError("ts must be a string or a number, not a boolean")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError("ts is not finite")
        ms = round(raw if abs(raw) >= MS_THRESHOLD else raw * 1000)
        if not 0 <= ms <= MAX_TS_MS:
            raise ValueError(f"ts {raw!r} is outside the years 1970 to 9999")
        return ms
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"ts {raw[:40]!r} is not ISO 8601") from None
        if parsed.tzinfo is None:
            raise ValueError(f"ts {raw[:40]!r} has no UTC offset")
        # Whole microseconds, then milliseconds half up, in integers: a float of seconds times
        # 1000 lands a millisecond low for some times.
        us = (parsed - EPOCH) // timedelta(microseconds=1)
        ms = (us + 500) // 1000
        if not 0 <= ms <= MAX_TS_MS:
            raise ValueError(f"ts {raw[:40]!r} is outside the years 1970 to 9999")
        return ms
    raise ValueError(f"ts must be a string or a number, not {type(raw).__name__}")


def parse_text(text: str) -> int:
    """:func:`parse_ts` of a timestamp written as text (a CSV cell, an option): a number is an
    epoch time, anything else ISO 8601."""
    stripped = text.strip()
    try:
        number = float(stripped)
    except ValueError:
        return parse_ts(stripped)
    return parse_ts(number)


def utc(ms: float) -> datetime:
    """A Unix-ms time as an aware UTC datetime (for COPY rows in text form, and parameters)."""
    return EPOCH + timedelta(milliseconds=float(ms))  # exact, where ms / 1000 as a float is not
