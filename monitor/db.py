"""What the scheduled job's adapters share: their connection type, and SQL values of results."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from pantau.timestamps import utc

Conn = psycopg.Connection[TupleRow]


def maybe_utc(ms: float) -> datetime | None:
    """A time from Unix ms, or None (e.g. "never full") for NaN, an infinity, or a time
    outside datetime's years 1 to 9999: a bin filling at a trickle is predicted full in a
    finite but unrepresentable future, which means never as much as +inf does."""
    if not np.isfinite(ms):
        return None
    try:
        return utc(ms)
    except OverflowError:
        return None


def maybe(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
