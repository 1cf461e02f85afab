"""The generic binary COPY rows (encode_rows / decode_rows): round trips for every type, the
bytes against a struct-based reference, and the errors on damaged streams."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pantau.db.pgcopy import (
    HEADER,
    PG_EPOCH_MS,
    PG_TYPES,
    SIGNATURE,
    TRAILER,
    decode_rows,
    encode_readings,
    encode_rows,
)

# Values of each type; timestamptz as Unix ms within PostgreSQL's range (4713 BC .. 294276 AD).
VALUES = {
    "int2": st.integers(-(2**15), 2**15 - 1),
    "int4": st.integers(-(2**31), 2**31 - 1),
    "int8": st.integers(-(2**63), 2**63 - 1),
    "float8": st.floats(allow_nan=True, allow_infinity=True),
    "timestamptz": st.integers(-210_000_000_000_000, 9_200_000_000_000_000),
}
DTYPES = {"int2": np.int16, "int4": np.int32, "int8": np.int64, "float8": np.float64,
          "timestamptz": np.int64}  # fmt: skip
STRUCT = {"int2": "h", "int4": "i", "int8": "q", "float8": "d", "timestamptz": "q"}
TYPES = st.lists(st.sampled_from(sorted(PG_TYPES)), min_size=1, max_size=8)


@st.composite
def tables(draw: st.DrawFn, min_rows: int = 0) -> tuple[list[str], list[list]]:
    types = draw(TYPES)
    n = draw(st.integers(min_rows, 30))
    columns = [draw(st.lists(VALUES[t], min_size=n, max_size=n)) for t in types]
    return types, columns


def columns_of(types: list[str], columns: list[list]) -> list[tuple[str, np.ndarray]]:
    return [(t, np.array(c, dtype=DTYPES[t])) for t, c in zip(types, columns, strict=True)]


def reference(types: list[str], columns: list[list]) -> bytes:
    out = HEADER
    for row in zip(*columns, strict=True):
        out += struct.pack(">h", len(types))
        for t, v in zip(types, row, strict=True):
            size = PG_TYPES[t][1]
            value = (v - PG_EPOCH_MS) * 1000 if t == "timestamptz" else v
            out += struct.pack(">i" + STRUCT[t], size, value)
    return out + TRAILER


def bits(values: np.ndarray) -> list[int]:
    """Bit patterns, so that NaN payloads and -0.0 count."""
    return values.astype(values.dtype.newbyteorder("=")).view(f"u{values.itemsize}").tolist()


@given(tables())
def test_encode_rows_matches_a_struct_reference(table):
    types, columns = table
    assert encode_rows(columns_of(types, columns)) == reference(types, columns)


@given(tables())
def test_round_trip_every_type(table):
    types, columns = table
    cols = columns_of(types, columns)
    decoded = decode_rows(encode_rows(cols), types)
    assert len(decoded) == len(types)
    for (t, want), got in zip(cols, decoded, strict=True):
        assert got.dtype == np.dtype(DTYPES[t]), t
        assert got.dtype.isnative
        assert bits(got) == bits(want), t


@pytest.mark.parametrize("t", sorted(PG_TYPES))
def test_round_trip_extremes(t):
    extremes = {
        "int2": [-(2**15), -1, 0, 2**15 - 1],
        "int4": [-(2**31), -1, 0, 2**31 - 1],
        "int8": [-(2**63), -1, 0, 2**63 - 1],
        "float8": [float("nan"), float("inf"), float("-inf"), -0.0, 5e-324, 1.7976931348623157e308],
        "timestamptz": [-1, 0, 1, PG_EPOCH_MS - 1, PG_EPOCH_MS, -62_135_596_800_000],
    }[t]
    values = np.array(extremes, dtype=DTYPES[t])
    (got,) = decode_rows(encode_rows([(t, values)]), [t])
    assert bits(got) == bits(values)


def test_float8_nan_and_infinities_survive():
    values = np.array([np.nan, np.inf, -np.inf, 1.5], dtype=np.float64)
    (got,) = decode_rows(encode_rows([("float8", values)]), ["float8"])
    assert np.isnan(got[0])
    assert got[1] == np.inf
    assert got[2] == -np.inf
    assert got[3] == 1.5


def test_timestamptz_is_microseconds_since_2000_on_the_wire():
    data = encode_rows([("timestamptz", np.array([PG_EPOCH_MS + 1, 0], dtype=np.int64))])
    body = data[len(HEADER) : -len(TRAILER)]
    assert body == struct.pack(">hiq", 1, 8, 1000) + struct.pack(">hiq", 1, 8, -PG_EPOCH_MS * 1000)


def test_timestamptz_before_1970_and_2000_decodes_as_floor_ms():
    # PostgreSQL sends microseconds; a time between two milliseconds is floored, also before 2000.
    stream = HEADER + struct.pack(">hiq", 1, 8, -1) + struct.pack(">hiq", 1, 8, 1) + TRAILER
    (got,) = decode_rows(stream, ["timestamptz"])
    assert got.tolist() == [PG_EPOCH_MS - 1, PG_EPOCH_MS]


def test_empty_streams():
    assert encode_rows([]) == HEADER + TRAILER
    data = encode_rows([("int4", np.zeros(0, np.int32)), ("float8", np.zeros(0))])
    assert data == HEADER + TRAILER
    got = decode_rows(data, ["int4", "float8"])
    assert [c.shape for c in got] == [(0,), (0,)]
    assert [c.dtype for c in got] == [np.dtype(np.int32), np.dtype(np.float64)]


def test_decode_rows_reads_the_readings_layout():
    # The four-column readings stream of encode_readings is a row stream too.
    key = np.array([1, -7], np.int32)
    metric = np.array([4, 14], np.int16)
    ts = np.array([1_700_000_000_123, -5], np.int64)
    value = np.array([28.5, np.nan])
    got = decode_rows(
        encode_readings(key, metric, ts, value), ["int4", "int2", "timestamptz", "float8"]
    )
    assert got[0].tolist() == [1, -7]
    assert got[1].tolist() == [4, 14]
    assert got[2].tolist() == ts.tolist()
    assert bits(got[3]) == bits(value)


def test_a_header_extension_is_skipped():
    ext = b"\x01\x02\x03"
    stream = SIGNATURE + b"\x00\x00\x00\x00" + len(ext).to_bytes(4, "big") + ext
    stream += struct.pack(">hih", 1, 2, -3) + TRAILER
    (got,) = decode_rows(stream, ["int2"])
    assert got.tolist() == [-3]


@given(tables(min_rows=1), st.data())
def test_every_truncated_stream_is_an_error(table, data):
    types, columns = table
    full = encode_rows(columns_of(types, columns))
    cut = data.draw(st.integers(0, len(full) - 1), label="cut")
    with pytest.raises(ValueError, match=r"truncated|not a PostgreSQL binary COPY"):
        decode_rows(full[:cut], types)


def test_truncated_stream_messages():
    full = encode_rows([("int8", np.array([1, 2], np.int64))])
    with pytest.raises(ValueError, match="truncated"):
        decode_rows(full[:-2], ["int8"])  # no trailer
    with pytest.raises(ValueError, match="truncated"):
        decode_rows(full[:-5] + TRAILER, ["int8"])  # a row cut short
    with pytest.raises(ValueError, match="not a PostgreSQL binary COPY"):
        decode_rows(b"PGCOP", ["int8"])
    with pytest.raises(ValueError, match="not a PostgreSQL binary COPY"):
        decode_rows(b"", ["int8"])


def test_wrong_field_count_is_an_error():
    # Same row size, other layout: two int2 fields, read as one int8, are caught by the count.
    stream = HEADER + struct.pack(">hihih", 2, 2, 1, 2, 2) + TRAILER
    assert len(stream) - len(HEADER) - len(TRAILER) == 2 + 4 + 8
    with pytest.raises(ValueError, match="unexpected row layout"):
        decode_rows(stream, ["int8"])
