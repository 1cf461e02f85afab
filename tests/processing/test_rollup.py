"""Rollup partials (processing.rollup) against a plain-Python recomputation from raw readings."""

from __future__ import annotations

import math
import random
from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.rollup import (
    MINUTE_MS,
    TABLES,
    WIDTHS_MS,
    BucketStats,
    all_widths,
    bucket_start,
    bucket_stats,
    empty_stats,
    merge,
)

Reading = tuple[int, int, int, float]  # sensor_key, metric_id, ts_ms, value
NAN = float("nan")
DAY_MS = 1440 * MINUTE_MS

WIDTHS = st.sampled_from([1, 7, 1000, MINUTE_MS, 250_000, 15 * MINUTE_MS, 60 * MINUTE_MS, DAY_MS])
# Centres of the generated times: before 1970, at 0, in 2023; readings spread around them.
BASES = st.sampled_from([-30 * 365 * DAY_MS - 123_456, -1, 0, 1_700_000_000_000])


@st.composite
def readings(draw: st.DrawFn, min_size: int = 0, max_size: int = 60) -> list[Reading]:
    """Random readings; times come from a small pool so buckets and timestamps repeat."""
    base = draw(BASES)
    spread = draw(st.sampled_from([1_000, 10 * MINUTE_MS, 3 * DAY_MS]))
    pool = draw(st.lists(st.integers(-spread, spread), min_size=1, max_size=12))
    sensors = draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=3))
    metrics = draw(st.lists(st.integers(0, 2**15 - 1), min_size=1, max_size=3))
    value = st.one_of(
        st.floats(-1e6, 1e6, allow_nan=False),
        st.sampled_from([0.0, -0.0, 1.5, 42.0, NAN]),
    )
    row = st.tuples(
        st.sampled_from(sensors), st.sampled_from(metrics), st.sampled_from(pool), value
    )
    rows = draw(st.lists(row, min_size=min_size, max_size=max_size))
    return [(k, m, base + t, v) for k, m, t, v in rows]


def distinct(rows: list[Reading]) -> list[Reading]:
    """The first reading of each key (sensor, metric, ts), as the writer passes them."""
    seen: set[tuple[int, int, int]] = set()
    out = []
    for r in rows:
        if r[:3] not in seen:
            seen.add(r[:3])
            out.append(r)
    return out


def arrays(rows: list[Reading]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.array([r[0] for r in rows], dtype=np.int32),
        np.array([r[1] for r in rows], dtype=np.int16),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=np.float64),
    )


def reference(rows: list[Reading], width: int) -> dict[tuple[int, int, int], dict[str, float]]:
    """Per (sensor, metric, bucket start): n, sums, extremes, first/last by time (ties: input
    order), NaN values left out. Python's floor division floors before 1970 too."""
    groups: dict[tuple[int, int, int], list[tuple[int, int, float]]] = defaultdict(list)
    for i, (k, m, t, v) in enumerate(rows):
        if not math.isnan(v):
            groups[(k, m, t // width * width)].append((t, i, v))
    out = {}
    for key, g in groups.items():
        values = [v for _, _, v in g]
        first = min(g, key=lambda r: (r[0], r[1]))
        last = max(g, key=lambda r: (r[0], r[1]))
        out[key] = {
            "n": len(g),
            "sum": math.fsum(values),
            "sum_sq": math.fsum(v * v for v in values),
            "abs_sum": math.fsum(abs(v) for v in values),
            "min": min(values),
            "max": max(values),
            "first_ts_ms": first[0],
            "first_value": first[2],
            "last_ts_ms": last[0],
            "last_value": last[2],
        }
    return out


def assert_sorted_by_key(stats: BucketStats) -> None:
    keys = list(
        zip(
            stats.sensor_key.tolist(),
            stats.metric_id.tolist(),
            stats.bucket_ms.tolist(),
            strict=True,
        )
    )
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def assert_matches_reference(stats: BucketStats, rows: list[Reading], width: int) -> None:
    ref = reference(rows, width)
    assert_sorted_by_key(stats)
    keys = list(
        zip(
            stats.sensor_key.tolist(),
            stats.metric_id.tolist(),
            stats.bucket_ms.tolist(),
            strict=True,
        )
    )
    assert keys == sorted(ref)
    assert stats.n.dtype == np.int64
    assert stats.bucket_ms.dtype == np.int64
    for i, key in enumerate(keys):
        r = ref[key]
        assert int(stats.n[i]) == r["n"]
        assert math.isclose(float(stats.sum[i]), r["sum"], rel_tol=0, abs_tol=1e-12 * r["abs_sum"])
        assert math.isclose(float(stats.sum_sq[i]), r["sum_sq"], rel_tol=1e-12, abs_tol=1e-300), key
        assert float(stats.min[i]) == r["min"]
        assert float(stats.max[i]) == r["max"]
        assert int(stats.first_ts_ms[i]) == r["first_ts_ms"]
        assert int(stats.last_ts_ms[i]) == r["last_ts_ms"]
        # Bit-exact, so that 0.0 and -0.0 are told apart.
        assert math.copysign(1, stats.first_value[i]) == math.copysign(1, r["first_value"])
        assert float(stats.first_value[i]) == r["first_value"]
        assert math.copysign(1, stats.last_value[i]) == math.copysign(1, r["last_value"])
        assert float(stats.last_value[i]) == r["last_value"]
        assert stats.min[i] <= stats.first_value[i] <= stats.max[i]
        assert stats.first_ts_ms[i] <= stats.last_ts_ms[i]
        assert stats.bucket_ms[i] <= stats.first_ts_ms[i]
        assert stats.last_ts_ms[i] < stats.bucket_ms[i] + width


def assert_same_stats(got: BucketStats, want: BucketStats) -> None:
    """Exact for keys, counts, extremes and first/last; sums within float reordering error."""
    for name in ("sensor_key", "metric_id", "bucket_ms", "n", "min", "max", "first_ts_ms",
                 "first_value", "last_ts_ms", "last_value"):  # fmt: skip
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    # |error| of a float sum <= n * eps * sum(|v|) <= n * eps * n * max(|v|).
    scale = np.maximum(np.abs(want.min), np.abs(want.max)) * want.n
    assert (np.abs(got.sum - want.sum) <= 1e-12 * scale).all(), (got.sum, want.sum)
    np.testing.assert_allclose(got.sum_sq, want.sum_sq, rtol=1e-12, atol=1e-300, err_msg="sum_sq")


@given(readings(), WIDTHS)
def test_bucket_stats_equal_a_plain_python_recomputation(rows, width):
    assert_matches_reference(bucket_stats(*arrays(rows), width), rows, width)


@given(readings(min_size=1), WIDTHS)
def test_bucket_stats_do_not_depend_on_input_order_for_distinct_readings(rows, width):
    rows = distinct(rows)
    shuffled = random.Random(len(rows)).sample(rows, len(rows))
    assert_same_stats(bucket_stats(*arrays(shuffled), width), bucket_stats(*arrays(rows), width))
    assert_matches_reference(bucket_stats(*arrays(shuffled), width), shuffled, width)


def test_empty_and_all_nan_give_no_buckets():
    for rows in ([], [(1, 2, 0, NAN), (1, 2, 5, NAN)]):
        stats = bucket_stats(*arrays(rows), MINUTE_MS)
        assert len(stats) == 0
        assert stats.sensor_key.dtype == np.int32
        assert stats.metric_id.dtype == np.int16
    assert len(merge(empty_stats(), DAY_MS)) == 0
    assert all(len(s) == 0 for s in all_widths(*arrays([])).values())


def test_one_series_known_answer():
    # 00:00:30, 00:00:10, 00:01:00 and a NaN: two one-minute buckets.
    rows = [(7, 4, 30_000, 2.0), (7, 4, 10_000, -1.0), (7, 4, 60_000, 5.0), (7, 4, 20_000, NAN)]
    stats = bucket_stats(*arrays(rows), MINUTE_MS)
    assert stats.bucket_ms.tolist() == [0, 60_000]
    assert stats.n.tolist() == [2, 1]
    assert stats.sum.tolist() == [1.0, 5.0]
    assert stats.sum_sq.tolist() == [5.0, 25.0]
    assert stats.min.tolist() == [-1.0, 5.0]
    assert stats.max.tolist() == [2.0, 5.0]
    assert stats.first_ts_ms.tolist() == [10_000, 60_000]
    assert stats.first_value.tolist() == [-1.0, 5.0]
    assert stats.last_ts_ms.tolist() == [30_000, 60_000]
    assert stats.last_value.tolist() == [2.0, 5.0]


def test_duplicate_times_first_in_input_order_is_first_and_last_is_last():
    rows = [(1, 1, 500, 1.0), (1, 1, 500, 2.0), (1, 1, 500, 3.0)]
    stats = bucket_stats(*arrays(rows), 1000)
    assert stats.n.tolist() == [3]
    assert stats.first_value.tolist() == [1.0]
    assert stats.last_value.tolist() == [3.0]


@given(st.lists(st.integers(-(10**15), 10**15), max_size=30), WIDTHS)
def test_bucket_start_floors_also_before_1970(times, width):
    ts = np.array(times, dtype=np.int64)
    got = bucket_start(ts, width)
    assert got.tolist() == [t // width * width for t in times]
    assert ((got <= ts) & (ts < got + width)).all()


def test_bucket_start_before_1970_known_answer():
    ts = np.array([-1, -60_000, -60_001, 0, 59_999], dtype=np.int64)
    assert bucket_start(ts, MINUTE_MS).tolist() == [-60_000, -60_000, -120_000, 0, 0]


@given(readings(), WIDTHS, st.integers(1, 4), st.randoms(use_true_random=False))
def test_merging_partials_of_a_random_split_equals_the_whole(rows, width, parts, rnd):
    rows = distinct(rows)
    rnd.shuffle(rows)
    assignment = [rnd.randrange(parts) for _ in rows]
    partials = [
        bucket_stats(*arrays([r for r, a in zip(rows, assignment, strict=True) if a == p]), width)
        for p in range(parts)
    ]
    rnd.shuffle(partials)
    cat = concat(partials)
    # The partial rows in any order.
    perm = np.array(rnd.sample(range(len(cat)), len(cat)), dtype=np.int64)
    cat = take(cat, perm)
    merged = merge(cat, width)
    assert_same_stats(merged, bucket_stats(*arrays(rows), width))
    assert_matches_reference(merged, rows, width)


@given(readings(), st.sampled_from([1, 1000, MINUTE_MS]), st.sampled_from([1, 2, 15, 60, 1440]))
def test_merging_into_a_coarser_width_equals_bucketing_at_that_width(rows, fine, factor):
    # Duplicate times are allowed: they share one fine bucket, which fixes their order.
    coarse = fine * factor
    merged = merge(bucket_stats(*arrays(rows), fine), coarse)
    assert_same_stats(merged, bucket_stats(*arrays(rows), coarse))
    assert_matches_reference(merged, rows, coarse)


@given(readings(max_size=80))
def test_all_widths_equal_bucket_stats_at_each_width(rows):
    got = all_widths(*arrays(rows))
    assert list(got) == list(WIDTHS_MS) == list(TABLES)
    for width, stats in got.items():
        assert_same_stats(stats, bucket_stats(*arrays(rows), width))
        assert_matches_reference(stats, rows, width)
    # Every width counts every non-NaN reading once.
    total = sum(1 for r in rows if not math.isnan(r[3]))
    assert all(int(s.n.sum()) == total for s in got.values())


@settings(max_examples=50)
@given(st.integers(0, 2**32 - 1))
def test_days_start_at_midnight_utc_over_a_long_stream(seed):
    rng = np.random.default_rng(seed)
    n = 500
    ts = rng.integers(-5 * DAY_MS, 5 * DAY_MS, n)
    rows = [(1, 1, int(t), float(v)) for t, v in zip(ts, rng.normal(0, 10, n), strict=True)]
    stats = all_widths(*arrays(rows))[DAY_MS]
    assert (stats.bucket_ms % DAY_MS == 0).all()
    assert_matches_reference(stats, rows, DAY_MS)


def concat(parts: list[BucketStats]) -> BucketStats:
    fields = BucketStats.__dataclass_fields__
    return BucketStats(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


def take(stats: BucketStats, idx: np.ndarray) -> BucketStats:
    return BucketStats(**{f: getattr(stats, f)[idx] for f in BucketStats.__dataclass_fields__})
