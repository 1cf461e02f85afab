"""Reading keys (sensor, metric, time): duplicates within a batch and set membership, vectorized.

A reading's identity is ``(sensor_key, metric_id, ts_ms)``: the primary key of ``readings``.
Keys are packed into 16-byte opaque values so that NumPy's sort-based set operations apply.
"""

from __future__ import annotations

import numpy as np

from processing.arrays import BoolArray, I16Array, I32Array, I64Array

_PACKED = np.dtype([("sensor_metric", ">i8"), ("ts_ms", ">i8")])


def series_key(sensor_key: I32Array, metric_id: I16Array) -> I64Array:
    """One int64 per (sensor, metric) series, ordered as (sensor_key, metric_id)."""
    key: I64Array = (sensor_key.astype(np.int64) << 16) | (metric_id.astype(np.int64) & 0xFFFF)
    return key


def pack(sensor_key: I32Array, metric_id: I16Array, ts_ms: I64Array) -> np.ndarray:
    """One opaque 16-byte value per reading; equal keys give equal values."""
    packed = np.empty(sensor_key.shape[0], dtype=_PACKED)
    packed["sensor_metric"] = series_key(sensor_key, metric_id)
    packed["ts_ms"] = ts_ms
    return packed.view("V16")


def first_occurrence(sensor_key: I32Array, metric_id: I16Array, ts_ms: I64Array) -> BoolArray:
    """True for the first reading of each key in array order, False for later repeats."""
    mask = np.zeros(sensor_key.shape[0], dtype=np.bool_)
    if mask.size:
        _, first = np.unique(pack(sensor_key, metric_id, ts_ms), return_index=True)
        mask[first] = True
    return mask


def is_member(
    sensor_key: I32Array,
    metric_id: I16Array,
    ts_ms: I64Array,
    of: tuple[I32Array, I16Array, I64Array],
) -> BoolArray:
    """True where the reading's key is among the keys ``of``."""
    if sensor_key.shape[0] == 0 or of[0].shape[0] == 0:
        return np.zeros(sensor_key.shape[0], dtype=np.bool_)
    return np.isin(pack(sensor_key, metric_id, ts_ms), pack(*of))


def newest_per_series(sensor_key: I32Array, metric_id: I16Array, ts_ms: I64Array) -> I64Array:
    """Indices of the newest reading of each (sensor, metric) series, in series order.

    Ties on time keep the first in array order.
    """
    if sensor_key.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    # Sort by series, then newest first; keep each series' first row.
    order = np.lexsort((-ts_ms, series_key(sensor_key, metric_id))).astype(np.int64)
    k, m = sensor_key[order], metric_id[order]
    first = np.ones(order.shape[0], dtype=np.bool_)
    first[1:] = (k[1:] != k[:-1]) | (m[1:] != m[:-1])
    return order[first]
