"""Malformed payloads, hand-made and Hypothesis-generated, interleaved with valid ones through the
real broker and worker: the worker never stops, every bad message is in `rejects` with a reason,
every valid reading lands."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops.stack.local import StackState
from pantau.registry.fleet import parse_fleet
from pantau.registry.load import load_into
from tests.fixtures.broker import Publisher
from tests.fixtures.ingest import start_worker
from tests.fixtures.polling import wait_for
from tests.fixtures.stack import fresh_database

pytestmark = pytest.mark.integration

SENSORS = [f"B{i}" for i in range(5)]
METRICS = {"fill_pct", "distance_cm", "battery_v", "temp_c", "tilt"}
T0_S = 1_795_000_000  # 2026-11-18, well after installation and before now
MB = 1024 * 1024

HANDMADE: list[bytes] = [
    b"",
    b"\x00\x01\x02\xff\xfe",
    b"[" * 5000 + b"]" * 5000,  # nesting deeper than any parser should follow
    b'{"ts": ' + b"[" * 300 + b"]" * 300 + b', "fill_pct": 1}',
    b'{"ts": 1795000000, "fill_pct": NaN}',
    b'{"ts": 1795000000, "fill_pct": Infinity}',
    b'{"ts": 1795000000, "fill_pct": 1e400}',
    b'{"ts": 1795000000, "fill_pct": 123456789012345678901234567890}',
    b'{"ts": 1795000000, "fill_pct": "50"}',
    b'{"ts": 1795000000, "fill_pct": true}',
    b'{"ts": 1795000000, "fill_pct": null}',
    b'{"ts": 1795000000, "fill_pct": 1, "fill_pct": 2}',
    b'{"ts": 1795000000, "fill_pct": 900}',
    b'{"ts": 1795000000, "fill_pct": -40}',
    b'{"ts": 1795000000, "pm25_ugm3": 10}',  # a metric of another kind
    b'{"ts": 1795000000, "humidity": 10}',
    b'{"ts": 1546300800, "fill_pct": 10}',  # 2019: before the sensor was installed
    b'{"ts": 4102444800, "fill_pct": 10}',  # 2100
    b'{"ts": 1e300, "fill_pct": 10}',
    b'{"ts": "2026-11-18 10:00", "fill_pct": 10}',
    b'{"ts": "yesterday", "fill_pct": 10}',
    b'{"fill_pct": 10}',
    b'{"ts": 1795000000}',
    b"[]",
    b"[1, 2, 3]",
    b'"just a string"',
    b"42",
    b"x" * MB,  # 1 MB
    json.dumps([{"ts": 1795000000 + i, "tilt": 1} for i in range(1500)]).encode(),  # too many
    b'[{"bn": "B0:", "n": "fill", "u": "%", "vs": "full"}]',  # SenML string value
    b'[{"bver": 99, "n": "fill_pct", "v": 3}]',  # SenML version we do not know
]


def not_json(payload: bytes) -> bool:
    try:
        json.loads(payload)
    except ValueError:
        return True
    return False


# JSON whose object keys are never metric names: no reading of it can be valid.
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8).filter(lambda k: k not in METRICS), inner, max_size=4)
    ),
    max_leaves=12,
)
garbage = st.one_of(
    st.binary(max_size=200).filter(not_json),
    json_values.map(lambda v: json.dumps(v).encode()),
)


def load_bins(url: str) -> None:
    zone = {"id": "Z", "name": "Z", "kind": "village", "lat": -6.5, "lon": 110.7}
    sensors = [{"id": s, "kind": "waste_bin", "zone": "Z"} for s in SENSORS]
    with psycopg.connect(url) as conn:
        load_into(conn, parse_fleet({"zones": [zone], "sensors": sensors}))


def run_corpus(stack: StackState, bad: list[bytes]) -> None:
    """Publish ``bad`` interleaved with valid messages and check what was stored."""
    with fresh_database(stack) as url:
        load_bins(url)
        root = f"m{uuid.uuid4().hex[:8]}/v1"
        running = start_worker(stack, url, root)
        publisher = Publisher(stack.mqtt_url)
        expected = set()
        try:
            for i, payload in enumerate(bad):
                sensor = SENSORS[i % len(SENSORS)]
                publisher.publish(f"{root}/waste_bin/{sensor}", payload)
                ts = T0_S + i
                valid = f'{{"ts": {ts}, "fill_pct": {i % 100}, "tilt": 1.5}}'.encode()
                publisher.publish(f"{root}/waste_bin/{sensor}", valid)
                expected |= {(sensor, "fill_pct", ts, float(i % 100)), (sensor, "tilt", ts, 1.5)}
            publisher.publish(f"{root}/waste_bin/NOT-A-SENSOR", b'{"ts": 1795000000, "tilt": 1}')
            publisher.publish(f"{root}/footfall/B0", b'{"ts": 1795000000, "count_in": 1}')
            publisher.wait_all()
            total = 2 * len(bad) + 2
            wait_for(
                lambda: running.worker.counters.messages == total,
                timeout_s=60,
                what=f"{total} messages processed",
            )
            assert running.thread.is_alive(), "the worker stopped"
        finally:
            counters = running.shutdown()
            publisher.close()
        with psycopg.connect(url) as conn:
            readings = conn.execute(
                "SELECT sensor_id, metric, extract(epoch FROM ts)::bigint, value"
                " FROM readings_named"
            ).fetchall()
            rejects = conn.execute("SELECT topic, payload, reason FROM rejects").fetchall()
        assert set(readings) == expected
        assert len(readings) == len(expected)
        rejected_payloads = {bytes(r[1]) for r in rejects}
        for payload in bad:
            assert payload[:1024] in rejected_payloads, f"no reject for {payload[:80]!r}"
        assert all(r[2] for r in rejects), "every reject has a reason"
        reasons = {r[2] for r in rejects}
        assert {"unknown_sensor", "kind_mismatch"} <= reasons
        assert counters.inserted == len(expected)


def test_hand_made_corpus(stack):
    run_corpus(stack, HANDMADE)


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(garbage, min_size=10, max_size=40))
def test_generated_corpus(stack, payloads):
    run_corpus(stack, payloads)
