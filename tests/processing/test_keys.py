"""processing.keys against plain-Python sets."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from processing.keys import first_occurrence, is_member, newest_per_series

keys = st.lists(
    st.tuples(
        st.integers(0, 2**31 - 1), st.integers(-(2**15), 2**15 - 1), st.integers(-(2**62), 2**62)
    ),
    max_size=80,
)
small_keys = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 3)), max_size=80
)


def columns(rows: list[tuple[int, int, int]]):
    return (
        np.array([r[0] for r in rows], dtype=np.int32),
        np.array([r[1] for r in rows], dtype=np.int16),
        np.array([r[2] for r in rows], dtype=np.int64),
    )


@given(st.one_of(keys, small_keys))
def test_first_occurrence_matches_reference(rows):
    seen: set[tuple[int, int, int]] = set()
    expected = []
    for row in rows:
        expected.append(row not in seen)
        seen.add(row)
    assert first_occurrence(*columns(rows)).tolist() == expected


@given(st.one_of(keys, small_keys), st.one_of(keys, small_keys))
def test_is_member_matches_reference(rows, others):
    other_set = set(others)
    expected = [row in other_set for row in rows]
    assert is_member(*columns(rows), of=columns(others)).tolist() == expected


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 5)), max_size=80))
def test_newest_per_series_matches_reference(rows):
    newest: dict[tuple[int, int], tuple[int, int]] = {}
    for i, (k, m, t) in enumerate(rows):
        if (k, m) not in newest or t > newest[(k, m)][0]:
            newest[(k, m)] = (t, i)
    expected = [newest[key][1] for key in sorted(newest)]
    assert newest_per_series(*columns(rows)).tolist() == expected
