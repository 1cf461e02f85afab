"""processing.join against plain-Python references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processing.join import lookup, pack

NAN = math.nan
# Few distinct keys give duplicates and hits; the extremes test the sign flip of pack.
keys = st.one_of(st.integers(-3, 3), st.sampled_from([-(2**63), -(2**40), 2**40, 2**63 - 1]))
values = st.floats(-1e6, 1e6, allow_nan=False)


def i64(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def reference_lookup(want, table, missing):
    """The first row of the table with each wanted key, in table order."""
    first: dict[object, object] = {}
    for key, value in table:
        first.setdefault(key, value)
    return [first.get(w, missing) for w in want]


@given(st.lists(st.tuples(keys, values), max_size=30), st.lists(keys, max_size=30))
def test_lookup_by_int64_key_matches_reference(table, want):
    got = lookup(i64(want), i64([k for k, _ in table]), np.array([v for _, v in table]), NAN)
    expected = reference_lookup(want, table, NAN)
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.float64))
    assert got.dtype == np.float64


@given(st.lists(st.tuples(keys, keys), max_size=30), st.lists(keys, max_size=30))
def test_lookup_keeps_the_value_dtype(table, want):
    got = lookup(i64(want), i64([k for k, _ in table]), i64([v for _, v in table]), -1)
    assert got.dtype == np.int64
    assert got.tolist() == reference_lookup(want, table, -1)


@given(
    st.lists(st.tuples(st.tuples(keys, keys), values), max_size=30),
    st.lists(st.tuples(keys, keys), max_size=30),
)
def test_lookup_by_packed_pair_matches_reference(table, want):
    want = want + [k for k, _ in table[:5]]  # some hits for sure
    got = lookup(
        pack(i64([w[0] for w in want]), i64([w[1] for w in want])),
        pack(i64([k[0] for k, _ in table]), i64([k[1] for k, _ in table])),
        np.array([v for _, v in table], dtype=np.float64),
        NAN,
    )
    np.testing.assert_array_equal(got, np.array(reference_lookup(want, table, NAN)))


@given(st.lists(st.tuples(keys, keys, keys), max_size=40))
def test_pack_orders_and_equates_like_tuples(rows):
    packed = pack(*(i64([r[c] for r in rows]) for c in range(3)))
    assert [rows[i] for i in np.argsort(packed, kind="stable")] == sorted(rows)
    equal = packed[:, None] == packed[None, :]
    assert equal.tolist() == [[a == b for b in rows] for a in rows]


def test_lookup_edge_cases():
    empty = i64([])
    assert lookup(empty, i64([1]), np.array([1.0]), NAN).shape == (0,)
    np.testing.assert_array_equal(lookup(i64([1, 2]), empty, np.zeros(0), NAN), [NAN, NAN])
    with pytest.raises(ValueError, match="one dtype"):
        lookup(i64([1]), np.array([1], dtype=np.int32), np.array([1.0]), NAN)
    with pytest.raises(ValueError, match="one dtype"):
        lookup(pack(i64([1])), pack(i64([1]), i64([2])), np.array([1.0]), NAN)
    with pytest.raises(ValueError, match="aligned"):
        lookup(i64([1]), i64([1, 2]), np.array([1.0]), NAN)
    with pytest.raises(ValueError, match="aligned"):
        pack(i64([1]), i64([1, 2]))
    with pytest.raises(ValueError, match="at least one"):
        pack()
