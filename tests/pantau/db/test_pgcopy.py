"""Binary COPY encoding against a struct-based reference, and decoding round trips."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pantau.db.pgcopy import HEADER, PG_EPOCH_MS, TRAILER, decode_keys, encode_readings

rows = st.lists(
    st.tuples(
        st.integers(-(2**31), 2**31 - 1),
        st.integers(-(2**15), 2**15 - 1),
        st.integers(-(10**13), 10**13),
        st.floats(allow_nan=False),
    ),
    max_size=50,
)


def reference(data: list[tuple[int, int, int, float]]) -> bytes:
    out = HEADER
    for key, metric, ts_ms, value in data:
        out += struct.pack(
            ">hiiihiqid", 4, 4, key, 2, metric, 8, (ts_ms - PG_EPOCH_MS) * 1000, 8, value
        )
    return out + TRAILER


def arrays(data):
    return (
        np.array([r[0] for r in data], dtype=np.int32),
        np.array([r[1] for r in data], dtype=np.int16),
        np.array([r[2] for r in data], dtype=np.int64),
        np.array([r[3] for r in data], dtype=np.float64),
    )


@given(rows)
def test_encode_matches_struct_reference(data):
    assert encode_readings(*arrays(data)) == reference(data)


@given(rows)
def test_decode_keys_reads_what_postgres_sends(data):
    # PostgreSQL sends RETURNING rows in the same layout, without the value column.
    stream = HEADER
    for key, metric, ts_ms, _ in data:
        stream += struct.pack(">hiiihiq", 3, 4, key, 2, metric, 8, (ts_ms - PG_EPOCH_MS) * 1000)
    stream += TRAILER
    key, metric, ts_ms = decode_keys(stream)
    assert key.tolist() == [r[0] for r in data]
    assert metric.tolist() == [r[1] for r in data]
    assert ts_ms.tolist() == [r[2] for r in data]


def test_decode_rejects_garbage():
    with pytest.raises(ValueError, match="not a PostgreSQL binary COPY"):
        decode_keys(b"hello")
    with pytest.raises(ValueError, match="truncated"):
        decode_keys(HEADER + b"\x00\x03" + TRAILER)


def test_postgres_epoch_is_2000_01_01_utc():
    assert datetime.fromtimestamp(PG_EPOCH_MS / 1000, tz=UTC) == datetime(2000, 1, 1, tzinfo=UTC)
