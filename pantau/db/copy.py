"""Binary COPY between PostgreSQL and NumPy columns: the one reader and writer every service uses.

The wire format is encoded and decoded by :mod:`pantau.db.pgcopy` (pure); this module moves the
bytes over a connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from pantau.db.pgcopy import PG_TYPES, decode_rows

Query = str | sql.SQL | sql.Composed


def copy_in(cur: psycopg.Cursor[Any], statement: Query, data: bytes) -> None:
    """Run ``COPY ... FROM STDIN (FORMAT BINARY)`` with a whole binary stream as its input."""
    with cur.copy(statement) as copy:
        copy.write(data)


def copy_out(cur: psycopg.Cursor[Any], statement: Query, params: Sequence[Any] = ()) -> bytes:
    """The binary stream a ``COPY ... TO STDOUT (FORMAT BINARY)`` statement sends; empty when the
    server sends none."""
    data = bytearray()
    with cur.copy(statement, params or None) as copy:
        for chunk in copy:
            data += chunk
    return bytes(data)


def fetch_columns(
    conn: psycopg.Connection[Any], query: str, params: Sequence[Any], types: list[str]
) -> list[np.ndarray]:
    """The result of ``query`` (no NULLs: coalesce them) as one NumPy array per column.

    ``timestamptz`` columns come back as Unix ms; no rows give empty arrays of the same dtypes.
    """
    data = copy_out(conn.cursor(), f"COPY ({query}) TO STDOUT (FORMAT BINARY)", params)
    if not data:
        return [np.zeros(0, dtype=PG_TYPES[t][0][1:]) for t in types]
    return decode_rows(data, types)
