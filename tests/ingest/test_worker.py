"""Readings through the real broker into the real TimescaleDB."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import psycopg
import pytest

from ops import mqttauth
from ops.stack.processes import free_port
from pantau.registry.fleet import load_fleet, parse_fleet
from pantau.registry.load import load_into
from tests.fixtures.broker import login_url, mosquitto_client
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.integration

BIN = "WB-W-DMS-01-001"
STATION = "AQ-CENTRE"


@pytest.fixture
def fleet_db(db_url):
    with psycopg.connect(db_url) as conn:
        load_into(conn, load_fleet())
    return db_url


def mosquitto_pub(url: str, topic: str, payload: str | bytes) -> None:
    """Publish with the C client at QoS 1 to the broker of ``url``: a client Pantau did not
    write."""
    data = payload.encode() if isinstance(payload, str) else payload
    with mosquitto_client("mosquitto_pub", url) as (start, env):
        args = [*start, "-q", "1", "-t", topic, "-V", "mqttv311", "-s"]
        subprocess.run(args, input=data, env=env, check=True, timeout=20)


def rows(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_reading_from_mosquitto_pub_lands_with_sensor_metric_value_and_time(
    stack, fleet_db, topic_root, worker_factory
):
    worker_factory(fleet_db, topic_root)
    mosquitto_pub(
        stack.mqtt_url,
        f"{topic_root}/waste_bin/{BIN}",
        '{"ts": "2026-11-28T08:20:00+07:00", "fill_pct": 42.5}',
    )
    got = wait_for(
        lambda: rows(fleet_db, "SELECT sensor_id, kind, metric, value, ts FROM readings_named"),
        what="the reading in readings",
    )
    assert got == [(BIN, "waste_bin", "fill_pct", 42.5, datetime(2026, 11, 28, 1, 20, tzinfo=UTC))]
    latest = rows(fleet_db, "SELECT value FROM latest")
    assert latest == [(42.5,)]


def test_bad_input_is_recorded_and_valid_readings_still_land(
    stack, fleet_db, topic_root, worker_factory
):
    running = worker_factory(fleet_db, topic_root)
    base = f"{topic_root}/air_quality/{STATION}"
    mosquitto_pub(stack.mqtt_url, base, '{"ts": 1795828800, "pm25_ugm3": 35.5, "pm10_ugm3": -3}')
    mosquitto_pub(stack.mqtt_url, base, b"\x00\xffnot json")
    mosquitto_pub(stack.mqtt_url, f"{topic_root}/air_quality/NOPE-1", '{"ts": 1795828800, "x": 1}')
    mosquitto_pub(stack.mqtt_url, f"{topic_root}/footfall/{STATION}", '{"ts": 1795828800}')
    mosquitto_pub(stack.mqtt_url, base, '{"ts": 4102444800, "pm25_ugm3": 10}')  # year 2100
    mosquitto_pub(stack.mqtt_url, base, '{"ts": 1795828860, "pm25_ugm3": 12, "lux": 3}')
    rejects = wait_for(
        lambda: (
            r
            if len(r := rows(fleet_db, "SELECT reason, metric, topic FROM rejects ORDER BY 1, 2"))
            >= 6
            else None
        ),
        what="six rejects",
    )
    assert [(r[0], r[1]) for r in rejects] == [
        ("kind_mismatch", None),
        ("malformed_payload", None),
        ("out_of_range", "pm10_ugm3"),
        ("ts_in_future", "pm25_ugm3"),
        ("unknown_metric", "lux"),
        ("unknown_sensor", None),
    ]
    assert rows(fleet_db, "SELECT metric, value FROM readings_named ORDER BY ts") == [
        ("pm25_ugm3", 35.5),
        ("pm25_ugm3", 12.0),
    ]
    payload = rows(
        fleet_db, "SELECT payload, payload_len FROM rejects WHERE reason = 'malformed_payload'"
    )
    assert payload == [(b"\x00\xffnot json", 10)]
    counters = running.shutdown()
    assert counters.rejects == 6
    assert counters.readings == 2


def test_the_same_message_twice_is_stored_and_counted_once(
    stack, fleet_db, topic_root, worker_factory
):
    running = worker_factory(fleet_db, topic_root)
    topic = f"{topic_root}/waste_bin/{BIN}"
    message = '{"ts": 1795828800, "fill_pct": 10, "battery_v": 3.9}'
    # In separate batches: the second insert hits the primary key.
    for n in (1, 2):
        mosquitto_pub(stack.mqtt_url, topic, message)
        wait_for(lambda n=n: running.worker.counters.messages == n, what=f"message {n}")
    # In one batch: a gateway repeating itself within a message.
    mosquitto_pub(stack.mqtt_url, topic, f"[{message}, {message}]")
    wait_for(lambda: running.worker.counters.messages == 3, what="message 3")
    assert rows(fleet_db, "SELECT count(*) FROM readings") == [(2,)]
    counters = running.shutdown()
    assert counters.readings == 8  # valid readings seen
    assert counters.inserted == 2  # newly stored: what processing will see


def test_latest_never_moves_backwards(stack, fleet_db, topic_root, worker_factory):
    running = worker_factory(fleet_db, topic_root)
    topic = f"{topic_root}/waste_bin/{BIN}"
    mosquitto_pub(stack.mqtt_url, topic, '{"ts": 1795828860, "fill_pct": 60}')
    wait_for(lambda: running.worker.counters.messages == 1, what="first message")
    mosquitto_pub(stack.mqtt_url, topic, '{"ts": 1795828800, "fill_pct": 50}')  # late
    wait_for(lambda: running.worker.counters.messages == 2, what="late message")
    assert rows(fleet_db, "SELECT count(*) FROM readings") == [(2,)]
    assert rows(fleet_db, "SELECT value FROM latest") == [(60.0,)]


def test_ingest_with_the_database_down_names_the_problem(stack, topic_root):
    dead = f"postgresql://pantau@127.0.0.1:{free_port()}/pantau"
    result = run_pantau(
        "ingest", env=pantau_env(PANTAU_DATABASE_URL=dead, PANTAU_MQTT_URL=stack.mqtt_url)
    )
    assert result.returncode == 4
    assert "cannot connect to the database at" in result.stderr
    assert "fix:" in result.stderr
    assert "Traceback" not in result.stderr


def test_rows_the_database_refuses_become_rejects_and_the_rest_lands(
    stack, fleet_db, topic_root, worker_factory
):
    with psycopg.connect(fleet_db) as conn:
        # A stand-in for any permanent refusal (a constraint added by an operator, say).
        conn.execute("ALTER TABLE readings ADD CONSTRAINT not_13 CHECK (value <> 13)")
    running = worker_factory(fleet_db, topic_root, batch_max_age_ms=500)
    topic = f"{topic_root}/waste_bin/{BIN}"
    for ts, value in ((1795828800, 10), (1795828860, 13), (1795828920, 14)):
        mosquitto_pub(stack.mqtt_url, topic, f'{{"ts": {ts}, "fill_pct": {value}}}')
    wait_for(lambda: running.worker.counters.messages == 3, what="three messages")
    assert rows(fleet_db, "SELECT value FROM readings ORDER BY ts") == [(10.0,), (14.0,)]
    refused = rows(fleet_db, "SELECT reason, metric, detail FROM rejects")
    assert len(refused) == 1
    assert refused[0][:2] == ("db_rejected", "fill_pct")
    assert refused[0][2].startswith("23514")  # check_violation
    counters = running.shutdown()
    assert counters.inserted == 2


def test_ingest_on_an_unmigrated_database_says_to_migrate(stack):
    result = run_pantau(
        "ingest",
        env=pantau_env(PANTAU_DATABASE_URL=stack.database_url, PANTAU_MQTT_URL=stack.mqtt_url),
    )
    assert result.returncode == 1
    assert "the database schema is not up to date" in result.stderr
    assert "run `pantau db migrate`" in result.stderr


def test_latest_is_the_newest_reading_of_a_batch(stack, fleet_db, topic_root, worker_factory):
    running = worker_factory(fleet_db, topic_root)
    mosquitto_pub(
        stack.mqtt_url,
        f"{topic_root}/waste_bin/{BIN}",
        '[{"ts": 1795828860, "fill_pct": 61, "tilt": 1},'
        ' {"ts": 1795828920, "fill_pct": 62},'
        ' {"ts": 1795828800, "fill_pct": 60, "tilt": 3}]',
    )
    wait_for(lambda: running.worker.counters.messages == 1, what="the message")
    got = rows(fleet_db, "SELECT m.name, l.value FROM latest l JOIN metrics m USING (metric_id)")
    assert sorted(got) == [("fill_pct", 62.0), ("tilt", 1.0)]


def test_ingest_with_a_wrong_password_stops_at_once_with_the_fix(stack, db_url, topic_root):
    wrong = login_url(stack, mqttauth.INGEST, "not-the-password")
    env = pantau_env(
        PANTAU_DATABASE_URL=db_url, PANTAU_MQTT_URL=wrong, PANTAU_TOPIC_ROOT=topic_root
    )
    # Retrying a login the broker refuses would never end: the timeout fails the test then.
    result = run_pantau("ingest", env=env, timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"refused the connection of the account '{mqttauth.INGEST}'" in result.stderr
    assert "fix: check the account" in result.stderr
    assert "not-the-password" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_sensor_registered_while_the_worker_runs_is_accepted(
    stack, db_url, topic_root, worker_factory
):
    zone = {"id": "Z", "name": "Z", "kind": "village", "lat": -6.5, "lon": 110.7}
    fleet = {"zones": [zone], "sensors": [{"id": "BIN-OLD", "kind": "waste_bin", "zone": "Z"}]}
    with psycopg.connect(db_url) as conn:
        load_into(conn, parse_fleet(fleet))
    running = worker_factory(db_url, topic_root)
    running.worker.reload_every_s = 0.0  # no rate limit in this test
    topic = f"{topic_root}/waste_bin/BIN-NEW"
    mosquitto_pub(stack.mqtt_url, topic, '{"ts": 1795828800, "fill_pct": 10}')
    wait_for(lambda: running.worker.counters.messages == 1, what="the first message")
    assert rows(db_url, "SELECT reason, sensor_id FROM rejects") == [("unknown_sensor", "BIN-NEW")]
    fleet["sensors"].append({"id": "BIN-NEW", "kind": "waste_bin", "zone": "Z"})
    with psycopg.connect(db_url) as conn:
        load_into(conn, parse_fleet(fleet))
    # Its next message makes the worker load the registry again, and is stored.
    mosquitto_pub(stack.mqtt_url, topic, '{"ts": 1795828860, "fill_pct": 11}')
    wait_for(lambda: running.worker.counters.messages == 2, what="the second message")
    assert rows(db_url, "SELECT sensor_id, value FROM readings_named") == [("BIN-NEW", 11.0)]
    assert "BIN-NEW" in running.worker.pipeline.snapshot.sensors
    assert running.shutdown().rejects == 1
