"""monitor.inputs: what a failed part read, described in bounded JSON, suspect rows first."""

from __future__ import annotations

import json
import math

import numpy as np

from monitor.inputs import MAX_TEXT, Inputs
from pantau.timestamps import MAX_TS_MS


def test_suspect_rows_come_first_then_the_first_and_last():
    inputs = Inputs()
    n = 1000
    value = np.arange(n, dtype=np.float64)
    value[500] = math.nan
    value[700] = -math.inf
    ts = np.full(n, 1_795_000_000_000, dtype=np.int64)
    ts[600] = MAX_TS_MS + 1  # after the year 9999
    inputs.note("readings", sensor_key=np.arange(n), ts_ms=ts, value=value)
    described = inputs.describe(max_rows=7)["readings"]
    assert described["rows"] == n
    assert described["suspect"] == 3
    assert described["columns"] == ["sensor_key", "ts_ms", "value"]
    keys = [row[0] for row in described["sample"]]
    assert keys == [0, 1, 500, 600, 700, 998, 999]
    assert described["sample"][2] == [500, 1_795_000_000_000, "nan"]
    assert described["sample"][4][2] == "-inf"
    # Strict JSON: no NaN tokens.
    json.dumps(inputs.describe(), allow_nan=False)


def test_bounded_whatever_was_read():
    inputs = Inputs()
    for t in range(40):
        inputs.note(f"t{t}", text=["x" * 1000] * 1000, value=np.full(1000, math.nan))
    text = json.dumps(inputs.describe(), allow_nan=False)
    assert len(text) < 12 * 8 * (2 * MAX_TEXT + 20) + 12 * 200
    shown = inputs.describe()["t0"]["sample"][0][0]
    assert len(shown) == MAX_TEXT
    assert shown.endswith("...")


def test_empty_tables_and_scalars():
    inputs = Inputs()
    inputs.note("none", sensor_key=np.zeros(0, dtype=np.int64), value=np.zeros(0))
    inputs.note("scalar", now_ms=-5)
    described = inputs.describe()
    assert described["none"] == {
        "rows": 0, "suspect": 0, "columns": ["sensor_key", "value"], "sample": []
    }  # fmt: skip
    assert described["scalar"]["sample"] == [[-5]]
    assert described["scalar"]["suspect"] == 1  # a time before 1970
