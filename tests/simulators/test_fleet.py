"""The simulator's vectorized building blocks against plain-Python references, and the stream's
determinism, window independence and payload forms (every form decodes in the ingest)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.decode import decode
from pantau.errors import ConfigError
from pantau.registry.fleet import load_fleet, parse_fleet
from simulators.calendar import (
    IDUL_FITRI,
    day_number,
    idul_fitri_offset,
    is_fixed_holiday,
    local_day,
    local_hour,
    month_and_doy,
    pasaran,
    weekday,
)
from simulators.faults import Plan
from simulators.fleet import FleetSimulator
from simulators.frame import Group
from simulators.keyed import hashed, normal, uniform
from simulators.metrics import FAULT_KINDS, KIND_METRICS, METRIC_NAMES

DAY_START = 1_795_798_800  # 2026-11-28T00:00:00+07:00 (WIB midnight)
MASK = (1 << 64) - 1
WIB = timedelta(hours=7)


def mix_ref(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def hashed_ref(key: int, t: int, stream: int) -> int:
    salt = (stream * 0x9E3779B97F4A7C15) & MASK
    return mix_ref(key ^ mix_ref((t + salt) & MASK))


@given(
    st.lists(
        st.tuples(st.integers(0, MASK), st.integers(-(2**40), 2**40)), min_size=1, max_size=20
    ),
    st.integers(0, 1000),
)
def test_keyed_noise_matches_reference(pairs, stream):
    key = np.array([p[0] for p in pairs], dtype=np.uint64)
    t = np.array([p[1] for p in pairs], dtype=np.int64)
    bits = [hashed_ref(k, tt & MASK, stream) for k, tt in pairs]
    assert hashed(key, t, stream).tolist() == bits
    u = uniform(key, t, stream)
    assert u.tolist() == [((b >> 11) + 0.5) * 2.0**-53 for b in bits]
    z = normal(key, t, stream)
    for b, got in zip(bits, z.tolist(), strict=True):
        u1, u2 = ((b >> 32) + 0.5) * 2.0**-32, ((b & 0xFFFFFFFF) + 0.5) * 2.0**-32
        assert got == pytest.approx(math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2))
    assert ((u > 0) & (u < 1)).all()
    assert (np.abs(z) < 7).all()


def test_keyed_normal_is_standard():
    z = normal(np.arange(200_000, dtype=np.uint64), np.zeros(200_000, dtype=np.int64), 3)
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1) < 0.01


@given(st.lists(st.integers(0, 4_102_444_800), min_size=1, max_size=30))
def test_calendar_matches_datetime(times):
    t = np.array(times, dtype=np.int64)
    day = local_day(t)
    hour = local_hour(t)
    month, doy = month_and_doy(day)
    for i, ts in enumerate(times):
        local = datetime.fromtimestamp(ts, UTC) + WIB
        assert day[i] == day_number(local.date())
        assert hour[i] == pytest.approx(local.hour + local.minute / 60 + local.second / 3600)
        assert weekday(day)[i] == local.weekday()
        assert month[i] == local.month
        assert doy[i] == local.timetuple().tm_yday - 1
        assert is_fixed_holiday(day)[i] == (
            (local.month, local.day) in {(1, 1), (5, 1), (6, 1), (8, 17), (12, 25)}
        )


def test_pasaran_and_idul_fitri():
    # 17 August 1945 was Jumat Legi; 1 January 1970 Kamis Wage.
    days = np.array([day_number(date(1945, 8, 17)), day_number(date(1970, 1, 1))])
    assert weekday(days).tolist() == [4, 3]
    assert pasaran(days).tolist() == [0, 3]
    known = np.array(IDUL_FITRI)
    assert idul_fitri_offset(known).tolist() == [0] * 5
    assert idul_fitri_offset(known + 7).tolist() == [7] * 5  # Lomban, 8 Syawal
    # 2023 (outside the table): 22 April 2023, one Islamic year before 10 April 2024.
    assert idul_fitri_offset(np.array([day_number(date(2023, 4, 22))])).tolist() == [0]


def _group(intervals, phases):
    interval = np.array(intervals, dtype=np.int64)
    return Group(
        kind="footfall",
        ids=[str(i) for i in range(len(intervals))],
        offset=0,
        fleet_idx=np.arange(len(intervals)),
        interval_s=interval,
        phase_s=(np.array(phases) * interval).astype(np.int64),
        model=None,  # type: ignore[arg-type]
        specs=KIND_METRICS["footfall"],
    )


@given(
    st.lists(st.tuples(st.integers(1, 900), st.floats(0, 0.999)), min_size=1, max_size=8),
    st.integers(0, 10_000),
    st.integers(1, 2_000),
)
def test_due_matches_reference(sensors, t0, width):
    group = _group([s[0] for s in sensors], [s[1] for s in sensors])
    t1 = t0 + width
    idx, slot = group.due(t0, t1)
    expected = [
        (i, t)
        for i, interval in enumerate(group.interval_s.tolist())
        for t in range(t0 + 1, t1 + 1)
        if (t - int(group.phase_s[i])) % interval == 0
    ]
    assert list(zip(idx.tolist(), slot.tolist(), strict=True)) == expected


faults = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 500), st.integers(0, 60)), max_size=12
)


@given(faults, st.lists(st.tuples(st.integers(0, 5), st.integers(0, 600)), max_size=40))
def test_plan_find_matches_reference(spans, queries):
    # Non-overlapping spans per sensor, as the planner makes them.
    kept: list[tuple[int, int, int]] = []
    for sensor, start, length in sorted(spans):
        if all(s != sensor or start > e for s, _, e in kept):
            kept.append((sensor, start, start + length))
    n = len(kept)
    ints = np.arange(n, dtype=np.int64)
    plan = Plan(
        fid=ints,
        sensor=np.array([k[0] for k in kept], dtype=np.int64),
        kind=ints * 0,
        metric=ints * 0,
        start_s=np.array([k[1] for k in kept], dtype=np.int64),
        end_s=np.array([k[2] for k in kept], dtype=np.int64),
        lo_s=np.array([k[1] for k in kept], dtype=np.int64),
        hi_s=np.array([k[2] for k in kept], dtype=np.int64),
        iparam=ints * 0,
        fparam=np.zeros(n),
    )
    sensor = np.array([q[0] for q in queries], dtype=np.int64)
    slot = np.array([q[1] for q in queries], dtype=np.int64)
    got = plan.find(sensor, slot).tolist()
    for (s, t), row in zip(queries, got, strict=True):
        expected = next((i for i, k in enumerate(kept) if k[0] == s and k[1] <= t <= k[2]), -1)
        assert row == expected


def stream(seed, form="json", batch_s=0, cuts=1, hours=6):
    sim = FleetSimulator(
        load_fleet(), seed, "pantau/v1", fault_rate=2.0, payload=form, batch_s=batch_s
    )
    edges = np.linspace(DAY_START, DAY_START + hours * 3600, cuts + 1).astype(int).tolist()
    out = []
    for t0, t1 in itertools.pairwise(edges):
        out += [(m.topic, m.payload, m.ts_ms, m.retain) for m in sim.step(t0, t1)]
    return out, sim.labels()


def test_same_seed_same_bytes_other_seed_other_bytes():
    first, labels = stream(7)
    assert (first, labels) == stream(7)
    assert len(labels) > 20
    other, other_labels = stream(8)
    assert other != first
    assert other_labels != labels


@pytest.mark.parametrize(("form", "batch_s"), [("json", 0), ("batch", 900), ("senml", 300)])
def test_cutting_a_run_into_windows_changes_nothing(form, batch_s):
    # One 6-hour window, or 97 windows of odd lengths: the same bytes and labels.
    assert stream(3, form, batch_s, cuts=1) == stream(3, form, batch_s, cuts=97)


@pytest.mark.parametrize(("form", "batch_s"), [("json", 0), ("batch", 900), ("senml", 0)])
def test_every_form_decodes_to_the_columns(form, batch_s):
    fleet = load_fleet()
    sim = FleetSimulator(fleet, 5, "r", fault_rate=2.0, payload=form, batch_s=batch_s)
    frame = sim.frame(DAY_START, DAY_START + 4 * 3600)
    columns = frame.columns()
    decoded, problems = [], 0
    for m in frame.messages():
        if m.retain:
            assert m.topic.endswith("/status")
            assert m.payload in (b"offline", b"online")
            continue
        d = decode(m.payload, max_bytes=262_144, max_readings=1000, now_ms=0)
        problems += len(d.problems)
        assert all(p.reason == "malformed_payload" for p in d.problems)
        decoded += [
            (m.sensor_id, name, ts, v)
            for name, ts, v in zip(d.metrics, d.ts_ms, d.values, strict=True)
        ]
    expected = [
        (columns.sensor_ids[s], METRIC_NAMES[k], ts, v)
        for s, k, ts, v in zip(
            columns.sensor_idx.tolist(),
            columns.metric_id.tolist(),
            columns.ts_ms.tolist(),
            columns.value.tolist(),
            strict=True,
        )
    ]
    assert decoded == expected
    assert problems == sum(1 for x in sim.labels() if x.kind == "garbage") > 0
    # Nothing the ingest would reject as out of range: faults stay inside the catalog.
    specs = {s.name: s for specs in KIND_METRICS.values() for s in specs}
    for name, spec in specs.items():
        values = columns.value[columns.metric_id == METRIC_NAMES.index(name)]
        assert ((values >= spec.lo) & (values <= spec.hi)).all(), name


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
    assert message.readings == len(body) - 1 == 8


def test_every_sensor_reports_at_its_interval():
    fleet = load_fleet()
    messages = FleetSimulator(fleet, seed=1, topic_root="p").step(DAY_START, DAY_START + 3600)
    per_topic: dict[str, int] = {}
    for m in messages:
        per_topic[m.topic] = per_topic.get(m.topic, 0) + 1
    for s in fleet.sensors:
        assert per_topic[f"p/{s.kind}/{s.id}"] == 3600 // s.interval_s
    assert [m.ts_ms for m in messages] == sorted(m.ts_ms for m in messages)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"payload": "xml"}, "payload form 'xml'"),
        ({"payload": "json", "batch_s": 60}, "one report each"),
        ({"payload": "batch", "batch_s": 7}, "does not divide an hour"),
        ({"fault_kinds": ["stuck", "gremlins"]}, "unknown fault kinds"),
    ],
)
def test_bad_options_say_what_to_do(kwargs, message):
    with pytest.raises(ConfigError, match=message) as err:
        FleetSimulator(load_fleet(), 1, "r", **kwargs)
    assert err.value.fix


def test_fault_kinds_are_the_documented_names():
    assert FAULT_KINDS == (
        "stuck", "spike", "drift", "offline", "garbage", "duplicate", "clock_skew", "out_of_order"
    )  # fmt: skip


@given(st.lists(st.tuples(st.integers(0, 14), st.integers(0, 3 * 86_400)), min_size=1, max_size=30))
def test_footfall_counts_match_the_visitor_events(queries):
    from simulators.fleet import FleetSimulator as Sim

    sim = Sim(load_fleet(), 9, "r")
    group = next(g for g in sim.groups if g.kind == "footfall")
    model = group.model
    idx = np.array([q[0] for q in queries], dtype=np.int64)
    t = DAY_START + np.array([q[1] for q in queries], dtype=np.int64)
    got = model.values(idx, t)
    for row, (i, ts) in enumerate(zip(idx.tolist(), t.tolist(), strict=True)):
        lo = ts - int(group.interval_s[i])
        expected = [0, 0]
        for day in {int(local_day(np.array([lo]))[0]), int(local_day(np.array([ts]))[0])}:
            start = DAY_START + (day - int(local_day(np.array([DAY_START]))[0])) * 86_400
            for col, events in enumerate(model.visitors(day)):
                seconds = [e - (i << 32) for e in events.tolist() if e >> 32 == i]
                expected[col] += sum(1 for s in seconds if lo < start + s <= ts)
        assert got[row].tolist() == expected


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10**6)), min_size=1, max_size=40))
def test_label_book_keeps_each_faults_span(events):
    from simulators.labels import LabelBook

    book = LabelBook()
    half = len(events) // 2
    for part in (events[:half], events[half:]):
        if not part:
            continue
        fid = np.array([e[0] for e in part], dtype=np.int64)
        ts = np.array([e[1] for e in part], dtype=np.int64)
        book.add(fid, ts, [(f"S{f}", "", "spike") for f in sorted(set(fid.tolist()))])
    spans: dict[int, list[int]] = {}
    for f, ts in events:
        spans.setdefault(f, []).append(ts)
    expected = sorted((min(v), f"S{f}", max(v)) for f, v in spans.items())
    assert [(x.start_ms, x.sensor_id, x.end_ms) for x in book.labels()] == expected
