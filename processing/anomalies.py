"""Anomaly kinds, the detectors' settings, the rows they produce and the stateless rules.

Scores: every kind maps its severity ``m`` (1 at its threshold) to ``1 - 2**-m``, so 0.5 is the
threshold, 0.75 twice the threshold, and the score tends to 1. A reading is anomalous at 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from processing.arrays import BoolArray, F64Array, I16Array, I32Array, I64Array
from processing.keys import pack

OUT_OF_RANGE, IMPOSSIBLE, SPIKE, LEVEL_SHIFT, STUCK, DRIFT = range(6)
KIND_NAMES: tuple[str, ...] = (
    "out_of_range", "impossible", "spike", "level_shift", "stuck", "drift"
)  # fmt: skip


@dataclass(frozen=True)
class Params:
    """Settings shared by all series."""

    alpha: float = 0.1  # weight of a new reading in the mean
    alpha_var: float = 0.05  # ... and in the variance
    warmup: int = 8  # readings before spikes, shifts and drift are judged
    cusum_k: float = 1.0  # slack, in standard deviations
    cusum_h: float = 12.0  # decision threshold, in standard deviations


@dataclass(frozen=True)
class MetricRules:
    """Per-metric rules, arrays indexed by ``metric_id``."""

    soft_min: F64Array  # plausible range; NaN: no bound
    soft_max: F64Array
    min_scale: F64Array  # floor of the standard deviation (sensor resolution, counting noise)
    z_spike: F64Array  # deviations that make a spike or a level shift
    stuck_run: I64Array  # identical values in a row that make "stuck"; 0: not checked
    shift_up_ok: BoolArray  # a level shift upwards is normal for this metric
    shift_down_ok: BoolArray
    drift: BoolArray  # the drift CUSUM applies (False where the level trends by nature)
    pm25: int = -1  # metric ids of the PM pair checked for PM2.5 <= PM10 (-1: none)
    pm10: int = -1


@dataclass
class Anomalies:
    """Anomaly rows: sensor, metric, time, kind code, score in [0.5, 1], observed, expected."""

    sensor_key: list[I32Array] = field(default_factory=list)
    metric_id: list[I16Array] = field(default_factory=list)
    ts_ms: list[I64Array] = field(default_factory=list)
    kind: list[I64Array] = field(default_factory=list)
    score: list[F64Array] = field(default_factory=list)
    observed: list[F64Array] = field(default_factory=list)
    expected: list[F64Array] = field(default_factory=list)

    def add(
        self,
        mask: BoolArray,
        kind: int,
        sensor_key: I32Array,
        metric_id: I16Array,
        ts_ms: I64Array,
        score: F64Array,
        observed: F64Array,
        expected: F64Array,
    ) -> None:
        if mask.any():
            self.sensor_key.append(sensor_key[mask])
            self.metric_id.append(metric_id[mask])
            self.ts_ms.append(ts_ms[mask])
            self.kind.append(np.full(int(mask.sum()), kind, dtype=np.int64))
            self.score.append(score[mask])
            self.observed.append(observed[mask])
            self.expected.append(expected[mask])

    def arrays(self) -> dict[str, np.ndarray]:
        """Columns, sorted by (sensor, metric, time, kind)."""
        if not self.kind:
            return {
                "sensor_key": np.zeros(0, np.int32), "metric_id": np.zeros(0, np.int16),
                "ts_ms": np.zeros(0, np.int64), "kind": np.zeros(0, np.int64),
                "score": np.zeros(0), "observed": np.zeros(0), "expected": np.zeros(0),
            }  # fmt: skip
        cols = {name: np.concatenate(getattr(self, name)) for name in _ANOMALY_FIELDS}
        order = np.lexsort((cols["kind"], cols["ts_ms"], cols["metric_id"], cols["sensor_key"]))
        return {name: col[order] for name, col in cols.items()}


_ANOMALY_FIELDS = ("sensor_key", "metric_id", "ts_ms", "kind", "score", "observed", "expected")


def severity_score(m: F64Array) -> F64Array:
    """``1 - 2**-m`` for severity ``m >= 0``: 0.5 at the threshold (m = 1).

    The scalar path of :mod:`processing.detect_scalar` calls the same NumPy ``power``, so
    both give the same bits.
    """
    score: F64Array = 1.0 - np.power(2.0, -np.maximum(m, 0.0))
    return score


def stateless(
    rules: MetricRules,
    sensor_key: I32Array,
    metric_id: I16Array,
    ts_ms: I64Array,
    value: F64Array,
    out: Anomalies,
) -> None:
    """Out-of-range and impossible-combination checks (need no history)."""
    lo, hi = rules.soft_min[metric_id], rules.soft_max[metric_id]
    span = np.where(np.isnan(lo) | np.isnan(hi), 1.0, np.abs(hi - lo))
    below = value < lo  # NaN bounds compare False
    above = value > hi
    excess = np.where(below, lo - value, np.where(above, value - hi, 0.0))
    out.add(
        below | above, OUT_OF_RANGE, sensor_key, metric_id, ts_ms,
        severity_score(1.0 + 10.0 * excess / span), value, np.where(below, lo, hi),
    )  # fmt: skip
    if rules.pm25 < 0 or rules.pm10 < 0:
        return
    is25, is10 = metric_id == rules.pm25, metric_id == rules.pm10
    if not (is25.any() and is10.any()):
        return
    i25, i10 = np.flatnonzero(is25), np.flatnonzero(is10)
    no_metric = np.zeros(1, dtype=np.int16)
    _, a, b = np.intersect1d(
        pack(sensor_key[i25], np.broadcast_to(no_metric, i25.shape), ts_ms[i25]),
        pack(sensor_key[i10], np.broadcast_to(no_metric, i10.shape), ts_ms[i10]),
        return_indices=True,
    )
    p25, p10 = value[i25[a]], value[i10[b]]
    bad = p25 > p10
    ratio = np.where(p10 > 0, p25 / np.where(p10 > 0, p10, 1.0), 2.0)
    out.add(
        bad, IMPOSSIBLE, sensor_key[i25[a]], metric_id[i25[a]], ts_ms[i25[a]],
        severity_score(ratio), p25, p10,
    )  # fmt: skip
