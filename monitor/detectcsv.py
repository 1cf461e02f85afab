"""`pantau detect FILE.csv`: the streaming detectors over one series from a CSV file.

Input: a header line naming ``timestamp`` and ``value`` columns (others are ignored), then one
row per reading. Timestamps are ISO 8601 with an offset, or Unix seconds or milliseconds.
Output: ``timestamp,value,anomaly_score,is_anomaly,kind`` per input row, in input order.

The detectors are the ones the ingest worker runs (:mod:`processing.detect`), fed the whole
series as one batch, so they see it exactly as a sensor reporting in time order.

``anomaly_score`` is in [0, 1]. For an anomalous reading it is the score of the strongest
anomaly found on it (each kind maps its severity ``m``, 1 at its threshold, to ``1 - 2**-m``);
otherwise it is the spike score ``1 - 2**-(|z| / z_spike)`` of its deviation from the running
mean, capped below 0.5. ``is_anomaly`` is ``score >= 0.5``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from pantau.errors import ConfigError
from pantau.timestamps import parse_text
from processing.detect import KIND_NAMES, Params, State, detect
from processing.rules import RULES, Rule, metric_rules

BELOW_THRESHOLD = math.nextafter(0.5, 0.0)


@dataclass(frozen=True)
class Series:
    text: list[str]  # timestamps as written
    ts_ms: np.ndarray
    value: np.ndarray


def read_series(rows: Iterable[list[str]], source: str) -> Series:
    it = iter(rows)
    header = next(it, None)
    if header is None:
        raise ConfigError(f"{source} is empty", "give a CSV with a 'timestamp,value' header")
    names = [h.strip().lower() for h in header]
    if "timestamp" not in names or "value" not in names:
        raise ConfigError(
            f"{source}: the header {header!r} has no 'timestamp' and 'value' columns",
            "name the columns timestamp and value in the first line",
        )
    ti, vi = names.index("timestamp"), names.index("value")
    text: list[str] = []
    ts: list[int] = []
    values: list[float] = []
    for line_no, row in enumerate(it, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        try:
            ts.append(parse_text(row[ti]))
            values.append(float(row[vi]))
        except (ValueError, IndexError) as exc:
            raise ConfigError(
                f"{source}, line {line_no}: {exc}",
                "write timestamps as ISO 8601 with an offset or Unix seconds/ms, values as numbers",
            ) from None
        text.append(row[ti])
    return Series(text, np.array(ts, dtype=np.int64), np.array(values, dtype=np.float64))


def score_series(series: Series, metric: str | None) -> tuple[np.ndarray, list[str]]:
    """Score and strongest anomaly kind ('' if none) of each reading, in input order."""
    if metric is not None and metric not in RULES:
        raise ConfigError(
            f"unknown metric {metric!r}", f"use one of {', '.join(sorted(RULES))}, or leave it out"
        )
    n = series.value.shape[0]
    finite = np.isfinite(series.value)
    idx = np.flatnonzero(finite)
    if metric is None:
        # Unknown units: the noise floor follows the series' own magnitude.
        typical = float(np.median(np.abs(series.value[idx]))) if idx.size else 0.0
        generic = Rule(min_scale=max(1e-9, 1e-3 * typical))
        rules = metric_rules({"series": 1}, {"series": generic})
    else:
        rules = metric_rules({metric: 1})
    _, anomalies, continuous = detect(
        State.empty(), rules, Params(),
        np.zeros(idx.shape[0], np.int32), np.ones(idx.shape[0], np.int16),
        series.ts_ms[idx], series.value[idx],
    )  # fmt: skip
    score = np.zeros(n)
    score[idx] = np.minimum(continuous, BELOW_THRESHOLD)
    kinds = [""] * n
    rows = anomalies.arrays()
    # An anomaly names its reading by time: the first row with that time (later equal times
    # are late readings the detectors skipped).
    order = np.argsort(series.ts_ms[idx], kind="stable")
    sorted_ts = series.ts_ms[idx][order]
    for ts, kind, s in zip(
        rows["ts_ms"].tolist(), rows["kind"].tolist(), rows["score"].tolist(), strict=True
    ):
        at = int(np.searchsorted(sorted_ts, ts))
        i = int(idx[order[at]])
        if s >= score[i] or not kinds[i]:
            score[i] = max(s, score[i]) if kinds[i] else s
            kinds[i] = KIND_NAMES[kind]
    return score, kinds


def write_scores(out: TextIO, series: Series, score: np.ndarray, kinds: list[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "anomaly_score", "is_anomaly", "kind"])
    anomalous = 0
    for text, value, s, kind in zip(
        series.text, series.value.tolist(), score.tolist(), kinds, strict=True
    ):
        flag = s >= 0.5
        anomalous += flag
        writer.writerow([text, repr(value), f"{s:.4f}", int(flag), kind])
    return anomalous


def run(source: TextIO, name: str, out: TextIO, metric: str | None) -> tuple[int, int]:
    """Score the CSV ``source``; returns (rows, anomalous rows)."""
    series = read_series(csv.reader(source), name)
    score, kinds = score_series(series, metric)
    return series.value.shape[0], write_scores(out, series, score, kinds)
