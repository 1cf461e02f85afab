"""What a part of the scheduled job read, kept to say which input broke it when it fails.

Each adapter notes the columns it loaded (:meth:`Inputs.note`, or :func:`monitor.db.fetch`,
which loads and notes); when the part raises, the job logs :meth:`Inputs.describe`: per table
its row count and a few rows, the suspect ones first (a value that is not finite, a time outside
the years 1970 to 9999), bounded in size whatever the part read.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pantau.timestamps import MAX_TS_MS

MAX_ROWS = 8  # rows shown per table
MAX_TABLES = 12
MAX_TEXT = 80  # characters of one shown value


class Inputs:
    """The tables one part of the job read, by name: aligned columns, one value per row."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, np.ndarray]] = {}

    def note(self, table: str, **columns: Any) -> None:
        """Keep ``columns`` as what the part read of ``table`` (a later note replaces it).

        A column named ``*_ms`` is a time in Unix ms; a float column is a value."""
        self.tables[table] = {name: np.asarray(values) for name, values in columns.items()}

    def describe(self, max_rows: int = MAX_ROWS) -> dict[str, Any]:
        """JSON-able and bounded: per table ``rows`` (how many were read), ``suspect`` (how
        many hold a non-finite value or a time outside 1970..9999), ``columns`` and ``sample``:
        up to ``max_rows`` rows, the suspect ones first, then the first and the last rows."""
        out: dict[str, Any] = {}
        for table in list(self.tables)[:MAX_TABLES]:
            columns = {
                name: values.reshape(-1) if values.ndim else values.reshape(1)
                for name, values in self.tables[table].items()
            }
            n = min((c.shape[0] for c in columns.values()), default=0)
            suspect = np.zeros(n, dtype=np.bool_)
            for name, values in columns.items():
                suspect |= _suspect(name, values[:n])
            rows = _sample(suspect, max_rows)
            out[table] = {
                "rows": n,
                "suspect": int(np.count_nonzero(suspect)),
                "columns": list(columns),
                "sample": [[_json(columns[c][i]) for c in columns] for i in rows],
            }
        return out


def _suspect(name: str, values: np.ndarray) -> np.ndarray:
    """Rows of one column that are likely to break a computation."""
    bad = np.zeros(values.shape[0], dtype=np.bool_)
    if values.dtype.kind == "f":
        bad |= ~np.isfinite(values)
    if name.endswith("_ms") and values.dtype.kind in "iuf":
        with np.errstate(invalid="ignore"):
            bad |= ~((values >= 0) & (values <= MAX_TS_MS))
    return bad


def _sample(suspect: np.ndarray, max_rows: int) -> list[int]:
    """Row indices to show: suspect rows first, then the first and last of the others."""
    picked = np.flatnonzero(suspect)[:max_rows]
    others = np.flatnonzero(~suspect)
    room = max_rows - picked.shape[0]
    head = others[: (room + 1) // 2]
    tail = others[head.shape[0] :][::-1][: room // 2][::-1]
    return sorted({int(i) for i in (*picked, *head, *tail)})


def _json(value: Any) -> Any:
    """One shown value: a JSON number or a short string (non-finite floats as text)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."
