"""Ground truth of injected faults: one label per fault, as it was actually published.

A label is (sensor_id, metric, start, end, kind): the first and last reading the fault changed,
by the time those readings carry (``ts_ms`` as published; a clock-skewed reading's own stamp).
``metric`` is empty for faults of the whole device or of whole messages. For ``offline`` the
window spans the readings that were never sent; for ``duplicate`` and ``out_of_order`` the
readings of the message sent twice or late; for ``garbage`` those of the message replaced.

The CSV file has a header ``sensor_id,metric,start,end,kind`` and ISO 8601 UTC times with
milliseconds (``2026-11-28T01:15:00.000Z``), sorted by start, sensor, metric and kind.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, TextIO

import numpy as np

from processing.arrays import I64Array

HEADER = ("sensor_id", "metric", "start", "end", "kind")


class Label(NamedTuple):
    sensor_id: str
    metric: str  # "" for whole-device and message faults
    start_ms: int
    end_ms: int
    kind: str


class LabelBook:
    """Accumulates, per fault, the span of the readings it changed as they are published."""

    def __init__(self) -> None:
        self._spans: dict[int, list[int]] = {}
        self._what: dict[int, tuple[str, str, str]] = {}

    def add(self, fid: I64Array, ts_ms: I64Array, what: Iterable[tuple[str, str, str]]) -> None:
        """Record readings ``ts_ms`` changed by faults ``fid``; ``what`` gives (sensor_id, metric,
        kind) for each distinct fid in ascending order."""
        if fid.size == 0:
            return
        order = np.lexsort((ts_ms, fid))
        fid, ts_ms = fid[order], ts_ms[order]
        first = np.flatnonzero(np.r_[True, fid[1:] != fid[:-1]])
        last = np.r_[first[1:] - 1, fid.shape[0] - 1]
        for f, lo, hi, w in zip(
            fid[first].tolist(), ts_ms[first].tolist(), ts_ms[last].tolist(), what, strict=True
        ):
            span = self._spans.get(f)
            if span is None:
                self._spans[f] = [lo, hi]
                self._what[f] = w
            else:
                span[0], span[1] = min(span[0], lo), max(span[1], hi)

    def labels(self) -> list[Label]:
        out = [
            Label(self._what[f][0], self._what[f][1], lo, hi, self._what[f][2])
            for f, (lo, hi) in self._spans.items()
        ]
        return sorted(out, key=lambda x: (x.start_ms, x.sensor_id, x.metric, x.kind))


def iso_utc(ts_ms: int) -> str:
    """``2026-11-28T01:15:00.000Z``."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def write_csv(labels: Iterable[Label], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for x in labels:
        writer.writerow((x.sensor_id, x.metric, iso_utc(x.start_ms), iso_utc(x.end_ms), x.kind))


def save_csv(labels: Iterable[Label], path: Path) -> None:
    """Write the labels file atomically (a reader never sees half of it)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        write_csv(labels, out)
    os.replace(tmp, path)


def read_csv(path: Path) -> list[Label]:
    with path.open(encoding="utf-8", newline="") as f:
        return [
            Label(
                r["sensor_id"], r["metric"], parse_iso(r["start"]), parse_iso(r["end"]), r["kind"]
            )
            for r in csv.DictReader(f)
        ]
