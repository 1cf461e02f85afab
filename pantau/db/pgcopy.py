"""PostgreSQL binary COPY rows for readings, built and parsed with NumPy (no Python loop per row).

Format (PostgreSQL docs, "COPY ... Binary Format"): an 11-byte signature, a 32-bit flags field,
a 32-bit header-extension length, then per row a 16-bit field count and, per field, a 32-bit
length and the value in network byte order; a 16-bit -1 ends the data. ``timestamptz`` is a
64-bit count of microseconds since 2000-01-01 00:00 UTC.

The rows here are ``(sensor_key int4, metric_id int2, ts timestamptz, value float8)``.
"""

from __future__ import annotations

import numpy as np

from processing.arrays import F64Array, I16Array, I32Array, I64Array

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z in Unix milliseconds

ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_key", ">i4"),
        ("sensor_key", ">i4"),
        ("len_metric", ">i4"),
        ("metric_id", ">i2"),
        ("len_ts", ">i4"),
        ("ts_us", ">i8"),
        ("len_value", ">i4"),
        ("value", ">f8"),
    ]
)
# The three-column form that `COPY (INSERT ... RETURNING sensor_key, metric_id, ts) TO STDOUT`
# sends back.
KEY_ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_key", ">i4"),
        ("sensor_key", ">i4"),
        ("len_metric", ">i4"),
        ("metric_id", ">i2"),
        ("len_ts", ">i4"),
        ("ts_us", ">i8"),
    ]
)


def encode_readings(
    sensor_key: I32Array, metric_id: I16Array, ts_ms: I64Array, value: F64Array
) -> bytes:
    """The whole binary COPY stream (header, rows, trailer) for these readings."""
    rows = np.empty(sensor_key.shape[0], dtype=ROW)
    rows["nfields"] = 4
    rows["len_key"] = 4
    rows["sensor_key"] = sensor_key
    rows["len_metric"] = 2
    rows["metric_id"] = metric_id
    rows["len_ts"] = 8
    rows["ts_us"] = (ts_ms - PG_EPOCH_MS) * 1000
    rows["len_value"] = 8
    rows["value"] = value
    return HEADER + rows.tobytes() + TRAILER


def decode_keys(data: bytes) -> tuple[I32Array, I16Array, I64Array]:
    """Parse a binary COPY stream of ``(int4, int2, timestamptz)`` rows (no NULLs).

    Returns ``sensor_key``, ``metric_id`` and ``ts_ms`` arrays.
    """
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PostgreSQL binary COPY stream")
    ext_len = int.from_bytes(data[15:19], "big")
    start = 19 + ext_len
    end = len(data) - len(TRAILER)
    if data[end:] != TRAILER or (end - start) % KEY_ROW.itemsize:
        raise ValueError("truncated binary COPY stream")
    rows = np.frombuffer(data, dtype=KEY_ROW, offset=start, count=(end - start) // KEY_ROW.itemsize)
    if rows.size and not (
        (rows["nfields"] == 3).all()
        and (rows["len_key"] == 4).all()
        and (rows["len_ts"] == 8).all()
    ):
        raise ValueError("unexpected row layout in binary COPY stream")
    return (
        rows["sensor_key"].astype(np.int32),
        rows["metric_id"].astype(np.int16),
        rows["ts_us"].astype(np.int64) // 1000 + PG_EPOCH_MS,
    )


# Column types of the generic encoder/decoder: NumPy big-endian dtype and field length.
PG_TYPES: dict[str, tuple[str, int]] = {
    "int2": (">i2", 2),
    "int4": (">i4", 4),
    "int8": (">i8", 8),
    "float8": (">f8", 8),
    "timestamptz": (">i8", 8),  # given and returned as Unix ms
}


def _row_dtype(types: list[str]) -> np.dtype[np.void]:
    fields: list[tuple[str, str]] = [("nfields", ">i2")]
    for i, t in enumerate(types):
        fields += [(f"len{i}", ">i4"), (f"f{i}", PG_TYPES[t][0])]
    return np.dtype(fields)


def encode_rows(columns: list[tuple[str, np.ndarray]]) -> bytes:
    """A binary COPY stream of rows made of aligned columns ``(pg type, values)`` (no NULLs).

    ``timestamptz`` columns are Unix milliseconds.
    """
    types = [t for t, _ in columns]
    n = columns[0][1].shape[0] if columns else 0
    rows = np.empty(n, dtype=_row_dtype(types))
    rows["nfields"] = len(columns)
    for i, (t, values) in enumerate(columns):
        rows[f"len{i}"] = PG_TYPES[t][1]
        rows[f"f{i}"] = (values - PG_EPOCH_MS) * 1000 if t == "timestamptz" else values
    return HEADER + rows.tobytes() + TRAILER


def decode_rows(data: bytes, types: list[str]) -> list[np.ndarray]:
    """Parse a binary COPY stream of rows of ``types`` (no NULLs) into native-order columns."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PostgreSQL binary COPY stream")
    ext_len = int.from_bytes(data[15:19], "big")
    start = 19 + ext_len
    end = len(data) - len(TRAILER)
    dtype = _row_dtype(types)
    if data[end:] != TRAILER or (end - start) % dtype.itemsize:
        raise ValueError("truncated binary COPY stream, or a NULL where none is expected")
    rows = np.frombuffer(data, dtype=dtype, offset=start, count=(end - start) // dtype.itemsize)
    if rows.size and not (rows["nfields"] == len(types)).all():
        raise ValueError("unexpected row layout in binary COPY stream")
    out: list[np.ndarray] = []
    for i, t in enumerate(types):
        col = rows[f"f{i}"].astype(PG_TYPES[t][0][1:])
        out.append(col // 1000 + PG_EPOCH_MS if t == "timestamptz" else col)
    return out
