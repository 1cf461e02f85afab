"""The details of validation rejects show plain numbers (``5000.0``), never a NumPy repr
(``np.float64(5000.0)``): they are read by people in the rejects table and the API."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ingest.batch import Readings, RejectRow, WriteResult
from ingest.pipeline import Limits, Pipeline, validation_detail
from ingest.snapshot import build_snapshot

NOW_MS = 1_795_000_000_000
TOPIC = "r/v1/waste_bin/BIN-1"
SNAPSHOT = build_snapshot(
    ("waste_bin",),
    [(1, "fill_pct", 0.0, 100.0)],
    [("waste_bin", 1)],
    [("BIN-1", 1, "waste_bin", 0)],
)


class KeepingStore:
    """A store that keeps what it is given."""

    def __init__(self) -> None:
        self.rejects: list[RejectRow] = []

    def write(self, readings: Readings, rejects: list[RejectRow]) -> WriteResult:
        self.rejects.extend(rejects)
        return WriteResult(np.ones(readings.value.shape[0], dtype=np.bool_), len(rejects), 0.0)


def rejects_of(payloads: list[dict[str, object]]) -> list[RejectRow]:
    pipe = Pipeline("r/v1", Limits(1 << 16, 100, 300_000), SNAPSHOT)
    for n, doc in enumerate(payloads):
        assert pipe.add(TOPIC, json.dumps(doc).encode(), (1, n + 1, 1), NOW_MS)
    store = KeepingStore()
    pipe.write(pipe.take(), store, NOW_MS)
    return store.rejects


def test_an_out_of_range_value_reads_as_a_plain_number() -> None:
    ts_s = NOW_MS // 1000 - 60
    rejects = rejects_of([{"ts": ts_s, "fill_pct": 5000}, {"ts": ts_s, "fill_pct": 250.5}])
    assert [(r.reason, r.metric, r.detail) for r in rejects] == [
        ("out_of_range", "fill_pct", f"value 5000.0 at ts_ms {ts_s * 1000}"),
        ("out_of_range", "fill_pct", f"value 250.5 at ts_ms {ts_s * 1000}"),
    ]


def test_a_reading_from_the_future_names_its_time_plainly() -> None:
    ts_s = NOW_MS // 1000 + 86_400
    (reject,) = rejects_of([{"ts": ts_s, "fill_pct": 40}])
    assert (reject.reason, reject.detail) == ("ts_in_future", f"value 40.0 at ts_ms {ts_s * 1000}")


def parsed(detail: str) -> tuple[float, int]:
    """The value and the time a detail names, parsed back as plain Python text."""
    words = detail.split()
    assert len(words) == 5, detail
    assert (words[0], words[2], words[3]) == ("value", "at", "ts_ms"), detail
    return float(words[1]), int(words[4])


@given(
    st.one_of(st.floats(), st.integers(-(2**63), 2**63 - 1), st.just(np.float64(5000.0))),
    st.integers(-(2**63), 2**63 - 1) | st.just(np.int64(NOW_MS)),
)
def test_no_detail_holds_a_numpy_repr(value: float, ts_ms: int) -> None:
    detail = validation_detail(value, ts_ms)
    assert "np." not in detail
    assert "(" not in detail
    back_value, back_ts = parsed(detail)
    assert back_ts == int(ts_ms)
    assert back_value == float(value) or (math.isnan(back_value) and math.isnan(value))


@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(-(10**12), 10**12),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_no_reject_of_the_pipeline_holds_a_numpy_repr(readings: list[tuple[float, int]]) -> None:
    docs: list[dict[str, object]] = [
        {"ts": NOW_MS // 1000 + offset_s, "fill_pct": value} for value, offset_s in readings
    ]
    for reject in rejects_of(docs):
        assert "np." not in reject.detail, reject
        if reject.reason in {"out_of_range", "ts_in_future", "ts_before_install"}:
            back_value, _ = parsed(reject.detail)
            assert back_value in {float(value) for value, _ in readings}
