"""Local time in Kabupaten Jepara: WIB (UTC+7, no daylight saving), vectorized.

Times are Unix milliseconds (int64); every function takes the offset, WIB by default, so tests
and other places can use another. Floor division keeps times before 1970 right.
"""

from __future__ import annotations

import numpy as np

from processing.arrays import I64Array

WIB_OFFSET_S = 7 * 3600
MS_PER_H = 3_600_000
HOURS_PER_WEEK = 168
# 1970-01-01 was a Thursday: Monday 00:00 is 3 days (72 h) before the epoch's hour 0.
_EPOCH_HOUR_OF_WEEK = 72


def hour_of_week(ts_ms: I64Array, tz_offset_s: int = WIB_OFFSET_S) -> I64Array:
    """Local hour of the week, 0..167, Monday 00:00-00:59 = 0, Sunday 23:00-23:59 = 167.

    ``ts_ms`` in Unix ms; floor division keeps times before 1970 on the right hour.
    """
    local_hour = (ts_ms.astype(np.int64) + tz_offset_s * 1000) // MS_PER_H
    return ((local_hour + _EPOCH_HOUR_OF_WEEK) % HOURS_PER_WEEK).astype(np.int64)
