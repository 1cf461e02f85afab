"""Columns in and out of the database for the scheduled job: binary COPY into NumPy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from pantau.db.pgcopy import decode_rows, utc

Conn = psycopg.Connection[TupleRow]


def fetch_columns(
    conn: Conn, query: str, params: Sequence[Any], types: list[str]
) -> list[np.ndarray]:
    """The result of ``query`` (no NULLs: coalesce them) as one NumPy array per column.

    ``timestamptz`` columns come back as Unix ms.
    """
    data = bytearray()
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)", params) as copy:
        for chunk in copy:
            data += chunk
    if not data:
        return [np.zeros(0, dtype=_native(t)) for t in types]
    return decode_rows(bytes(data), types)


def _native(pg_type: str) -> str:
    return {"int2": "i2", "int4": "i4", "int8": "i8", "float8": "f8", "timestamptz": "i8"}[pg_type]


def maybe_utc(ms: float) -> datetime | None:
    """A time from Unix ms, or None for NaN/inf (e.g. "never full")."""
    return utc(ms) if np.isfinite(ms) else None


def maybe(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
