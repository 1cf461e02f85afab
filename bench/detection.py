"""Detection quality: the detectors on simulator output with ground-truth fault labels.

The simulator (``simulators.scenario.generate_columns``) produces a week of the Jepara fleet with
labelled faults. Readings reach the detectors in batches of one minute of publish time, as the
ingest worker would deliver them (late and duplicated readings included; a duplicate is dropped
by the primary key before detection, so it is dropped here too). Offline is judged by
:func:`processing.health.sensor_online` every minute, as ``pantau process`` does.

Per fault kind:
- recall: labelled faults with at least one anomaly of that kind on the same sensor (and metric,
  when the label names one) inside the labelled window;
- precision: anomalies of that kind inside a labelled window (of any kind) of the same sensor,
  over all anomalies of that kind: an anomaly on a real fault is a true positive.

    python -m bench.detection [--days N] [--seed S] [--fault-rate R]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from pantau.registry.fleet import load_fleet
from processing import health
from processing.detect import KIND_NAMES, Params, State, detect
from processing.keys import first_occurrence
from processing.rules import metric_rules
from simulators.labels import Label
from simulators.scenario import generate_columns

SCORED = ("spike", "stuck", "drift", "offline")
BATCH_MS = 60_000
TARGET_RECALL, TARGET_PRECISION = 0.95, 0.9


@dataclass
class Score:
    kind: str
    labels: int
    found: int
    anomalies: int
    true_anomalies: int

    @property
    def recall(self) -> float:
        return self.found / self.labels if self.labels else float("nan")

    @property
    def precision(self) -> float:
        return self.true_anomalies / self.anomalies if self.anomalies else float("nan")


def run_detectors(columns: object) -> list[tuple[int, str, int, str]]:
    """Anomalies (sensor_idx, metric name, ts_ms, kind) of the run, batch by batch."""
    cols = columns  # simulators.fleet.Columns
    names: tuple[str, ...] = cols.metric_names  # type: ignore[attr-defined]
    rules = metric_rules({name: i for i, name in enumerate(names)})
    order = np.argsort(cols.publish_ms, kind="stable")  # type: ignore[attr-defined]
    k = cols.sensor_idx[order].astype(np.int32)  # type: ignore[attr-defined]
    m = cols.metric_id[order].astype(np.int16)  # type: ignore[attr-defined]
    t = cols.ts_ms[order]  # type: ignore[attr-defined]
    v = cols.value[order]  # type: ignore[attr-defined]
    p = cols.publish_ms[order]  # type: ignore[attr-defined]
    new = first_occurrence(k, m, t)  # the primary key drops redelivered and duplicated readings
    k, m, t, v, p = k[new], m[new], t[new], v[new], p[new]
    cuts = np.flatnonzero(np.diff(p // BATCH_MS)) + 1
    state, params = State.empty(), Params()
    found: list[tuple[int, str, int, str]] = []
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), k.shape[0]], strict=True):
        state, anomalies, _ = detect(state, rules, params, k[lo:hi], m[lo:hi], t[lo:hi], v[lo:hi])
        a = anomalies.arrays()
        found += [
            (int(s), names[int(mm)], int(ts), KIND_NAMES[int(kk)])
            for s, mm, ts, kk in zip(
                a["sensor_key"], a["metric_id"], a["ts_ms"], a["kind"], strict=True
            )
        ]
    return found


def offline_detections(
    columns: object, interval_s: np.ndarray, start_ms: int, end_ms: int
) -> list[tuple[int, str, int, str]]:
    """Every minute: sensors silent for 3 intervals (by publish time), as ``pantau process``."""
    cols = columns
    sensor = cols.sensor_idx  # type: ignore[attr-defined]
    publish = cols.publish_ms  # type: ignore[attr-defined]
    order = np.lexsort((publish, sensor))
    sensor, publish = sensor[order], publish[order]
    found = []
    n = interval_s.shape[0]
    none = np.full(n, -1, dtype=np.int64)
    for now in range(start_ms + BATCH_MS, end_ms + 1, BATCH_MS):
        upto = publish <= now
        last = np.full(n, -1, dtype=np.int64)
        np.maximum.at(last, sensor[upto], publish[upto])
        online, _ = health.sensor_online(now, last, interval_s, none, none)
        found += [(int(s), "", now, "offline") for s in np.flatnonzero(~online & (last >= 0))]
    return found


def score(
    labels: list[Label], anomalies: list[tuple[int, str, int, str]], sensor_ids: tuple[str, ...]
) -> list[Score]:
    windows: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        windows[label.sensor_id].append(label)

    def inside(a: tuple[int, str, int, str], label: Label, grace_ms: int = 0) -> bool:
        return (not label.metric or not a[1] or label.metric == a[1]) and (
            label.start_ms <= a[2] <= label.end_ms + grace_ms
        )

    by_sensor: dict[str, list[tuple[int, str, int, str]]] = defaultdict(list)
    for a in anomalies:
        by_sensor[sensor_ids[a[0]]].append(a)
    scores = []
    for kind in SCORED:
        # Offline is found after 3 silent intervals: allow that much past the window's end.
        grace = 3 * 3600_000 if kind == "offline" else 0
        mine = [lab for lab in labels if lab.kind == kind]
        found = sum(
            any(a[3] == kind and inside(a, lab, grace) for a in by_sensor[lab.sensor_id])
            for lab in mine
        )
        flagged = [a for a in anomalies if a[3] == kind]
        true = sum(any(inside(a, lab, grace) for lab in windows[sensor_ids[a[0]]]) for a in flagged)
        scores.append(Score(kind, len(mine), found, len(flagged), true))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--fault-rate", type=float, default=0.5, help="faults per sensor per day")
    args = parser.parse_args()
    fleet = load_fleet()
    start_s = 1_795_798_800  # 2026-11-28 00:00 WIB
    columns, labels = generate_columns(
        fleet, seed=args.seed, start_s=start_s, duration_s=args.days * 86_400,
        fault_rate=args.fault_rate,
    )  # fmt: skip
    anomalies = run_detectors(columns)
    intervals = np.array([s.interval_s for s in fleet.sensors], dtype=np.int64)
    anomalies += offline_detections(
        columns, intervals, start_s * 1000, (start_s + args.days * 86_400) * 1000
    )
    results = score(labels, anomalies, columns.sensor_ids)
    print(
        f"{len(fleet.sensors)} sensors, {args.days} days, {columns.value.shape[0]:,} readings, "
        f"{len(labels)} labelled faults (seed {args.seed}, {args.fault_rate} faults/sensor/day)"
    )
    print(
        f"{'kind':<10} {'labels':>7} {'found':>6} {'recall':>7} {'anomalies':>10} {'precision':>9}"
    )
    for s in results:
        ok = s.recall >= TARGET_RECALL and s.precision >= TARGET_PRECISION
        print(
            f"{s.kind:<10} {s.labels:>7} {s.found:>6} {s.recall:>7.3f} {s.anomalies:>10} "
            f"{s.precision:>9.3f}  {'meets' if ok else 'below'} the target "
            f"(recall >= {TARGET_RECALL}, precision >= {TARGET_PRECISION})"
        )
    print("recall by metric:")
    for kind in ("spike", "stuck", "drift"):
        per = recall_by_metric(labels, anomalies, columns.sensor_ids, kind)
        print(f"  {kind:<6} " + ", ".join(f"{m} {f}/{n}" for m, (f, n) in sorted(per.items())))
    print(json.dumps({s.kind: [s.recall, s.precision] for s in results}))


def recall_by_metric(
    labels: list[Label],
    anomalies: list[tuple[int, str, int, str]],
    sensor_ids: tuple[str, ...],
    kind: str,
) -> dict[str, tuple[int, int]]:
    """(found, labelled) per metric for one fault kind."""
    hits = {(sensor_ids[a[0]], a[1], a[2]) for a in anomalies if a[3] == kind}
    by_series: dict[tuple[str, str], list[int]] = defaultdict(list)
    for sid, metric, ts in hits:
        by_series[(sid, metric)].append(ts)
    out: dict[str, tuple[int, int]] = {}
    for lab in labels:
        if lab.kind != kind:
            continue
        found = any(
            lab.start_ms <= ts <= lab.end_ms for ts in by_series[(lab.sensor_id, lab.metric)]
        )
        f, n = out.get(lab.metric, (0, 0))
        out[lab.metric] = (f + found, n + 1)
    return out


if __name__ == "__main__":
    main()
