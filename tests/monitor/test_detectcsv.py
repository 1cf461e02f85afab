"""`pantau detect FILE.csv`: parsing, scoring and the command's errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from monitor.detectcsv import run


def series_csv(values: np.ndarray, start_s: int = 1_764_000_000, step_s: int = 300) -> str:
    lines = ["timestamp,value"]
    lines += [f"{start_s + i * step_s},{v!r}" for i, v in enumerate(values.tolist())]
    return "\n".join(lines) + "\n"


def score(text: str, metric: str | None = None) -> list[dict[str, str]]:
    out = io.StringIO()
    run(io.StringIO(text), "test.csv", out, metric)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_a_spike_and_a_stuck_run_are_found_and_nothing_else():
    rng = np.random.default_rng(7)
    values = (25 + rng.normal(0, 0.5, 400)).round(2)
    values[150] = 45.0
    values[300:312] = values[300]
    rows = score(series_csv(values))
    assert [r["timestamp"] for r in rows] == [str(1_764_000_000 + i * 300) for i in range(400)]
    flagged = {i: r["kind"] for i, r in enumerate(rows) if r["is_anomaly"] == "1"}
    assert flagged[150] == "spike"
    assert {i for i, k in flagged.items() if k == "stuck"} == set(range(307, 312))
    assert set(flagged) == {150, *range(307, 312)}
    scores = np.array([float(r["anomaly_score"]) for r in rows])
    assert ((scores >= 0) & (scores <= 1)).all()
    assert ((scores >= 0.5) == np.array([r["is_anomaly"] == "1" for r in rows])).all()
    assert scores[150] > 0.9


def test_metric_rules_apply_a_bins_emptying_is_not_an_anomaly():
    fill = np.concatenate([np.linspace(10, 85, 60), np.linspace(5, 40, 40)]).round(1)
    fill += np.random.default_rng(1).normal(0, 0.8, 100).round(1)
    assert not [r for r in score(series_csv(fill), "fill_pct") if r["is_anomaly"] == "1"]
    # Without the metric's rules the generic ones apply: the drop and the trend are flagged.
    flagged = {r["kind"] for r in score(series_csv(fill)) if r["is_anomaly"] == "1"}
    assert flagged & {"level_shift", "drift"}


def test_command_reads_a_file_and_writes_the_scores(tmp_path: Path, capsys):
    source = tmp_path / "series.csv"
    source.write_text(series_csv(np.array([1.0, 2.0, 1.5])))
    target = tmp_path / "scores.csv"
    assert main(["detect", str(source), "-o", str(target)]) == 0
    header, *rows = target.read_text().splitlines()
    assert header == "timestamp,value,anomaly_score,is_anomaly,kind"
    assert len(rows) == 3


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "is empty"),
        ("time,reading\n1,2\n", "no 'timestamp' and 'value' columns"),
        ("timestamp,value\n1764000000,abc\n", "line 2"),
        ("timestamp,value\nyesterday,1\n", "line 2"),
    ],
)
def test_bad_input_says_what_and_where(tmp_path: Path, capsys, content: str, problem: str):
    source = tmp_path / "bad.csv"
    source.write_text(content)
    assert main(["detect", str(source)]) == 2
    err = capsys.readouterr().err
    assert problem in err
    assert "fix:" in err


def test_missing_file_and_unknown_metric(tmp_path: Path, capsys):
    assert main(["detect", str(tmp_path / "none.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    source = tmp_path / "s.csv"
    source.write_text(series_csv(np.array([1.0])))
    assert main(["detect", str(source), "--metric", "pm99"]) == 2
    assert "unknown metric 'pm99'" in capsys.readouterr().err
