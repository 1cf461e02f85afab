"""Every payload form of the device contract, published with the C client, and the metrics."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ops.stack.processes import free_port
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from tests.fixtures.polling import wait_for
from tests.ingest.test_worker import mosquitto_pub, rows

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 1, 20, tzinfo=UTC)
T0_S = int(T0.timestamp())


@pytest.fixture
def fleet_db(db_url):
    with psycopg.connect(db_url) as conn:
        load_into(conn, load_fleet())
    return db_url


def stored(url: str, n: int) -> list[tuple[object, ...]]:
    """The readings, once there are ``n`` of them."""

    def ready() -> list[tuple[object, ...]] | None:
        got = rows(url, "SELECT sensor_id, metric, ts, value FROM readings_named ORDER BY 1, 3, 2")
        return got if len(got) >= n else None

    return wait_for(ready, what=f"{n} readings")  # type: ignore[no-any-return]


def test_gateway_array(stack, fleet_db, topic_root, worker_factory):
    worker_factory(fleet_db, topic_root)
    mosquitto_pub(
        stack.mqtt_url,
        f"{topic_root}/footfall/FF-T-KARTINI-001",
        f'[{{"ts": {T0_S}, "count_in": 12, "count_out": 3}},'
        f' {{"ts": {T0_S + 60}, "count_in": 9, "count_out": 11}}]',
    )
    got = stored(fleet_db, 4)
    one = timedelta(seconds=60)
    assert got == [
        ("FF-T-KARTINI-001", "count_in", T0, 12.0),
        ("FF-T-KARTINI-001", "count_out", T0, 3.0),
        ("FF-T-KARTINI-001", "count_in", T0 + one, 9.0),
        ("FF-T-KARTINI-001", "count_out", T0 + one, 11.0),
    ]


def test_senml_pack_with_base_name_time_unit_and_relative_times(
    stack, fleet_db, topic_root, worker_factory
):
    # RFC 8428 section 5.1.3 in shape: base name, base time, base unit, times relative to bt.
    worker_factory(fleet_db, topic_root)
    mosquitto_pub(
        stack.mqtt_url,
        f"{topic_root}/air_quality/AQ-CENTRE",
        f'[{{"bn": "urn:dev:pantau:AQ-CENTRE:", "bt": {T0_S}, "bu": "ug/m3",'
        ' "n": "pm25", "v": 35.5},'
        ' {"n": "pm10", "v": 60.2},'
        ' {"n": "pm25", "t": 60, "v": 36.1},'
        ' {"n": "temp", "u": "Cel", "v": 29.4},'
        ' {"n": "rh", "u": "%RH", "v": 78}]',
    )
    got = stored(fleet_db, 5)
    later = T0 + timedelta(seconds=60)
    assert got == [
        ("AQ-CENTRE", "pm10_ugm3", T0, 60.2),
        ("AQ-CENTRE", "pm25_ugm3", T0, 35.5),
        ("AQ-CENTRE", "rh_pct", T0, 78.0),
        ("AQ-CENTRE", "temp_c", T0, 29.4),
        ("AQ-CENTRE", "pm25_ugm3", later, 36.1),
    ]


def test_metrics_endpoint_counts_what_happened(stack, fleet_db, topic_root, worker_factory):
    port = free_port()
    running = worker_factory(fleet_db, topic_root, metrics_port=port)
    topic = f"{topic_root}/waste_bin/WB-W-DMS-01-001"
    mosquitto_pub(stack.mqtt_url, topic, f'{{"ts": {T0_S}, "fill_pct": 40, "tilt": 2}}')
    mosquitto_pub(stack.mqtt_url, topic, "not json")
    wait_for(lambda: running.worker.counters.messages == 2, what="two messages")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    lines = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and line[0] != "#"
    }
    assert lines["pantau_ingest_messages_total"] == 2
    assert lines["pantau_ingest_readings_total"] == 2
    assert lines["pantau_ingest_inserted_total"] == 2
    assert lines['pantau_ingest_rejects_total{reason="malformed_payload"}'] == 1
    assert lines["pantau_ingest_commit_seconds_count"] >= 1
    assert lines["pantau_ingest_unacked_messages"] == 0
