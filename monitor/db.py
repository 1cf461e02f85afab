"""What the scheduled job's adapters share: their connection type, and SQL values of results."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from pantau.timestamps import utc

Conn = psycopg.Connection[TupleRow]


def maybe_utc(ms: float) -> datetime | None:
    """A time from Unix ms, or None for NaN/inf (e.g. "never full")."""
    return utc(ms) if np.isfinite(ms) else None


def maybe(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
