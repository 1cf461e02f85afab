"""Rollups: mergeable partial aggregates per (sensor, metric, time bucket).

A bucket holds count, sum, sum of squares, min, max and the first and last reading (time and
value). Two partials of one bucket merge exactly: counts and sums add, min/max take the extreme,
first/last take the earlier/later time. So a late reading, a batch split differently, a restart or
a second worker all give the same bucket as a recomputation from raw (DESIGN.md 3.5); only the
float sums may differ in their last bits, by the order of additions.

The database applies the same merge in ``INSERT ... ON CONFLICT DO UPDATE``; :func:`merge`
is its NumPy twin, used to build the coarser widths from the finer ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.arrays import F64Array, I16Array, I32Array, I64Array
from processing.keys import series_key

MINUTE_MS = 60_000


@dataclass(frozen=True)
class Rollup:
    """One rollup width: its name (the API's ``bucket=``), its table and its width."""

    name: str
    table: str
    width_ms: int

    @property
    def interval(self) -> str:
        """The width as a PostgreSQL interval literal (for ``time_bucket``)."""
        return f"{self.width_ms // 1000} seconds"


# The one list of rollup widths and their tables, finest first; each width divides the next,
# so each is built from the previous.
ROLLUPS: tuple[Rollup, ...] = (
    Rollup("1m", "rollup_1m", MINUTE_MS),
    Rollup("15m", "rollup_15m", 15 * MINUTE_MS),
    Rollup("1h", "rollup_1h", 60 * MINUTE_MS),
    Rollup("1d", "rollup_1d", 1440 * MINUTE_MS),
)
WIDTHS_MS: tuple[int, ...] = tuple(r.width_ms for r in ROLLUPS)
TABLES: dict[int, str] = {r.width_ms: r.table for r in ROLLUPS}


@dataclass(frozen=True)
class BucketStats:
    """Partial aggregates, one row per (sensor_key, metric_id, bucket_ms), sorted by that key."""

    sensor_key: I32Array
    metric_id: I16Array
    bucket_ms: I64Array  # bucket start, Unix ms (UTC-aligned: days start at 00:00 UTC)
    n: I64Array
    sum: F64Array
    sum_sq: F64Array
    min: F64Array
    max: F64Array
    first_ts_ms: I64Array
    first_value: F64Array
    last_ts_ms: I64Array
    last_value: F64Array

    def __len__(self) -> int:
        return int(self.n.shape[0])


def bucket_start(ts_ms: I64Array, width_ms: int) -> I64Array:
    """The start of the bucket holding each time (floor, also before 1970)."""
    start: I64Array = ts_ms - np.mod(ts_ms, width_ms)
    return start


def _group_starts(sensor_key: I32Array, metric_id: I16Array, bucket_ms: I64Array) -> I64Array:
    """Indices where a new (sensor, metric, bucket) group starts, for arrays sorted by it."""
    n = sensor_key.shape[0]
    new = np.ones(n, dtype=np.bool_)
    if n > 1:
        new[1:] = (
            (sensor_key[1:] != sensor_key[:-1])
            | (metric_id[1:] != metric_id[:-1])
            | (bucket_ms[1:] != bucket_ms[:-1])
        )
    starts: I64Array = np.flatnonzero(new).astype(np.int64)
    return starts


def empty_stats() -> BucketStats:
    f = np.zeros(0, dtype=np.float64)
    i = np.zeros(0, dtype=np.int64)
    return BucketStats(
        np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int16), i, i, f, f, f, f, i, f, i, f
    )


def bucket_stats(
    sensor_key: I32Array, metric_id: I16Array, ts_ms: I64Array, value: F64Array, width_ms: int
) -> BucketStats:
    """Partial aggregates of raw readings per (sensor, metric, bucket of ``width_ms``).

    Input order does not matter. NaN values are not counted. Readings with the same key and time
    are each counted (the caller passes only newly inserted, hence distinct, readings); among
    them the first in input order is "first" and the last is "last".
    """
    keep = ~np.isnan(value)
    if not keep.all():
        sensor_key, metric_id, ts_ms, value = (
            sensor_key[keep], metric_id[keep], ts_ms[keep], value[keep]
        )  # fmt: skip
    if value.shape[0] == 0:
        return empty_stats()
    bucket = bucket_start(ts_ms, width_ms)
    # Sorting by (series, time) also sorts by bucket within a series: one packed key, two passes.
    order = np.lexsort((ts_ms, series_key(sensor_key, metric_id)))
    k, m, b = sensor_key[order], metric_id[order], bucket[order]
    t, v = ts_ms[order], value[order]
    starts = _group_starts(k, m, b)
    ends = np.append(starts[1:], order.shape[0]) - 1
    return BucketStats(
        sensor_key=k[starts],
        metric_id=m[starts],
        bucket_ms=b[starts],
        n=np.diff(np.append(starts, order.shape[0])).astype(np.int64),
        sum=np.add.reduceat(v, starts),
        sum_sq=np.add.reduceat(v * v, starts),
        min=np.minimum.reduceat(v, starts),
        max=np.maximum.reduceat(v, starts),
        first_ts_ms=t[starts],
        first_value=v[starts],
        last_ts_ms=t[ends],
        last_value=v[ends],
    )


def merge(stats: BucketStats, width_ms: int) -> BucketStats:
    """Merge partials into buckets of ``width_ms`` (a multiple of their width, or the same).

    Ties on first/last time keep the earlier row in (key, bucket) order, as the database does by
    keeping the stored row when the times are equal.
    """
    if len(stats) == 0:
        return empty_stats()
    bucket = bucket_start(stats.bucket_ms, width_ms)
    if _sorted_by_key(stats):
        # The usual case (the output of bucket_stats): rows are in (sensor, metric, fine bucket)
        # order, so each coarse bucket is a run of rows whose fine buckets do not overlap in
        # time: its first reading is in its first row, its last in its last row.
        starts = _group_starts(stats.sensor_key, stats.metric_id, bucket)
        ends = np.append(starts[1:], len(stats)) - 1
        return BucketStats(
            sensor_key=stats.sensor_key[starts],
            metric_id=stats.metric_id[starts],
            bucket_ms=bucket[starts],
            n=np.add.reduceat(stats.n, starts),
            sum=np.add.reduceat(stats.sum, starts),
            sum_sq=np.add.reduceat(stats.sum_sq, starts),
            min=np.minimum.reduceat(stats.min, starts),
            max=np.maximum.reduceat(stats.max, starts),
            first_ts_ms=stats.first_ts_ms[starts],
            first_value=stats.first_value[starts],
            last_ts_ms=stats.last_ts_ms[ends],
            last_value=stats.last_value[ends],
        )
    order = np.lexsort((stats.bucket_ms, bucket, stats.metric_id, stats.sensor_key))
    k, m, b = stats.sensor_key[order], stats.metric_id[order], bucket[order]
    starts = _group_starts(k, m, b)
    new = np.zeros(order.shape[0], dtype=np.int64)
    new[starts] = 1
    group = np.cumsum(new) - 1
    first_ts, first_value = _extreme(group, stats.first_ts_ms[order], stats.first_value[order], -1)
    last_ts, last_value = _extreme(group, stats.last_ts_ms[order], stats.last_value[order], 1)
    return BucketStats(
        sensor_key=k[starts],
        metric_id=m[starts],
        bucket_ms=b[starts],
        n=np.add.reduceat(stats.n[order], starts),
        sum=np.add.reduceat(stats.sum[order], starts),
        sum_sq=np.add.reduceat(stats.sum_sq[order], starts),
        min=np.minimum.reduceat(stats.min[order], starts),
        max=np.maximum.reduceat(stats.max[order], starts),
        first_ts_ms=first_ts,
        first_value=first_value,
        last_ts_ms=last_ts,
        last_value=last_value,
    )


def _sorted_by_key(stats: BucketStats) -> bool:
    """Whether rows are in strictly increasing (sensor, metric, bucket) order."""
    k, m, b = stats.sensor_key, stats.metric_id, stats.bucket_ms
    if k.shape[0] < 2:
        return True
    dk, dm, db = np.diff(k.astype(np.int64)), np.diff(m.astype(np.int64)), np.diff(b)
    return bool(np.all((dk > 0) | ((dk == 0) & ((dm > 0) | ((dm == 0) & (db > 0))))))


def _extreme(
    group: I64Array, ts_ms: I64Array, value: F64Array, sign: int
) -> tuple[I64Array, F64Array]:
    """Per group (rows already grouped), the earliest (sign -1) or latest (sign 1) time and its
    value; ties keep the first row of the group."""
    # Sort by group, then by time in the wanted direction, keeping row order on ties.
    order = np.lexsort((np.arange(group.shape[0]), -sign * ts_ms, group))
    g = group[order]
    first = np.ones(order.shape[0], dtype=np.bool_)
    first[1:] = g[1:] != g[:-1]
    pick = order[first]
    return ts_ms[pick], value[pick]


def all_widths(
    sensor_key: I32Array, metric_id: I16Array, ts_ms: I64Array, value: F64Array
) -> dict[int, BucketStats]:
    """The partials of every stored width, each built from the next finer one."""
    out: dict[int, BucketStats] = {}
    stats = bucket_stats(sensor_key, metric_id, ts_ms, value, WIDTHS_MS[0])
    out[WIDTHS_MS[0]] = stats
    for width in WIDTHS_MS[1:]:
        stats = merge(stats, width)
        out[width] = stats
    return out
