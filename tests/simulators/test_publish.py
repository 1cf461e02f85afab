"""The simulated Jepara fleet, faults included, through the real broker and worker: every
reading lands exactly once, and only the garbage the simulator labelled is rejected."""

from __future__ import annotations

import time

import psycopg
import pytest

from pantau.mqtt import MqttEndpoint
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from simulators.publish import MqttSink
from simulators.scenario import generate, generate_columns
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.integration

DAY_S = 86_400
START = (int(time.time()) // DAY_S - 3) * DAY_S - 7 * 3600  # WIB midnight three days ago


def test_six_simulated_hours_with_faults_land_exactly(stack, db_url, topic_root, worker_factory):
    fleet = load_fleet()
    with psycopg.connect(db_url) as conn:
        load_into(conn, fleet)
    running = worker_factory(db_url, topic_root)
    kwargs = {"seed": 11, "start_s": START, "duration_s": 6 * 3600, "fault_rate": 1.0}
    messages, labels = generate(fleet, topic_root=topic_root, **kwargs)
    columns, same_labels = generate_columns(fleet, **kwargs)
    assert labels == same_labels
    sink = MqttSink(MqttEndpoint.parse(stack.mqtt_url), "test-sim", max_inflight=1000)
    for message in messages:
        sink.send(message)
    sink.close()
    telemetry = [m for m in messages if not m.retain]  # status topics are not telemetry
    assert len(telemetry) > 10_000
    wait_for(
        lambda: running.worker.counters.messages == len(telemetry),
        timeout_s=120,
        what=f"{len(telemetry)} messages ingested",
    )
    keys = set(
        zip(
            columns.sensor_idx.tolist(),
            columns.metric_id.tolist(),
            columns.ts_ms.tolist(),
            strict=True,
        )
    )
    garbage = sum(1 for x in labels if x.kind == "garbage")
    assert garbage > 0
    assert len(keys) < len(columns)  # duplicates were published
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
        rejects = conn.execute("SELECT reason, count(*) FROM rejects GROUP BY 1").fetchall()
        per_kind = dict(
            conn.execute(
                "SELECT kind, count(DISTINCT sensor_id) FROM readings_named GROUP BY 1"
            ).fetchall()
        )
    assert rejects == [("malformed_payload", garbage)]
    assert stored == (len(keys),)
    assert per_kind == {
        kind: sum(1 for s in fleet.sensors if s.kind == kind)
        for kind in ("waste_bin", "air_quality", "footfall")
    }
