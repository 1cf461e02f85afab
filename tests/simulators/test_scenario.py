"""The in-memory API, scaled fleets, labels files and what a run reports to its user."""

from __future__ import annotations

import io
import tomllib
from collections import Counter

import numpy as np
import pytest

from pantau.errors import ConfigError
from pantau.registry.fleet import load_fleet, parse_fleet
from simulators.labels import Label, read_csv, save_csv, write_csv
from simulators.metrics import METRIC_NAMES, parse_fault_kinds
from simulators.progress import LoadMeter, ProgressBar, summary
from simulators.scale import fleet_toml, scale_fleet
from simulators.scenario import generate, generate_columns

START = 1_795_798_800  # 2026-11-28T00:00:00+07:00


def test_generate_and_columns_agree_and_are_stable():
    fleet = scale_fleet(load_fleet(), 10)
    kwargs = {"seed": 4, "start_s": START, "duration_s": 86_400, "fault_rate": 3.0}
    messages, labels = generate(fleet, **kwargs)
    columns, same = generate_columns(fleet, **kwargs)
    assert labels == same
    assert (messages, labels) == generate(fleet, **kwargs)
    assert sum(m.readings for m in messages) == len(columns)
    assert columns.sensor_ids == tuple(s.id for s in fleet.sensors)
    assert columns.metric_names == METRIC_NAMES
    assert all(START * 1000 < m.ts_ms <= (START + 86_400) * 1000 for m in messages)
    assert (np.diff(columns.publish_ms) >= 0).all()
    assert {x.kind for x in labels} >= {"spike", "stuck", "offline", "duplicate"}
    assert all(x.metric == "" for x in labels if x.kind not in ("stuck", "spike", "drift"))
    quiet, none = generate(fleet, **{**kwargs, "fault_rate": 0.0})
    assert none == []
    assert all(m.readings for m in quiet)


@pytest.mark.parametrize("n", [3, 10, 357, 359, 2000])
def test_scaled_fleets_keep_the_mix_and_the_places(n):
    base = load_fleet()
    fleet = scale_fleet(base, n)
    assert len(fleet.sensors) == n
    ids = [s.id for s in fleet.sensors]
    assert len(set(ids)) == n
    assert set(Counter(s.kind for s in fleet.sensors)) == {"waste_bin", "air_quality", "footfall"}
    zones = {z.id for z in base.zones}
    assert all(s.zone in zones for s in fleet.sensors)
    assert scale_fleet(base, n) == fleet
    if n > len(base.sensors):
        assert {s.id for s in base.sensors} <= set(ids)
    back = parse_fleet(tomllib.loads(fleet_toml(fleet)))
    assert back.sensors == fleet.sensors
    assert back.zones == fleet.zones


def test_scaling_below_the_kinds_is_an_error():
    with pytest.raises(ConfigError, match="fewer than the fleet's 3 kinds") as err:
        scale_fleet(load_fleet(), 2)
    assert "at least 3" in err.value.fix


def test_labels_csv_round_trip(tmp_path):
    labels = [
        Label("WB-1", "fill_pct", 1_795_798_800_000, 1_795_806_000_000, "stuck"),
        Label("FF-1", "", 1_795_798_801_233, 1_795_798_801_233, "clock_skew"),
    ]
    out = io.StringIO()
    write_csv(labels, out)
    assert out.getvalue().splitlines()[:2] == [
        "sensor_id,metric,start,end,kind",
        "WB-1,fill_pct,2026-11-27T17:00:00.000Z,2026-11-27T19:00:00.000Z,stuck",
    ]
    save_csv(labels, tmp_path / "l.csv")
    assert read_csv(tmp_path / "l.csv") == labels


def test_fault_kinds_option():
    assert parse_fault_kinds("all")[0] == "stuck"
    assert parse_fault_kinds(" spike, offline ") == ("spike", "offline")
    with pytest.raises(ConfigError, match="unknown fault kinds \\['gremlin'\\]"):
        parse_fault_kinds("spike,gremlin")


def test_load_meter_says_reached_or_not():
    lines: list[str] = []
    meter = LoadMeter(1000, "messages", lines.append, started=0.0)
    for second in range(1, 5):
        meter.tick(float(second), 1000 * second, 5000 * second, 1000 * second - 10)
    assert lines[0].startswith("load    1 s: 1,000 msg/s of 1,000 target")
    assert not meter.warned
    reached, verdict = meter.verdict(4000, 4.0, {"generation": 1.0, "publishing": 1.0})
    assert reached
    assert verdict == "load: reached 1,000 msg/s (mean 1,000 over 4.0 s)"

    lines.clear()
    slow = LoadMeter(1_000_000, "readings", lines.append, started=0.0)
    for second in range(1, 5):
        slow.tick(float(second), 10_000 * second, 50_000 * second, 10_000 * second)
    warnings = [line for line in lines if "cannot reach" in line]
    assert warnings == [
        "load: this machine cannot reach 1,000,000 readings/s: 50,000 readings/s over the "
        "last 3 s\n"
    ]
    reached, verdict = slow.verdict(200_000, 4.0, {"generation": 1.0, "publishing": 3.0})
    assert not reached
    assert "could NOT reach 1,000,000 readings/s: mean 50,000 (5.0 % of the target)" in verdict
    assert "generation 25 %, publishing 75 %" in verdict


def test_progress_bar_and_summary():
    lines: list[str] = []
    bar = ProgressBar(10 * 86_400, lines.append, tty=False, started=0.0)
    for step in range(11):
        bar.update(float(step), step * 86_400.0, 1000 * step, 4000 * step)
        bar.update(float(step), step * 86_400.0, 1000 * step, 4000 * step)  # no repeat
    assert len(lines) == 11
    assert lines[5].startswith("[###############...............]  50.0%  5.0/10.0 days")
    text = summary(
        "backfill", simulated_s=86_400, messages=10, readings=40, wall_s=2.0,
        labels=[Label("A", "", 0, 0, "spike")] * 2, unacked=0,
    )  # fmt: skip
    assert text == (
        "backfill: 1.00 simulated days, 10 messages, 40 readings in 2.0 s (5 msg/s, "
        "20 readings/s); faults: 2 spike"
    )
