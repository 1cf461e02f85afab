"""The detectors' two paths, whole-array steps and the scalar tail, give the same bits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import processing.detect as detect_module
from processing.detect import Params, State, detect
from processing.rules import metric_rules

RULES = metric_rules({"fill_pct": 1, "temp_c": 4, "pm25_ugm3": 6, "pm10_ugm3": 7, "count_in": 13})
METRICS = np.array([1, 4, 6, 7, 13], dtype=np.int16)


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[np.ndarray, ...]]:
    """A stream over many series with uneven lengths (so both paths run), split in batches,
    with spikes, steps and repeated values."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    series = draw(st.integers(1, 24))
    lengths = rng.integers(1, draw(st.integers(2, 120)), size=series)
    keys, metrics, ts, values = [], [], [], []
    for s, length in enumerate(lengths.tolist()):
        t = 1_764_000_000_000 + np.cumsum(rng.integers(1, 120_000, size=length))
        x = rng.normal(30, 2, size=length).round(rng.integers(0, 3))
        x[rng.random(length) < 0.03] += 40
        if length > 20 and rng.random() < 0.3:
            x[length // 2 :] += 25
        if length > 20 and rng.random() < 0.3:
            x[5:15] = x[5]
        keys.append(np.full(length, s // 5 + 1, dtype=np.int32))
        metrics.append(np.full(length, METRICS[s % 5], dtype=np.int16))
        ts.append(t.astype(np.int64))
        values.append(x)
    k, m, t_all, v = (np.concatenate(a) for a in (keys, metrics, ts, values))
    order = np.argsort(t_all, kind="stable")
    cuts = sorted(set(draw(st.lists(st.integers(0, k.shape[0]), max_size=4))))
    return [
        (k[order][a:b], m[order][a:b], t_all[order][a:b], v[order][a:b])
        for a, b in zip([0, *cuts], [*cuts, k.shape[0]], strict=True)
    ]


def run(batches: list[tuple[np.ndarray, ...]]) -> tuple[State, list[dict[str, np.ndarray]], list]:
    state, found, scores = State.empty(), [], []
    for k, m, t, v in batches:
        state, anomalies, score = detect(state, RULES, Params(), k, m, t, v)
        found.append(anomalies.arrays())
        scores.append(score)
    return state, found, scores


def assert_identical(a: tuple, b: tuple) -> None:
    for name in State.__dataclass_fields__:
        assert np.array_equal(getattr(a[0], name), getattr(b[0], name), equal_nan=True), name
    for x, y in zip(a[1], b[1], strict=True):
        for name in x:
            assert np.array_equal(x[name], y[name], equal_nan=True), name
    for x, y in zip(a[2], b[2], strict=True):
        assert np.array_equal(x, y)


@settings(max_examples=100)
@given(batches())
def test_vectorized_and_scalar_paths_agree_bit_for_bit(stream):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(detect_module, "SCALAR_BELOW", 0)  # whole-array steps only
        vectorized = run(stream)
        mp.setattr(detect_module, "SCALAR_BELOW", 10**9)  # scalar only
        scalar = run(stream)
    mixed = run(stream)  # the default switch-over
    assert_identical(vectorized, scalar)
    assert_identical(vectorized, mixed)


def test_a_long_series_takes_the_scalar_path_and_finds_its_spikes():
    rng = np.random.default_rng(3)
    values = rng.normal(30, 1, 3000).round(2)
    values[[500, 1500, 2500]] += 30
    t = 1_764_000_000_000 + np.arange(3000, dtype=np.int64) * 60_000
    stream = [(np.ones(3000, np.int32), np.full(3000, 4, np.int16), t, values)]
    scalar = run(stream)
    found = scalar[1][0]
    spikes = found["ts_ms"][found["kind"] == detect_module.SPIKE]
    assert spikes.tolist() == t[[500, 1500, 2500]].tolist()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(detect_module, "SCALAR_BELOW", 0)
        vectorized = run(stream)
    assert_identical(vectorized, scalar)
