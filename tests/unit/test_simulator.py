"""The fleet simulator: report schedule against a reference, determinism, physical sanity."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st

from pantau.registry.fleet import load_fleet, parse_fleet
from simulators.fleet import FleetSimulator, _Group
from simulators.signals import FootfallCounters, WasteBins

DAY_START = 1_795_798_800  # 2026-11-28T00:00:00+07:00 (WIB midnight)


@given(
    st.lists(st.tuples(st.integers(1, 900), st.floats(0, 0.999)), min_size=1, max_size=8),
    st.integers(0, 10_000),
    st.integers(1, 2_000),
)
def test_due_matches_reference(sensors, t0, width):
    group = _Group.__new__(_Group)
    group.interval_s = np.array([s[0] for s in sensors], dtype=np.int64)
    group.phase_s = (np.array([s[1] for s in sensors]) * group.interval_s).astype(np.int64)
    t1 = t0 + width
    idx, slot = group.due(t0, t1)
    expected = {}
    for i, (interval, _) in enumerate(sensors):
        phase = int(group.phase_s[i])
        slots = [t for t in range(t0 + 1, t1 + 1) if (t - phase) % interval == 0]
        if slots:
            expected[i] = slots
    got: dict[int, list[int]] = {}
    for i, t in zip(idx.tolist(), slot.tolist(), strict=True):
        got.setdefault(i, []).append(t)
    assert got == expected


def stream(seed: int, hours: int = 6) -> list[tuple[str, bytes]]:
    sim = FleetSimulator(load_fleet(), seed=seed, topic_root="pantau/v1")
    out = []
    for h in range(hours):
        t0 = DAY_START + h * 3600
        out += [(m.topic, m.payload) for m in sim.step(t0, t0 + 3600)]
    return out


def test_same_seed_same_bytes_other_seed_other_bytes():
    assert stream(7) == stream(7)
    assert stream(7) != stream(8)


def test_every_sensor_reports_at_its_interval():
    fleet = load_fleet()
    sim = FleetSimulator(fleet, seed=1, topic_root="pantau/v1")
    messages = sim.step(DAY_START, DAY_START + 3600)
    per_topic: dict[str, int] = {}
    for m in messages:
        per_topic[m.topic] = per_topic.get(m.topic, 0) + 1
    for s in fleet.sensors:
        assert per_topic[f"pantau/v1/{s.kind}/{s.id}"] == 3600 // s.interval_s
    assert [m.ts_ms for m in messages] == sorted(m.ts_ms for m in messages)


def test_each_payload_is_one_sensor_at_one_time():
    # A two-hour window holds several report slots per sensor: each payload must describe one
    # bin at one time, so distance and fill agree with that bin's depth.
    fleet = load_fleet()
    depth = {s.id: float(s.params["depth_cm"]) for s in fleet.sensors if s.kind == "waste_bin"}
    sim = FleetSimulator(fleet, seed=5, topic_root="r")
    checked = 0
    for m in sim.step(DAY_START, DAY_START + 7200):
        kind, sensor_id = m.topic.split("/")[1:]
        if kind == "waste_bin":
            body = orjson.loads(m.payload)
            expected = max(depth[sensor_id] * (1 - body["fill_pct"] / 100), 0.0)
            assert abs(body["distance_cm"] - expected) <= 0.11
            checked += 1
    assert checked == 2 * len(depth) * 4


def test_bin_distance_agrees_with_fill_and_depth():
    rng = np.random.default_rng(3)
    depth = np.full(50, 110.0)
    bins = WasteBins.draw(depth, rng)
    idx = np.arange(50)
    for t in range(0, 7 * 86_400, 3_600):
        v = bins.sample(idx, np.full(50, DAY_START + t, dtype=np.float64), rng)
        expected = np.clip(depth * (1 - v["fill_pct"] / 100), 0, None)
        assert np.allclose(v["distance_cm"], expected, atol=0.11)
        assert (v["fill_pct"] >= 0).all()


def test_no_visitors_at_night():
    counters = FootfallCounters(np.full(4, 1000.0), np.full(4, 60.0))
    rng = np.random.default_rng(0)
    idx = np.arange(4)
    night = counters.sample(idx, np.full(4, DAY_START + 2 * 3600.0), rng)  # 02:00 WIB
    noon = counters.sample(idx, np.full(4, DAY_START + 11 * 3600.0), rng)  # 11:00 WIB
    assert night["count_in"].sum() == 0
    assert noon["count_in"].sum() > 0


def test_payload_is_a_json_object_with_ts():
    fleet = parse_fleet(
        {
            "zones": [{"id": "Z", "name": "Z", "kind": "air_site", "lat": -6.5, "lon": 110.6}],
            "sensors": [{"id": "AQ-1", "kind": "air_quality", "zone": "Z", "interval_s": 60}],
        }
    )
    sim = FleetSimulator(fleet, seed=1, topic_root="r")
    (message,) = sim.step(DAY_START, DAY_START + 60)
    body = orjson.loads(message.payload)
    assert body["ts"] == message.ts_ms
    assert body["pm25_ugm3"] <= body["pm10_ugm3"]
    assert message.readings == len(body) - 1
