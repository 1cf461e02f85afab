"""Processing benchmark: the pure pipeline the ingest writer runs on each batch, per core.

For batches of 5k and 100k readings over 10k sensors: newest reading per series (``latest``),
rollups at every width, and the detectors with their state carried from batch to batch. The
plain-Python references of the test suite (``tests/processing/test_rollup.py``,
``tests/processing/test_detect.py``) run the same stream for the ratio. NumPy runs single-threaded
here, so the figures are per core. Detection quality on labelled simulator faults is printed
when the simulator provides labels (``bench/detection.py``).

    python -m bench.processing [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.procs import machine
from processing.detect import Params, State, detect
from processing.keys import newest_per_series
from processing.rollup import WIDTHS_MS, all_widths
from processing.rules import metric_rules

RESULTS = Path(__file__).parent / "results"
METRIC_IDS = {
    "fill_pct": 1, "distance_cm": 2, "battery_v": 3, "temp_c": 4, "tilt": 5, "pm25_ugm3": 6,
    "pm10_ugm3": 7, "no2_ugm3": 8, "so2_ugm3": 9, "o3_ugm3": 10, "co_ugm3": 11, "rh_pct": 12,
    "count_in": 13, "count_out": 14,
}  # fmt: skip
# Each sensor reports one series per metric of its kind; kinds in the Jepara fleet's proportions.
KIND_METRICS = ((1, 2, 3, 4, 5), (6, 7, 8, 9, 10, 11, 4, 12), (13, 14))
TARGET_PER_CORE = 5_000_000
TARGET_RATIO = 10.0


@dataclass
class Figure:
    batch_readings: int
    sensors: int
    readings: int
    seconds: float
    readings_per_s: float
    anomalies: int


def stream(sensors: int, readings: int, batch: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    """Batches of readings: every sensor reports all its metrics each minute, in time order,
    with noise and about one spike per 2,000 readings."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, size=sensors, p=[0.9, 0.02, 0.08])
    keys, metrics = [], []
    for k in range(3):
        ids = np.flatnonzero(kind == k)
        for m in KIND_METRICS[k]:
            keys.append(ids)
            metrics.append(np.full(ids.shape[0], m))
    series_key = np.concatenate(keys).astype(np.int32)
    series_metric = np.concatenate(metrics).astype(np.int16)
    # Plausible levels per metric (fill %, cm, V, degC, deg, ug/m3 ..., %, persons/min).
    typical = np.array([0, 50, 60, 3.9, 30, 2, 30, 50, 40, 20, 60, 900, 75, 8, 8], dtype=float)
    level = typical[series_metric] * rng.uniform(0.8, 1.2, series_key.shape[0])
    per_minute = series_key.shape[0]
    minutes = -(-readings // per_minute)
    t0 = 1_764_000_000_000
    idx = np.tile(np.arange(per_minute), minutes)[:readings]
    minute = np.repeat(np.arange(minutes), per_minute)[:readings]
    scale = 0.02 * level[idx] + 0.05
    value = level[idx] * (1 + 0.05 * np.sin(minute / 1440 * 2 * np.pi))
    value += rng.normal(0, 1, readings) * scale
    spikes = rng.random(readings) < 1 / 2000
    value[spikes] += 40 * scale[spikes]
    ts = t0 + minute.astype(np.int64) * 60_000 + idx % 60_000
    out: list[tuple[np.ndarray, ...]] = []
    for lo in range(0, readings, batch):
        hi = min(lo + batch, readings)
        out.append((series_key[idx[lo:hi]], series_metric[idx[lo:hi]], ts[lo:hi], value[lo:hi]))
    return out


def run_vectorized(batches: list[tuple[np.ndarray, ...]]) -> tuple[float, int]:
    rules, params = metric_rules(METRIC_IDS), Params()
    state = State.empty()
    anomalies = 0
    started = time.perf_counter()
    for k, m, t, v in batches:
        newest_per_series(k, m, t)
        all_widths(k, m, t, v)
        state, found, _ = detect(state, rules, params, k, m, t, v)
        anomalies += len(found.arrays()["kind"])
    return time.perf_counter() - started, anomalies


def run_reference(batches: list[tuple[np.ndarray, ...]]) -> float:
    """The plain-Python references of the test suite over the same batches."""
    rollup_ref = importlib.import_module("tests.processing.test_rollup").reference
    detect_ref = importlib.import_module("tests.processing.test_detect").ref_detect
    rows_of = [list(zip(*(a.tolist() for a in b), strict=True)) for b in batches]
    state: dict[Any, Any] = {}
    started = time.perf_counter()
    for rows in rows_of:
        latest: dict[tuple[int, int], tuple[int, float]] = {}
        for k, m, t, v in rows:
            if (k, m) not in latest or t > latest[(k, m)][0]:
                latest[(k, m)] = (t, v)
        for width in WIDTHS_MS:
            rollup_ref(rows, width)
        detect_ref(state, rows)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    args = parser.parse_args()
    sensors = 10_000
    total = 400_000 if args.quick else 2_000_000
    figures = []
    print(f"machine: {json.dumps(machine())}")
    for batch in (5_000, 100_000):
        batches = stream(sensors, total, batch, seed=batch)
        run_vectorized(batches[:2])  # warm up
        seconds, anomalies = run_vectorized(batches)
        rate = total / seconds
        figures.append(Figure(batch, sensors, total, seconds, rate, anomalies))
        print(
            f"batches of {batch:>7,} readings over {sensors:,} sensors: {rate:12,.0f} readings/s "
            f"({rate / TARGET_PER_CORE:.2f}x the 5M/s per-core target), {anomalies} anomalies"
        )
    ref_readings = 20_000 if args.quick else 100_000
    ref_batches = stream(sensors, ref_readings, 5_000, seed=5_000)
    ref_seconds = run_reference(ref_batches)
    ref_rate = ref_readings / ref_seconds
    vec_seconds, _ = run_vectorized(ref_batches)
    ratio = ref_seconds / vec_seconds
    print(
        f"plain-Python reference, batches of 5,000: {ref_rate:,.0f} readings/s; vectorized on "
        f"the same {ref_readings:,} readings: {ref_readings / vec_seconds:,.0f} readings/s, "
        f"{ratio:.0f}x the reference (target {TARGET_RATIO:.0f}x)"
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"processing-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "machine": machine(),
                "figures": [asdict(f) for f in figures],
                "reference_readings_per_s": ref_rate,
                "ratio_to_reference": ratio,
            },
            indent=2,
        )
    )
    print(f"results: {out}")


if __name__ == "__main__":
    main()
