"""The simulated Jepara fleet through the real broker and worker: all lands, none rejected."""

from __future__ import annotations

import threading

import psycopg
import pytest

from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from pantau.settings import MqttEndpoint
from simulators.fleet import FleetSimulator
from simulators.publish import MqttSink
from simulators.run import run_live
from tests.services import wait_for

pytestmark = pytest.mark.integration

START = 1_795_798_800  # 2026-11-28T00:00:00+07:00


def test_six_simulated_hours_land_exactly(stack, db_url, topic_root, worker_factory):
    fleet = load_fleet()
    with psycopg.connect(db_url) as conn:
        load_into(conn, fleet)
    running = worker_factory(db_url, topic_root)
    sim = FleetSimulator(fleet, seed=11, topic_root=topic_root)
    sink = MqttSink(MqttEndpoint.parse(stack.mqtt_url), "test-sim", max_inflight=1000)
    stats = run_live(
        sim,
        sink,
        start_s=START,
        speed=float("inf"),
        duration_s=6 * 3600,
        tick_s=0.0,
        stop=threading.Event(),
    )
    assert stats.messages > 10_000
    wait_for(
        lambda: running.worker.counters.messages == stats.messages,
        timeout_s=120,
        what=f"{stats.messages} messages ingested",
    )
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
        rejects = conn.execute("SELECT reason, count(*) FROM rejects GROUP BY 1").fetchall()
        per_kind = dict(
            conn.execute(
                "SELECT kind, count(DISTINCT sensor_id) FROM readings_named GROUP BY 1"
            ).fetchall()
        )
    assert rejects == []
    assert stored == (stats.readings,)
    assert per_kind == {
        kind: sum(1 for s in fleet.sensors if s.kind == kind)
        for kind in ("waste_bin", "air_quality", "footfall")
    }
