"""What the scheduled job's adapters share: their connection type, loading noted input, and
SQL values of results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from monitor.inputs import Inputs
from pantau.db.copy import fetch_columns
from pantau.timestamps import utc

Conn = psycopg.Connection[TupleRow]


def fetch(
    conn: Conn, inputs: Inputs, table: str, query: str, params: Sequence[Any], /, **types: str
) -> list[np.ndarray]:
    """:func:`pantau.db.copy.fetch_columns` of ``query``, one keyword per column naming it
    and giving its type (``ts_ms="timestamptz"``), noted in ``inputs`` as ``table``."""
    columns = fetch_columns(conn, query, params, list(types.values()))
    inputs.note(table, **dict(zip(types, columns, strict=True)))
    return columns


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
