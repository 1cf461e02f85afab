"""The vectorized streaming detectors (processing.detect) against a scalar Python reference, and
constructed series with known answers."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.detect import (
    DRIFT,
    IMPOSSIBLE,
    KIND_NAMES,
    LEVEL_SHIFT,
    OUT_OF_RANGE,
    SPIKE,
    STUCK,
    Anomalies,
    Params,
    State,
    detect,
    severity_score,
    stateless,
)
from processing.rules import RULES, Rule, metric_rules

# The catalog of the migration (pantau/db/migrations/0001_schema.sql).
METRIC_IDS = {
    "fill_pct": 1, "distance_cm": 2, "battery_v": 3, "temp_c": 4, "tilt": 5, "pm25_ugm3": 6,
    "pm10_ugm3": 7, "no2_ugm3": 8, "so2_ugm3": 9, "o3_ugm3": 10, "co_ugm3": 11, "rh_pct": 12,
    "count_in": 13, "count_out": 14,
}  # fmt: skip
NAME = {v: k for k, v in METRIC_IDS.items()}
RULES_ARRAYS = metric_rules(METRIC_IDS)
PARAMS = Params()
FILL, DIST, BATT, TEMP, TILT, PM25, PM10 = 1, 2, 3, 4, 5, 6, 7
RH, COUNT_IN = 12, 13
MIN = 60_000
T0 = 1_764_000_000_000  # late 2025, Unix ms

Reading = tuple[int, int, int, float]  # sensor_key, metric_id, ts_ms, value
AnomalyRow = tuple[int, int, int, int, float, float, float]  # k, m, ts, kind, score, obs, exp


# --- The scalar reference --------------------------------------------------------------------


@dataclass
class Series:
    """One series' state, as plain Python numbers."""

    n: int = 0
    mean: float = 0.0
    var: float = 0.0
    last_value: float = 0.0
    last_ts: int = 0
    run: int = 0
    pending_value: float = math.nan
    pending_ts: int = 0
    pending_z: float = 0.0
    cusum_pos: float = 0.0
    cusum_neg: float = 0.0


def sev(m: float) -> float:
    return 1.0 - 2.0 ** -max(m, 0.0)


def rule(metric_id: int) -> Rule:
    return RULES.get(NAME.get(metric_id, ""), Rule())


def ref_stateless(rows: list[Reading]) -> list[AnomalyRow]:
    out: list[AnomalyRow] = []
    for k, m, t, x in rows:
        r = rule(m)
        lo, hi = r.soft_min, r.soft_max
        span = 1.0 if math.isnan(lo) or math.isnan(hi) else abs(hi - lo)
        if x < lo:
            out.append((k, m, t, OUT_OF_RANGE, sev(1 + 10 * (lo - x) / span), x, lo))
        elif x > hi:
            out.append((k, m, t, OUT_OF_RANGE, sev(1 + 10 * (x - hi) / span), x, hi))
    pm25 = {(k, t): x for k, m, t, x in rows if m == PM25}
    pm10 = {(k, t): x for k, m, t, x in rows if m == PM10}
    for (k, t), p25 in pm25.items():
        p10 = pm10.get((k, t))
        if p10 is not None and p25 > p10:
            ratio = p25 / p10 if p10 > 0 else 2.0
            out.append((k, PM25, t, IMPOSSIBLE, sev(ratio), p25, p10))
    return out


def ref_step(
    s: Series, k: int, m: int, t: int, x: float, p: Params, out: list[AnomalyRow]
) -> float:
    """One reading of one series, in time order; returns its continuous score."""
    score = 0.0
    if not (s.n == 0 or t > s.last_ts):
        return score  # late: changes nothing
    r = rule(m)
    sigma = max(math.sqrt(s.var), r.min_scale)
    z = (x - s.mean) / sigma if s.n > 0 else 0.0
    warm = s.n >= p.warmup
    big = warm and abs(z) >= r.z_spike
    if warm:
        score = max(score, sev(abs(z) / r.z_spike))
    run = s.run + 1 if s.n > 0 and x == s.last_value else 1
    if r.stuck_run > 0 and run >= r.stuck_run:
        stuck_score = sev(run / r.stuck_run)
        out.append((k, m, t, STUCK, stuck_score, x, s.mean))
        score = max(score, stuck_score)
    has_pending = not math.isnan(s.pending_value)
    shift = has_pending and big and ((z > 0) == (s.pending_z > 0))
    if has_pending:
        p_score = sev(abs(s.pending_z) / r.z_spike)
        if not shift:
            out.append((k, m, s.pending_ts, SPIKE, p_score, s.pending_value, s.mean))
        elif not (r.shift_up_ok if s.pending_z > 0 else r.shift_down_ok):
            out.append((k, m, s.pending_ts, LEVEL_SHIFT, p_score, s.pending_value, s.mean))
    # Warm-up: the first reading has weight 1, so it *is* the mean; then 1/2, 1/3, ... until
    # alpha takes over (a cumulative mean while n is small).
    a = max(p.alpha, 1.0 / (s.n + 1))
    av = max(p.alpha_var, 1.0 / (s.n + 1))
    d = x - s.mean
    if shift:
        new_mean, new_var = (s.pending_value + x) / 2, s.var
    elif big:
        new_mean, new_var = s.mean, s.var
    else:
        new_mean, new_var = s.mean + a * d, (1 - av) * (s.var + av * d * d)
    pos, neg = ref_cusum(s, r, p, z, judged=not big and warm, shift=shift)
    top = max(pos, neg)
    if top >= p.cusum_h and r.drift:  # the sums run on where drift is not reported
        drift_score = sev(top / p.cusum_h)
        out.append((k, m, t, DRIFT, drift_score, x, s.mean))
        score = max(score, drift_score)
    becomes_pending = big and not shift
    s.n += 1
    s.mean, s.var = new_mean, new_var
    s.last_value, s.last_ts, s.run = x, t, run
    s.pending_value = x if becomes_pending else math.nan
    s.pending_ts = t if becomes_pending else 0
    s.pending_z = z if becomes_pending else 0.0
    s.cusum_pos, s.cusum_neg = pos, neg
    return score


def ref_cusum(
    s: Series, r: Rule, p: Params, z: float, judged: bool, shift: bool
) -> tuple[float, float]:
    """The CUSUM sums after a reading: outliers clipped, reset by a shift, kept when unjudged."""
    if judged:
        zc = min(max(z, -r.z_spike), r.z_spike)
        return max(0.0, s.cusum_pos + zc - p.cusum_k), max(0.0, s.cusum_neg - zc - p.cusum_k)
    if shift:
        return 0.0, 0.0
    return s.cusum_pos, s.cusum_neg


def ref_detect(
    state: dict[tuple[int, int], Series], rows: list[Reading], p: Params = PARAMS
) -> tuple[list[AnomalyRow], list[float]]:
    """Updates ``state`` in place; readings of each series in time order (ties: input order)."""
    out = ref_stateless(rows)
    scores = [0.0] * len(rows)
    for i in sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1], rows[i][2])):
        k, m, t, x = rows[i]
        s = state.setdefault((k, m), Series())
        scores[i] = ref_step(s, k, m, t, x, p, out)
    out.sort(key=lambda a: (a[0], a[1], a[2], a[3]))
    return out, scores


# --- Helpers ---------------------------------------------------------------------------------


def arrays(rows: list[Reading]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.array([r[0] for r in rows], dtype=np.int32),
        np.array([r[1] for r in rows], dtype=np.int16),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=np.float64),
    )


def run(state: State, rows: list[Reading], p: Params = PARAMS) -> tuple[State, dict, np.ndarray]:
    new, anomalies, score = detect(state, RULES_ARRAYS, p, *arrays(rows))
    return new, anomalies.arrays(), score


def anomaly_rows(a: dict[str, np.ndarray]) -> list[AnomalyRow]:
    return list(
        zip(
            a["sensor_key"].tolist(), a["metric_id"].tolist(), a["ts_ms"].tolist(),
            a["kind"].tolist(), a["score"].tolist(), a["observed"].tolist(),
            a["expected"].tolist(), strict=True,
        )
    )  # fmt: skip


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_same_anomalies(got: dict[str, np.ndarray], want: list[AnomalyRow]) -> None:
    rows = anomaly_rows(got)
    assert [r[:4] for r in rows] == [w[:4] for w in want], "kind, time or series differ"
    for g, w in zip(rows, want, strict=True):
        assert all(close(a, b) for a, b in zip(g[4:], w[4:], strict=True)), (g, w)


def state_dict(state: State) -> dict[tuple[int, int], Series]:
    out = {}
    for i in range(len(state)):
        out[(int(state.sensor_key[i]), int(state.metric_id[i]))] = Series(
            n=int(state.n[i]), mean=float(state.mean[i]), var=float(state.var[i]),
            last_value=float(state.last_value[i]), last_ts=int(state.last_ts_ms[i]),
            run=int(state.run[i]), pending_value=float(state.pending_value[i]),
            pending_ts=int(state.pending_ts_ms[i]), pending_z=float(state.pending_z[i]),
            cusum_pos=float(state.cusum_pos[i]), cusum_neg=float(state.cusum_neg[i]),
        )  # fmt: skip
    return out


def assert_same_state(got: State, want: dict[tuple[int, int], Series]) -> None:
    keys = list(zip(got.sensor_key.tolist(), got.metric_id.tolist(), strict=True))
    assert keys == sorted(want), "state rows: one per series, sorted by (sensor, metric)"
    assert got.sensor_key.dtype == np.int32
    assert got.metric_id.dtype == np.int16
    for key, g in state_dict(got).items():
        w = want[key]
        for name in ("n", "last_ts", "run", "pending_ts"):
            assert getattr(g, name) == getattr(w, name), (key, name, g, w)
        for name in ("mean", "var", "last_value", "pending_value", "pending_z", "cusum_pos",
                     "cusum_neg"):  # fmt: skip
            assert close(getattr(g, name), getattr(w, name)), (key, name, g, w)


def to_state(series: dict[tuple[int, int], Series]) -> State:
    """The reference state as a State (sorted by key)."""
    keys = sorted(series)
    cols: dict[str, list] = {f: [] for f in State.__dataclass_fields__}
    for k, m in keys:
        s = series[(k, m)]
        values = (k, m, s.n, s.mean, s.var, s.last_value, s.last_ts, s.run, s.pending_value,
                  s.pending_ts, s.pending_z, s.cusum_pos, s.cusum_neg)  # fmt: skip
        for f, v in zip(State.__dataclass_fields__, values, strict=True):
            cols[f].append(v)
    empty = State.empty()
    return State(**{f: np.array(v, dtype=getattr(empty, f).dtype) for f, v in cols.items()})


def assert_scores_in_range(a: dict[str, np.ndarray], score: np.ndarray) -> None:
    assert ((a["score"] >= 0.5) & (a["score"] <= 1.0)).all(), a["score"]
    assert ((score >= 0.0) & (score <= 1.0)).all(), score


# --- Random streams --------------------------------------------------------------------------


def make_stream(
    seed: int, n_sensors: int, metrics: list[int], length: int, dup_times: bool = False
) -> list[Reading]:
    """Readings of every (sensor, metric), each sensor reporting all its metrics at the same
    times (so PM2.5 and PM10 pair up), with noise, spikes, steps, ramps and stuck runs."""
    rng = np.random.default_rng(seed)
    rows: list[Reading] = []
    for k in range(1, n_sensors + 1):
        n = int(rng.integers(0, length + 1))
        times = T0 + np.cumsum(rng.integers(1, 6, n)) * MIN + rng.integers(0, 1000, n)
        if dup_times and n > 1:
            times = np.sort(rng.choice(times, n))  # some times repeat
        for m in metrics:
            r = rule(m)
            lo = 0.0 if math.isnan(r.soft_min) else r.soft_min
            hi = 100.0 if math.isnan(r.soft_max) else r.soft_max
            level = rng.uniform(lo, lo + (hi - lo) * 0.3)
            sd = r.min_scale * rng.uniform(0.1, 2.0)
            x = level + rng.normal(0, sd, n)
            for _ in range(int(rng.integers(0, 3)) if n else 0):  # spikes
                x[rng.integers(0, n)] += rng.choice([-1, 1]) * sd * rng.uniform(3, 40)
            if rng.random() < 0.4 and n:  # a step
                x[int(rng.integers(0, n)) :] += rng.choice([-1, 1]) * sd * rng.uniform(5, 30)
            if rng.random() < 0.3:  # a slow ramp
                x += np.linspace(0, rng.uniform(-20, 20) * sd, n)
            if rng.random() < 0.4 and n:  # a stuck run
                at = int(rng.integers(0, n))
                x[at : at + int(rng.integers(3, 14))] = x[at]
            if rng.random() < 0.3:  # quantised readings repeat values
                x = np.round(x, 0)
            if rng.random() < 0.2 and n:  # a value outside the soft range
                x[int(rng.integers(0, n))] = hi + rng.uniform(0, hi - lo + 1)
            rows += [(k, m, int(t), float(v)) for t, v in zip(times, x, strict=True)]
    return rows


def distinct(rows: list[Reading]) -> list[Reading]:
    seen: set[tuple[int, int, int]] = set()
    out = []
    for r in rows:
        if r[:3] not in seen:
            seen.add(r[:3])
            out.append(r)
    return out


METRIC_SETS = st.sampled_from(
    [[TEMP], [PM25, PM10], [FILL, DIST, BATT, TEMP, TILT], [PM25, PM10, RH, 8, 11], [COUNT_IN, 14],
     list(range(1, 15))]
)  # fmt: skip


@st.composite
def streams(draw: st.DrawFn, max_length: int = 50, max_sensors: int = 6) -> list[Reading]:
    seed = draw(st.integers(0, 2**32 - 1))
    n_sensors = draw(st.integers(1, max_sensors))
    metrics = draw(METRIC_SETS)
    length = draw(st.integers(0, max_length))
    return make_stream(seed, n_sensors, metrics, length)


# --- The reference and the vectorized code agree --------------------------------------------


@settings(max_examples=120)
@given(streams(), st.randoms(use_true_random=False))
def test_vectorized_detect_equals_the_scalar_reference(rows, rnd):
    rows = distinct(rows)
    rnd.shuffle(rows)  # any input order
    state, a, score = run(State.empty(), rows)
    ref_state: dict[tuple[int, int], Series] = {}
    want, want_score = ref_detect(ref_state, rows)
    assert_same_anomalies(a, want)
    assert_same_state(state, ref_state)
    assert all(close(g, w) for g, w in zip(score.tolist(), want_score, strict=True))
    assert_scores_in_range(a, score)


@settings(max_examples=80)
@given(streams(), st.integers(1, 5), st.randoms(use_true_random=False))
def test_vectorized_detect_equals_the_reference_over_batches_with_late_readings(rows, k, rnd):
    # Batches cut from a shuffled stream: later batches hold readings older than the state.
    rows = distinct(rows)
    rnd.shuffle(rows)
    cuts = sorted(rnd.sample(range(len(rows) + 1), min(k, len(rows) + 1)))
    state = State.empty()
    ref_state: dict[tuple[int, int], Series] = {}
    for lo, hi in zip([0, *cuts], [*cuts, len(rows)], strict=True):
        state, a, score = run(state, rows[lo:hi])
        want, want_score = ref_detect(ref_state, rows[lo:hi])
        assert_same_anomalies(a, want)
        assert_same_state(state, ref_state)
        assert all(close(g, w) for g, w in zip(score.tolist(), want_score, strict=True))


@settings(max_examples=60)
@given(streams(), st.integers(1, 8), st.randoms(use_true_random=False))
def test_consecutive_batches_of_a_time_ordered_stream_equal_one_batch(rows, k, rnd):
    # Cut between times only: PM2.5 > PM10 is judged within a batch, so a pair of readings of
    # one time stays together (as in one message).
    rows = sorted(distinct(rows), key=lambda r: (r[2], r[0], r[1]))
    whole_state, whole, whole_score = run(State.empty(), rows)
    boundaries = [
        i for i in range(len(rows) + 1) if i in (0, len(rows)) or rows[i][2] != rows[i - 1][2]
    ]
    cuts = sorted(rnd.sample(boundaries, min(k, len(boundaries))))
    state, found, scores = State.empty(), [], []
    for lo, hi in zip([0, *cuts], [*cuts, len(rows)], strict=True):
        state, a, score = run(state, rows[lo:hi])
        found += anomaly_rows(a)
        scores += score.tolist()
    found.sort(key=lambda r: r[:4])
    assert found == anomaly_rows(whole)
    assert scores == whole_score.tolist()
    for f in State.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(state, f), getattr(whole_state, f), err_msg=f)


@settings(max_examples=60)
@given(streams(max_length=30), streams(max_length=30), st.integers(-100, 100))
def test_a_given_state_is_used_and_series_not_in_the_batch_are_kept(first, second, shift):
    # The state comes from the reference (as if loaded from the database); the second batch
    # overlaps the first in time, partly late, partly new.
    first = distinct(first)
    second = distinct([(k, m, t + shift * MIN, x) for k, m, t, x in second])
    ref_state: dict[tuple[int, int], Series] = {}
    ref_detect(ref_state, first)
    loaded = to_state(ref_state)
    state, a, _ = run(loaded, second)
    want, _ = ref_detect(ref_state, second)
    assert_same_anomalies(a, want)
    assert_same_state(state, ref_state)


@settings(max_examples=30)
@given(st.integers(0, 2**32 - 1), st.integers(10, 40), st.randoms(use_true_random=False))
def test_many_series_of_equal_length_equal_the_reference(seed, length, rnd):
    # 8 sensors x 14 metrics, all series the same length: every rank has many series left.
    rows = distinct(make_stream(seed, 8, list(range(1, 15)), length))
    rnd.shuffle(rows)
    state, a, score = run(State.empty(), rows)
    ref_state: dict[tuple[int, int], Series] = {}
    want, want_score = ref_detect(ref_state, rows)
    assert_same_anomalies(a, want)
    assert_same_state(state, ref_state)
    assert all(close(g, w) for g, w in zip(score.tolist(), want_score, strict=True))


@settings(max_examples=40)
@given(streams(max_sensors=8))
def test_each_series_alone_equals_all_series_together(rows):
    # One series per batch (the scalar loop) against all together (the whole-array steps).
    rows = distinct(rows)
    state, a, _ = run(State.empty(), rows)
    found, alone = [], State.empty()
    for key in sorted({r[:2] for r in rows}):
        alone, b, _ = run(alone, [r for r in rows if r[:2] == key])
        found += anomaly_rows(b)
    assert sorted(found, key=lambda r: r[:4]) == [
        r for r in anomaly_rows(a) if KIND_NAMES[r[3]] != "impossible"
    ]
    for f in State.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(alone, f), getattr(state, f), err_msg=f)


def test_empty_batch_returns_the_state_unchanged_and_nothing_else():
    state, a, score = run(State.empty(), [])
    assert len(state) == 0
    assert a["kind"].shape == (0,)
    assert score.shape == (0,)
    loaded, _, _ = run(State.empty(), [(3, TEMP, T0, 28.0), (1, FILL, T0, 40.0)])
    again, a, score = run(loaded, [])
    assert a["kind"].shape == (0,)
    assert score.shape == (0,)
    for f in State.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(again, f), getattr(loaded, f))
    assert list(zip(again.sensor_key.tolist(), again.metric_id.tolist(), strict=True)) == [
        (1, FILL), (3, TEMP),
    ]  # fmt: skip


# --- Duplicate keys (outside the contract): documented behaviour -----------------------------


def test_duplicate_time_in_a_series_first_in_input_order_wins_the_other_is_late():
    t = T0
    state, _, score = run(State.empty(), [(1, TEMP, t, 28.0), (1, TEMP, t, 30.0)])
    assert state.n.tolist() == [1]
    assert state.last_value.tolist() == [28.0]
    assert score.tolist() == [0.0, 0.0]
    state, _, _ = run(State.empty(), [(1, TEMP, t, 30.0), (1, TEMP, t, 28.0)])
    assert state.n.tolist() == [1]
    assert state.last_value.tolist() == [30.0]
    # A reading at the state's last time, in a later batch, is late too.
    state2, _, _ = run(state, [(1, TEMP, t, 29.0)])
    assert state2.n.tolist() == [1]
    assert state2.last_value.tolist() == [30.0]


def test_duplicate_time_the_stateless_rules_still_see_both():
    rows = [(1, TEMP, T0, 90.0), (1, TEMP, T0, 95.0)]
    _, a, _ = run(State.empty(), rows)
    assert a["kind"].tolist() == [OUT_OF_RANGE, OUT_OF_RANGE]
    assert sorted(a["observed"].tolist()) == [90.0, 95.0]


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3))
def test_duplicate_times_state_equals_the_stream_without_its_repeats(seed, n_sensors):
    rows = make_stream(seed, n_sensors, [TEMP, FILL], 40, dup_times=True)
    state, _, _ = run(State.empty(), rows)
    clean, _, _ = run(State.empty(), distinct(rows))
    for f in State.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(state, f), getattr(clean, f), err_msg=f)


# --- Constructed series with known answers ---------------------------------------------------


def series(values, metric: int = TEMP, sensor: int = 1, step_ms: int = MIN) -> list[Reading]:
    return [(sensor, metric, T0 + i * step_ms, float(v)) for i, v in enumerate(values)]


def noisy(n: int, level: float, sd: float, seed: int) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0, sd, n)


def kinds(a: dict[str, np.ndarray]) -> list[str]:
    return [KIND_NAMES[k] for k in a["kind"].tolist()]


@pytest.mark.parametrize("seed", range(5))
def test_a_clean_noisy_series_has_no_anomalies(seed):
    rows = series(noisy(300, 28.0, 0.2, seed))
    state, a, score = run(State.empty(), rows)
    assert kinds(a) == []
    assert (score < 0.5).all()
    assert state.n.tolist() == [300]


def test_first_reading_sets_the_mean():
    # Warm-up weight max(alpha, 1/(n+1)) is 1 for the first reading: the mean is that reading.
    state, _, _ = run(State.empty(), series([28.0]))
    assert state.mean.tolist() == [28.0]
    assert state.var.tolist() == [0.0]
    state, _, _ = run(State.empty(), series([28.0, 30.0]))
    assert state.mean.tolist() == [29.0]


@pytest.mark.parametrize("seed", range(3))
def test_a_single_spike_is_one_spike_at_its_time(seed):
    x = noisy(60, 28.0, 0.2, seed)
    x[40] = 36.0  # 8 degC, 16 deviations at the 0.5 degC floor
    rows = series(x)
    _, a, score = run(State.empty(), rows)
    assert kinds(a) == ["spike"]
    assert a["ts_ms"].tolist() == [rows[40][2]]
    assert a["observed"].tolist() == [36.0]
    assert abs(a["expected"][0] - 28.0) < 0.5
    assert 0.5 <= a["score"][0] <= 1.0
    assert score[40] >= 0.5
    assert (np.delete(score, 40) < 0.5).all()


def test_a_spike_is_reported_only_once_the_next_reading_arrives():
    x = noisy(41, 28.0, 0.2, 7)
    x[40] = 36.0
    rows = series(x)
    state, a, _ = run(State.empty(), rows)
    assert kinds(a) == []
    assert state.pending_value.tolist() == [36.0]
    assert state.pending_ts_ms.tolist() == [rows[40][2]]
    state, a, _ = run(state, [(1, TEMP, rows[40][2] + MIN, 28.1)])
    assert kinds(a) == ["spike"]
    assert a["ts_ms"].tolist() == [rows[40][2]]
    assert np.isnan(state.pending_value).all()


@pytest.mark.parametrize("seed", range(3))
def test_a_step_change_is_one_level_shift(seed):
    x = np.concatenate([noisy(40, 28.0, 0.2, seed), noisy(40, 34.0, 0.2, seed + 100)])
    rows = series(x)
    state, a, _ = run(State.empty(), rows)
    assert kinds(a) == ["level_shift"]
    assert a["ts_ms"].tolist() == [rows[40][2]]
    assert a["observed"].tolist() == [x[40]]
    assert abs(state.mean[0] - 34.0) < 0.5


@pytest.mark.parametrize("seed", range(3))
def test_a_bin_being_emptied_is_no_anomaly_but_a_jump_up_is(seed):
    down = np.concatenate([noisy(40, 80.0, 0.3, seed), noisy(40, 5.0, 0.3, seed + 1)])
    _, a, _ = run(State.empty(), series(down, metric=FILL))
    assert kinds(a) == []
    up = np.concatenate([noisy(40, 5.0, 0.3, seed), noisy(40, 80.0, 0.3, seed + 1)])
    rows = series(up, metric=FILL)
    _, a, _ = run(State.empty(), rows)
    assert kinds(a) == ["level_shift"]
    assert a["ts_ms"].tolist() == [rows[40][2]]


def test_eight_identical_values_are_stuck_from_the_eighth():
    x = list(noisy(20, 28.0, 0.2, 3)) + [27.5] * 10
    rows = series(x)
    _, a, score = run(State.empty(), rows)
    assert kinds(a) == ["stuck"] * 3
    assert a["ts_ms"].tolist() == [rows[i][2] for i in (27, 28, 29)]
    assert a["score"].tolist()[0] == pytest.approx(0.5)
    assert (score[27:] >= 0.5).all()
    assert (score[:27] < 0.5).all()
    # Seven in a row are not stuck; a metric whose values repeat by nature is never stuck.
    _, a, _ = run(State.empty(), series(list(noisy(20, 28.0, 0.2, 3)) + [27.5] * 7))
    assert kinds(a) == []
    _, a, _ = run(State.empty(), series([12.6] * 30, metric=BATT))
    assert kinds(a) == []


def test_a_value_above_the_soft_range_is_out_of_range():
    _, a, _ = run(State.empty(), [(1, TEMP, T0, 90.0), (1, TEMP, T0 + MIN, 85.0)])
    assert kinds(a) == ["out_of_range"]
    assert a["ts_ms"].tolist() == [T0]
    assert a["observed"].tolist() == [90.0]
    assert a["expected"].tolist() == [85.0]
    assert a["score"][0] == pytest.approx(1 - 2 ** -(1 + 10 * 5 / 75))
    _, a, _ = run(State.empty(), [(1, RH, T0, 3.0)])
    assert kinds(a) == ["out_of_range"]
    assert a["expected"].tolist() == [5.0]


def test_pm25_above_pm10_at_the_same_sensor_and_time_is_impossible():
    rows = [
        (1, PM25, T0, 60.0), (1, PM10, T0, 40.0),  # impossible
        (1, PM25, T0 + MIN, 30.0), (1, PM10, T0 + MIN, 40.0),  # fine
        (2, PM25, T0, 60.0), (3, PM10, T0, 40.0),  # different sensors
        (4, PM25, T0, 60.0), (4, PM10, T0 + 1, 40.0),  # different times
    ]  # fmt: skip
    _, a, _ = run(State.empty(), rows)
    assert kinds(a) == ["impossible"]
    assert (a["sensor_key"].tolist(), a["metric_id"].tolist(), a["ts_ms"].tolist()) == (
        [1], [PM25], [T0],
    )  # fmt: skip
    assert a["observed"].tolist() == [60.0]
    assert a["expected"].tolist() == [40.0]
    assert a["score"][0] == pytest.approx(1 - 2**-1.5)


def test_a_steady_ramp_is_drift_and_nothing_else():
    # A steady level (alternating, so not stuck), then a ramp of 0.2 per reading: each step is
    # far below a spike, but the residuals stay on one side and the CUSUM crosses h. Drift is
    # judged on metrics without a daily cycle (the generic rule; the catalog's metrics all
    # trend or cycle by nature, see processing/rules.py).
    x = np.concatenate([28.0 + 0.01 * (np.arange(30) % 2), 28.0 + 0.2 * np.arange(1, 101)])
    rules = metric_rules({**METRIC_IDS, "generic": 15})
    _, anomalies, score = detect(State.empty(), rules, PARAMS, *arrays(series(x, metric=15)))
    a = anomalies.arrays()
    assert set(kinds(a)) == {"drift"}
    first = int(a["ts_ms"].min() - T0) // MIN
    assert 30 < first < 60
    assert (score[first:] >= 0.5).all()
    assert (score[:first] < 0.5).all()


def test_severity_score_is_half_at_the_threshold_and_below_one():
    m = np.array([0.0, 0.5, 1.0, 2.0, 50.0, -3.0])
    s = severity_score(m)
    assert s.tolist()[:4] == [0.0, 1 - 2**-0.5, 0.5, 0.75]
    assert 0.99 < s[4] <= 1.0
    assert s[5] == 0.0


@given(streams(max_length=20))
def test_stateless_equals_the_reference(rows):
    rows = distinct(rows)
    out = Anomalies()
    stateless(RULES_ARRAYS, *arrays(rows), out)
    want = sorted(ref_stateless(rows), key=lambda a: a[:4])
    assert_same_anomalies(out.arrays(), want)


def test_params_change_the_warmup():
    rows = series([*list(noisy(5, 28.0, 0.2, 1)), 40.0, 28.0])
    _, a, _ = run(State.empty(), rows, replace(PARAMS, warmup=3))
    assert kinds(a) == ["spike"]
    _, a, _ = run(State.empty(), rows)
    assert kinds(a) == []
