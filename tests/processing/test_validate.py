"""processing.validate against a plain-Python reference."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from processing.reasons import Reason
from processing.validate import Catalog, validate

N_METRICS = 6
N_KINDS = 3
NOW_MS = 1_800_000_000_000
TOLERANCE_MS = 300_000


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    lo = draw(st.lists(st.floats(-100, 100), min_size=N_METRICS, max_size=N_METRICS))
    width = draw(st.lists(st.floats(0.5, 500), min_size=N_METRICS, max_size=N_METRICS))
    allowed = draw(
        st.lists(st.booleans(), min_size=N_KINDS * N_METRICS, max_size=N_KINDS * N_METRICS)
    )
    return Catalog(
        min_value=np.array(lo),
        max_value=np.array(lo) + np.array(width),
        allowed=np.array(allowed).reshape(N_KINDS, N_METRICS),
    )


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-200, 700), st.sampled_from([0.0])
)
readings = st.lists(
    st.tuples(
        st.integers(0, N_KINDS - 1),
        st.integers(-1, N_METRICS + 1),
        st.integers(NOW_MS - 10**9, NOW_MS + 10**7),
        values,
        st.integers(NOW_MS - 2 * 10**9, NOW_MS),
    ),
    max_size=60,
)


def reference(catalog: Catalog, kind: int, metric: int, ts: int, value: float, inst: int) -> int:
    if not (0 <= metric < N_METRICS) or not catalog.allowed[kind, metric]:
        return Reason.UNKNOWN_METRIC
    if not math.isfinite(value):
        return Reason.NON_FINITE
    if not (catalog.min_value[metric] <= value <= catalog.max_value[metric]):
        return Reason.OUT_OF_RANGE
    if ts > NOW_MS + TOLERANCE_MS:
        return Reason.TS_IN_FUTURE
    if ts < inst:
        return Reason.TS_BEFORE_INSTALL
    return Reason.OK


@given(catalogs(), readings)
def test_validate_matches_reference(catalog: Catalog, rows: list[tuple[int, int, int, float, int]]):
    kind, metric, ts, value, inst = (
        (list(c) for c in zip(*rows, strict=True)) if rows else ([],) * 5
    )
    got = validate(
        catalog,
        np.array(kind, dtype=np.uint8),
        np.array(metric, dtype=np.int16),
        np.array(ts, dtype=np.int64),
        np.array(value, dtype=np.float64),
        np.array(inst, dtype=np.int64),
        NOW_MS,
        TOLERANCE_MS,
    )
    expected = [reference(catalog, *row) for row in rows]
    assert got.tolist() == expected


def test_reason_codes_name_the_rejects_reason_column():
    assert Reason.OUT_OF_RANGE.code == "out_of_range"
    assert Reason.TS_IN_FUTURE.code == "ts_in_future"
