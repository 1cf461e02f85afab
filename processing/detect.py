"""Streaming anomaly detection, vectorized across series, with per-series state.

A series is one (sensor, metric). Its state is a handful of numbers (:class:`State`): an
exponentially weighted mean and variance, the last value and time, the length of the current run
of identical values, a pending outlier and two CUSUM sums. Readings are processed in time order
per series; a batch holding many series is processed one *rank* at a time (the first reading of
every series, then the second, ...), each rank a few whole-array operations. A reading older
than the series' last one is late: it updates no state and is checked only by the stateless rules.

Kinds (DESIGN.md 5, "Sensor health"):

- ``out_of_range``: outside the metric's plausible range (the hard range is rejected at ingest);
- ``impossible``: PM2.5 above PM10 at the same sensor and time;
- ``spike``: one reading ``z_spike`` robust deviations from the mean, the next one back. It is
  reported when the next reading arrives, because only then is it known not to be a level shift;
- ``level_shift``: two consecutive readings far on the same side: the level moved. Metrics whose
  level moves by nature (a bin's fill drops when emptied; footfall rises at opening) say so;
- ``stuck``: ``stuck_run`` identical values in a row from a sensor whose readings carry noise;
- ``drift``: a slow departure, found by a two-sided CUSUM of the standardised residuals.

Scores: every kind maps its severity ``m`` (1 at its threshold) to ``1 - 2**-m``, so 0.5 is the
threshold, 0.75 twice the threshold, and the score tends to 1. A reading is anomalous at 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from processing.anomalies import (
    DRIFT,
    IMPOSSIBLE,
    KIND_NAMES,
    LEVEL_SHIFT,
    OUT_OF_RANGE,
    SPIKE,
    STUCK,
    Anomalies,
    MetricRules,
    Params,
    severity_score,
    stateless,
)
from processing.arrays import BoolArray, F64Array, I16Array, I32Array, I64Array
from processing.detect_scalar import SCALAR_BELOW, scalar_series
from processing.keys import series_key

__all__ = [
    "DRIFT", "IMPOSSIBLE", "KIND_NAMES", "LEVEL_SHIFT", "OUT_OF_RANGE", "SPIKE", "STUCK",
    "Anomalies", "MetricRules", "Params", "State", "detect", "severity_score", "stateless",
]  # fmt: skip


@dataclass(frozen=True)
class State:
    """Detector state of some series, sorted by (sensor_key, metric_id)."""

    sensor_key: I32Array
    metric_id: I16Array
    n: I64Array
    mean: F64Array
    var: F64Array
    last_value: F64Array
    last_ts_ms: I64Array
    run: I64Array
    pending_value: F64Array  # NaN: no outlier pending
    pending_ts_ms: I64Array
    pending_z: F64Array
    cusum_pos: F64Array
    cusum_neg: F64Array

    def __len__(self) -> int:
        return int(self.n.shape[0])

    @staticmethod
    def empty(n: int = 0) -> State:
        f = np.zeros(n, dtype=np.float64)
        i = np.zeros(n, dtype=np.int64)
        return State(
            np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int16), i.copy(), f.copy(),
            f.copy(), f.copy(), i.copy(), i.copy(), np.full(n, np.nan), i.copy(), f.copy(),
            f.copy(), f.copy(),
        )  # fmt: skip


_FIELDS = tuple(State.__dataclass_fields__)


def detect(
    state: State,
    rules: MetricRules,
    params: Params,
    sensor_key: I32Array,
    metric_id: I16Array,
    ts_ms: I64Array,
    value: F64Array,
) -> tuple[State, Anomalies, F64Array]:
    """Run the detectors over a batch of readings (any order, finite values, distinct keys).

    ``state`` holds what is known of some series (sorted by key; series not in it start fresh).
    Returns the state of every series in ``state`` or in the batch (sorted by key), the
    anomalies found, and each reading's continuous score (the largest of the kinds judged on it;
    a pending outlier's score is its spike score).
    """
    out = Anomalies()
    n_in = value.shape[0]
    score: F64Array = np.zeros(n_in, dtype=np.float64)
    stateless(rules, sensor_key, metric_id, ts_ms, value, out)
    batch_key = series_key(sensor_key, metric_id)
    # Readings in (series, time) order; rank = position within its series.
    order = np.lexsort((ts_ms, batch_key))
    sorted_key = batch_key[order]
    new_series = np.ones(n_in, dtype=np.bool_)
    new_series[1:] = sorted_key[1:] != sorted_key[:-1]
    # Merge the batch's series into the state (sorted by key).
    state_key = series_key(state.sensor_key, state.metric_id)
    batch_series = sorted_key[new_series]
    known = np.zeros(batch_series.shape[0], dtype=np.bool_)
    if state_key.shape[0]:
        at = np.minimum(np.searchsorted(state_key, batch_series), state_key.shape[0] - 1)
        known = state_key[at] == batch_series
    new_keys = batch_series[~known]
    if new_keys.shape[0]:
        fresh = State.empty(new_keys.shape[0])
        fresh = replace(
            fresh,
            sensor_key=(new_keys >> 16).astype(np.int32),
            metric_id=(new_keys & 0xFFFF).astype(np.int16),
        )
        all_key = np.concatenate([state_key, new_keys])
        key_order = np.argsort(all_key, kind="stable")
        st = {k: np.concatenate([getattr(state, k), getattr(fresh, k)])[key_order] for k in _FIELDS}
        state_key = all_key[key_order]
    else:
        st = {k: getattr(state, k).copy() for k in _FIELDS}
    if n_in == 0:
        return State(**st), out, score
    pos = np.searchsorted(state_key, sorted_key)
    starts = np.flatnonzero(new_series)
    counts = np.diff(np.append(starts, n_in))
    # Vectorized while many series have readings left; the few long tails, one by one.
    for r in range(int(counts.max())):
        left = counts > r
        if int(np.count_nonzero(left)) < SCALAR_BELOW:
            for g in np.flatnonzero(left).tolist():
                rows = order[starts[g] + r : starts[g] + counts[g]].tolist()
                scalar_series(st, rules, params, int(pos[starts[g]]), rows, sensor_key,
                              metric_id, ts_ms, value, out, score)  # fmt: skip
            break
        sel = starts[left] + r  # positions in `order`
        _step(st, rules, params, pos[sel], order[sel], sensor_key, metric_id, ts_ms, value,
              out, score)  # fmt: skip
    return State(**st), out, score


def _step(
    st: dict[str, np.ndarray],
    rules: MetricRules,
    params: Params,
    j: I64Array,
    i: I64Array,
    sensor_key: I32Array,
    metric_id: I16Array,
    ts_ms: I64Array,
    value: F64Array,
    out: Anomalies,
    score: F64Array,
) -> None:
    """One reading per series: ``j`` indexes the state, ``i`` the batch (aligned)."""
    n, t, x = st["n"][j], ts_ms[i], value[i]
    k, m = sensor_key[i], metric_id[i]
    live = (n == 0) | (t > st["last_ts_ms"][j])  # late readings change nothing
    if not live.all():
        j, i, n, t, x, k, m = j[live], i[live], n[live], t[live], x[live], k[live], m[live]
    mean, var = st["mean"][j], st["var"][j]
    sigma = np.maximum(np.sqrt(var), rules.min_scale[m])
    z = np.where(n > 0, (x - mean) / sigma, 0.0)
    z_spike = rules.z_spike[m]
    warm = n >= params.warmup
    big = warm & (np.abs(z) >= z_spike)
    spike_score = severity_score(np.abs(z) / z_spike)
    score[i] = np.maximum(score[i], np.where(warm, spike_score, 0.0))

    # Stuck: a run of identical values.
    run = np.where((n > 0) & (x == st["last_value"][j]), st["run"][j] + 1, 1)
    stuck_run = rules.stuck_run[m]
    stuck = (stuck_run > 0) & (run >= stuck_run)
    stuck_score = severity_score(run / np.maximum(stuck_run, 1))
    out.add(stuck, STUCK, k, m, t, stuck_score, x, mean)
    score[i] = np.maximum(score[i], np.where(stuck, stuck_score, 0.0))

    # A pending outlier is resolved by this reading: spike or level shift.
    p_value, p_ts, p_z = st["pending_value"][j], st["pending_ts_ms"][j], st["pending_z"][j]
    has_p = ~np.isnan(p_value)
    same_side = big & (np.sign(z) == np.sign(p_z))
    shift = has_p & same_side
    was_spike = has_p & ~same_side
    p_score = severity_score(np.abs(p_z) / z_spike)
    out.add(was_spike, SPIKE, k, m, p_ts, p_score, p_value, mean)
    shift_ok = np.where(p_z > 0, rules.shift_up_ok[m], rules.shift_down_ok[m])
    out.add(shift & ~shift_ok, LEVEL_SHIFT, k, m, p_ts, p_score, p_value, mean)
    becomes_pending = big & ~shift

    # Update the level: a shift moves it to the new readings; normal readings move it by alpha.
    normal = ~big
    a = np.maximum(params.alpha, 1.0 / (n + 1))
    av = np.maximum(params.alpha_var, 1.0 / (n + 1))
    d = x - mean  # at n == 0 the weight is 1: the mean becomes x
    new_mean = np.where(shift, (p_value + x) / 2, np.where(normal, mean + a * d, mean))
    new_var = np.where(normal, (1 - av) * (var + av * d * d), var)

    pos, neg = _cusum(st, params, j, z, z_spike, normal & warm, shift)
    s = np.maximum(pos, neg)
    drift = (s >= params.cusum_h) & rules.drift[m]
    drift_score = severity_score(s / params.cusum_h)
    out.add(drift, DRIFT, k, m, t, drift_score, x, mean)
    score[i] = np.maximum(score[i], np.where(drift, drift_score, 0.0))

    updates = {
        "n": n + 1, "mean": new_mean, "var": new_var, "last_value": x, "last_ts_ms": t,
        "run": run, "pending_value": np.where(becomes_pending, x, np.nan),
        "pending_ts_ms": np.where(becomes_pending, t, 0),
        "pending_z": np.where(becomes_pending, z, 0.0), "cusum_pos": pos, "cusum_neg": neg,
    }  # fmt: skip
    for name, column in updates.items():
        st[name][j] = column


def _cusum(
    st: dict[str, np.ndarray],
    params: Params,
    j: I64Array,
    z: F64Array,
    z_spike: F64Array,
    judged: BoolArray,
    shift: BoolArray,
) -> tuple[F64Array, F64Array]:
    """Two-sided CUSUM of the standardised residuals (outliers clipped, so one spike does not
    make a drift); reset by a level shift, unchanged by readings not judged."""
    zc = np.clip(z, -z_spike, z_spike)
    cp, cn = st["cusum_pos"][j], st["cusum_neg"][j]
    pos = np.where(judged, np.maximum(0.0, cp + zc - params.cusum_k), np.where(shift, 0.0, cp))
    neg = np.where(judged, np.maximum(0.0, cn - zc - params.cusum_k), np.where(shift, 0.0, cn))
    return pos, neg
