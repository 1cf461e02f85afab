"""The detectors' step for one long series, in plain Python floats.

:func:`processing.detect.detect` advances all series of a batch one reading at a time with
whole-array operations; when only a few series still have readings left (a gateway sending hours
of one sensor's data in one message), each array operation costs far more than the arithmetic,
so those tails run here instead. The arithmetic is the same, operation for operation, so the
results are the same bits (``math.sqrt`` and ``np.sqrt`` are both correctly rounded; scores use
NumPy's ``power`` on scalars, which matches its array loop).
"""

from __future__ import annotations

import math

import numpy as np

from processing.anomalies import (
    DRIFT,
    LEVEL_SHIFT,
    SPIKE,
    STUCK,
    Anomalies,
    MetricRules,
    Params,
)
from processing.arrays import F64Array, I16Array, I32Array, I64Array

# Fewer series than this left in a batch: finish them one by one.
SCALAR_BELOW = 8


def _severity(m: float) -> float:
    # NumPy's pow, not Python's: the two differ in the last bit for about 5 % of inputs.
    return 1.0 - float(np.power(2.0, -max(m, 0.0)))


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def scalar_series(  # noqa: PLR0912, PLR0915 (the vectorized step, written out)
    st: dict[str, np.ndarray],
    rules: MetricRules,
    params: Params,
    j: int,
    rows: list[int],
    sensor_key: I32Array,
    metric_id: I16Array,
    ts_ms: I64Array,
    value: F64Array,
    out: Anomalies,
    score: F64Array,
) -> None:
    """Advance series ``j`` of the state over batch rows ``rows`` (in time order)."""
    k, m = sensor_key[rows[0]], metric_id[rows[0]]
    min_scale, z_spike = float(rules.min_scale[m]), float(rules.z_spike[m])
    stuck_run = int(rules.stuck_run[m])
    up_ok, down_ok, drift_on = (
        bool(rules.shift_up_ok[m]),
        bool(rules.shift_down_ok[m]),
        bool(rules.drift[m]),
    )
    n, mean, var = int(st["n"][j]), float(st["mean"][j]), float(st["var"][j])
    last_value, last_ts, run = (
        float(st["last_value"][j]),
        int(st["last_ts_ms"][j]),
        int(st["run"][j]),
    )
    p_value, p_ts, p_z = (
        float(st["pending_value"][j]),
        int(st["pending_ts_ms"][j]),
        float(st["pending_z"][j]),
    )
    cp, cn = float(st["cusum_pos"][j]), float(st["cusum_neg"][j])
    found: list[tuple[int, int, float, float, float]] = []  # kind, ts, score, observed, expected
    ts_list, x_list = ts_ms[rows].tolist(), value[rows].tolist()
    for i, t, x in zip(rows, ts_list, x_list, strict=True):
        if not (n == 0 or t > last_ts):
            continue  # late: changes nothing
        sigma = max(math.sqrt(var), min_scale)
        z = (x - mean) / sigma if n > 0 else 0.0
        warm = n >= params.warmup
        big = warm and abs(z) >= z_spike
        best = score[i]
        if warm:
            best = max(best, _severity(abs(z) / z_spike))
        run = run + 1 if (n > 0 and x == last_value) else 1
        if stuck_run > 0 and run >= stuck_run:
            s = _severity(run / max(stuck_run, 1))
            found.append((STUCK, t, s, x, mean))
            best = max(best, s)
        has_p = not math.isnan(p_value)
        same_side = big and _sign(z) == _sign(p_z)
        shift = has_p and same_side
        if has_p:
            p_score = _severity(abs(p_z) / z_spike)
            if not same_side:
                found.append((SPIKE, p_ts, p_score, p_value, mean))
            elif not (up_ok if p_z > 0 else down_ok):
                found.append((LEVEL_SHIFT, p_ts, p_score, p_value, mean))
        normal = not big
        a = max(params.alpha, 1.0 / (n + 1))
        av = max(params.alpha_var, 1.0 / (n + 1))
        d = x - mean
        new_mean = (p_value + x) / 2 if shift else (mean + a * d if normal else mean)
        new_var = (1 - av) * (var + av * d * d) if normal else var
        if normal and warm:
            zc = min(max(z, -z_spike), z_spike)
            cp, cn = max(0.0, cp + zc - params.cusum_k), max(0.0, cn - zc - params.cusum_k)
        elif shift:
            cp, cn = 0.0, 0.0
        s = max(cp, cn)
        if s >= params.cusum_h and drift_on:
            ds = _severity(s / params.cusum_h)
            found.append((DRIFT, t, ds, x, mean))
            best = max(best, ds)
        score[i] = best
        n, mean, var, last_value, last_ts = n + 1, new_mean, new_var, x, t
        if big and not shift:
            p_value, p_ts, p_z = x, t, z
        else:
            p_value, p_ts, p_z = math.nan, 0, 0.0
    for name, v in (
        ("n", n), ("mean", mean), ("var", var), ("last_value", last_value),
        ("last_ts_ms", last_ts), ("run", run), ("pending_value", p_value),
        ("pending_ts_ms", p_ts), ("pending_z", p_z), ("cusum_pos", cp), ("cusum_neg", cn),
    ):  # fmt: skip
        st[name][j] = v
    if found:
        kind, t_found, s_found, obs, exp = (np.array(c) for c in zip(*found, strict=True))
        count = kind.shape[0]
        out.add(
            np.ones(count, dtype=np.bool_), 0,
            np.full(count, k, dtype=np.int32), np.full(count, m, dtype=np.int16),
            t_found.astype(np.int64), s_found.astype(np.float64), obs.astype(np.float64),
            exp.astype(np.float64),
        )  # fmt: skip
        out.kind[-1] = kind.astype(np.int64)
