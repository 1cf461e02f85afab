"""Who may do what, checked against the real broker and the real database.

The broker: anonymous clients and wrong passwords are refused; a device publishes only its own
topics and reads nothing; the ingest account reads telemetry and publishes nothing; a gateway
publishes for the sensors it serves only. The database: every service login is a non-superuser
that can do its job (a real worker and a real processing run under it) and nothing else.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor.job import Job
from monitor.settings import ProcessSettings
from ops import mqttauth
from ops.credentials import registered_devices
from ops.mqttauth import Device
from ops.stack.local import StackState
from pantau.db.connect import connect
from pantau.db.migrate import migrate
from pantau.db.roles import LOGINS, OWNER, bootstrap
from pantau.db.scratch import with_database
from pantau.mqtt import MqttEndpoint
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from tests.fixtures.broker import ReasonClient, device_accounts, login_url
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.ingest import start_worker
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 135  # MQTT 5 reason code 0x87
NO_SUBSCRIBERS = 16  # accepted, and nobody subscribes to it (MQTT 5 reason code 0x10)
TS = 1795828800  # 2026-11-21T00:00:00Z


@pytest.fixture
def probes(stack: StackState) -> Iterator[Any]:
    opened: list[ReasonClient] = []

    def probe(username: str | None = None, password: str | None = None) -> ReasonClient:
        p = ReasonClient(login_url(stack, username, password))
        opened.append(p)
        return p

    yield probe
    for p in opened:
        p.close()


def service_password(stack: StackState, service: str) -> str:
    password = MqttEndpoint.parse(stack.mqtt_urls[service]).password
    assert password
    return password


def reading(value: float = 42.0, ts: int = TS) -> str:
    return f'{{"ts": {ts}, "fill_pct": {value}}}'


def test_anonymous_clients_and_wrong_passwords_are_refused(stack, probes):
    assert probes().connack == [NOT_AUTHORIZED]  # MQTT 5: "Not authorized"
    assert probes(mqttauth.INGEST, "not-the-password").connack[0] in (NOT_AUTHORIZED, 134)
    assert probes(mqttauth.INGEST, service_password(stack, "ingest")).accepted


def test_a_device_publishes_its_own_topics_only_and_reads_nothing(
    stack, db_url, topic_root, probes
):
    with connect(db_url) as conn:
        load_into(conn, load_fleet())
        devices = registered_devices(conn)
    bins = [d for d in devices if d.kind == "waste_bin"][:2]
    air = next(d for d in devices if d.kind == "air_quality")
    passwords = device_accounts(stack, topic_root, devices)
    worker = start_worker(stack, db_url, topic_root, mqtt_url=stack.mqtt_urls["ingest"])
    try:
        me, other = bins
        device = probes(me.sensor_id, passwords[me.sensor_id])
        assert device.accepted
        own = f"{topic_root}/waste_bin/{me.sensor_id}"
        assert device.publish(own, reading(40.0)) == 0
        assert device.publish(own + "/status", "online") == NO_SUBSCRIBERS  # accepted
        # Another device's topic, its own id under another kind, a made-up sensor: refused.
        assert device.publish(f"{topic_root}/waste_bin/{other.sensor_id}", reading(99.0)) == 135
        assert device.publish(f"{topic_root}/air_quality/{me.sensor_id}", reading()) == 135
        assert device.publish(f"{topic_root}/waste_bin/NOT-REGISTERED", reading()) == 135
        # Reading anything, even its own topic, is refused: Mosquitto acknowledges the
        # subscription and delivers nothing the account may not read.
        device.subscribe(own)
        device.subscribe(f"{topic_root}/#")
        # A device with another device's password does not get in.
        assert probes(other.sensor_id, passwords[me.sensor_id]).connack[0] != 0
        # What was accepted is stored; what was refused never reached the worker.
        stored = wait_for(
            lambda: rows(db_url, "SELECT sensor_id, value FROM readings_named"),
            what="the device's own reading",
        )
        time.sleep(0.5)  # a refused message, had it passed, would have landed by now
        assert rows(db_url, "SELECT sensor_id, value FROM readings_named") == stored
        assert stored == [(me.sensor_id, 40.0)]
        assert rows(db_url, "SELECT count(*) FROM rejects") == [(0,)]
        # The gateway account publishes for registered sensors, not for others, and reads none.
        gateway = probes(mqttauth.SIMULATOR, service_password(stack, "simulator"))
        gateway.subscribe(f"{topic_root}/+/+")
        assert gateway.publish(f"{topic_root}/air_quality/{air.sensor_id}", "{}") == 0
        assert gateway.publish(f"{topic_root}/air_quality/NOT-REGISTERED", "{}") == 135
        assert gateway.publish(own, reading(41.0, TS + 600)) == 0
        # The worker got both (a reject for "{}", a reading), the device and gateway nothing.
        wait_for(lambda: rows(db_url, "SELECT count(*) FROM readings")[0][0] == 2, what="row 2")
        wait_for(lambda: rows(db_url, "SELECT count(*) FROM rejects")[0][0] == 1, what="reject")
        assert device.received == []
        assert gateway.received == []
    finally:
        worker.shutdown()


def test_service_accounts_read_what_they_need_and_publish_nothing(stack, topic_root, probes):
    passwords = device_accounts(stack, topic_root, [Device("BIN-SEC-1", "waste_bin")])
    telemetry = f"{topic_root}/waste_bin/BIN-SEC-1"
    ingest = probes(mqttauth.INGEST, service_password(stack, "ingest"))
    ingest.subscribe(f"$share/g{topic_root[1:6]}/{topic_root}/+/+")
    ingest.subscribe(f"{topic_root}/+/+/status")
    process = probes(mqttauth.PROCESS, service_password(stack, "process"))
    process.subscribe(f"{topic_root}/#")
    assert ingest.publish(telemetry, reading()) == NOT_AUTHORIZED
    assert ingest.publish(telemetry + "/status", "online") == NOT_AUTHORIZED
    assert process.publish(telemetry, reading()) == NOT_AUTHORIZED
    device = probes("BIN-SEC-1", passwords["BIN-SEC-1"])
    assert device.publish(telemetry, reading()) == 0
    assert device.publish(telemetry + "/status", "online") == 0
    # Each service hears what it reads and nothing else.
    wait_for(lambda: ingest.received and process.received, what="delivery to both services")
    time.sleep(0.3)
    assert ingest.received == [telemetry]
    assert process.received == [telemetry + "/status"]


def test_our_verifier_reads_the_hashes_mosquitto_passwd_writes(tmp_path):
    # The same PBKDF2-SHA512 scheme both ways: the broker reads our hashes (every login in this
    # file), and our verifier reads mosquitto_passwd's.
    path = tmp_path / "passwd"
    path.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(path), "dev-1", "s3cret word"], check=True)
    encoded = path.read_text().strip().split(":", 1)[1]
    assert mqttauth.verify_password("s3cret word", encoded)
    assert not mqttauth.verify_password("s3cret Word", encoded)


# -- the database --------------------------------------------------------------------------


def rows(url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def login(stack: StackState, service: str, db_url: str) -> str:
    """``service``'s login on the test's own database."""
    return with_database(stack.database_urls[service], db_url.rsplit("/", 1)[1])


def refused(url: str, statement: str) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught, psycopg.connect(url) as c:
        c.execute(statement)
    return str(caught.value)


def test_no_service_login_is_a_superuser(stack):
    names = [OWNER, *(login.name for login in LOGINS)]
    found = rows(
        stack.database_url,
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = ANY(%s) ORDER BY rolname",
        names,
    )
    assert sorted(r[0] for r in found) == sorted(names)
    assert all(r[1:] == (False, False, False) for r in found), found


def test_the_api_login_cannot_write_readings_and_the_ingest_login_cannot_read_keys(stack, db_url):
    with connect(db_url) as conn:
        load_into(conn, load_fleet())
    api, ingest, grafana = (login(stack, s, db_url) for s in ("api", "ingest", "grafana"))
    insert = "INSERT INTO readings (sensor_key, metric_id, ts, value) VALUES (1, 1, now(), 1)"
    assert "permission denied" in refused(api, insert)
    assert "permission denied" in refused(api, "DELETE FROM readings")
    assert "permission denied" in refused(api, "UPDATE sensors SET name = 'x'")
    assert "permission denied for table api_keys" in refused(ingest, "SELECT * FROM api_keys")
    assert "permission denied" in refused(ingest, "UPDATE readings SET value = 0")
    assert "permission denied" in refused(ingest, "DELETE FROM rejects")
    assert "permission denied" in refused(ingest, "UPDATE sensors SET active = false")
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), psycopg.connect(grafana) as conn:
        conn.execute("INSERT INTO rejects (reason) VALUES ('x')")
    assert "permission denied" in refused(grafana, "SELECT * FROM api_keys")
    # What each may do, it can: the API reads, Grafana reads.
    assert rows(api, "SELECT count(*) FROM sensors")[0][0] > 300
    assert rows(grafana, "SELECT count(*) FROM zones")[0][0] > 50


def test_the_ingest_login_runs_a_real_worker_and_the_processing_job(stack, db_url, topic_root):
    with connect(db_url) as conn:
        load_into(conn, load_fleet())
        sensor = registered_devices(conn)[0]
    ingest_url = login(stack, "ingest", db_url)
    worker = start_worker(stack, ingest_url, topic_root)
    probe = ReasonClient(stack.mqtt_url)
    try:
        topic = f"{topic_root}/{sensor.kind}/{sensor.sensor_id}"
        metric = {"waste_bin": "fill_pct", "air_quality": "pm25_ugm3", "footfall": "count_in"}
        for i in range(5):
            probe.publish(topic, f'{{"ts": {TS + 600 * i}, "{metric[sensor.kind]}": {10 + i}}}')
        probe.publish(topic, "not json")
        wait_for(lambda: rows(db_url, "SELECT count(*) FROM readings")[0][0] == 5, what="5 rows")
        wait_for(lambda: rows(db_url, "SELECT count(*) FROM rejects")[0][0] == 1, what="reject")
        assert rows(db_url, "SELECT sum(n) FROM rollup_1h")[0][0] == 5
    finally:
        probe.close()
        counters = worker.shutdown()
    assert (counters.inserted, counters.rejects) == (5, 1)
    with connect(ingest_url) as conn:
        report = Job(conn, ProcessSettings(database_url=ingest_url)).run_once((TS + 3600) * 1000)
    # Every part ran under the ingest login: a missing privilege would show as a part's error.
    failed = {k: v for k, v in report.items() if isinstance(v, dict) and "error" in v}
    assert not failed, failed
    assert {"health", "waste", "air", "tourism", "villages", "alarms"} <= set(report)
    assert rows(db_url, "SELECT count(*) FROM sensor_status")[0][0] > 300
    assert rows(db_url, "SELECT count(*) FROM job_runs")[0][0] == 1


def test_bootstrap_hands_a_database_migrated_by_a_superuser_to_the_owner(stack, db_url):
    """An installation migrated before the owner existed (tables owned by the superuser)
    upgrades: bootstrap gives the owner its tables, and the owner migrates from then on."""
    database = db_url.rsplit("/", 1)[1]
    owned = (
        "SELECT count(*) FILTER (WHERE r.rolname = 'pantau_owner'), count(*) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'S')"
    )
    with connect(db_url) as conn:  # a reading, so that the hypertable has a chunk
        load_into(conn, load_fleet())
        conn.execute(
            "INSERT INTO readings (sensor_key, metric_id, ts, value) SELECT min(sensor_key), "
            "(SELECT metric_id FROM metrics WHERE name = 'fill_pct'), now(), 50 FROM sensors"
        )
        conn.commit()
    before = rows(db_url, owned)[0]
    assert before[0] == 0  # the scratch database was migrated by the superuser
    store = json.loads((Path(stack.state_dir) / "secrets.json").read_text())["database"]
    done = bootstrap(with_database(stack.database_url, "postgres"), database, store)
    assert any("handed over to pantau_owner" in line for line in done)
    after = rows(db_url, owned)[0]
    assert after[0] == after[1] == before[1] > 20
    assert bootstrap(with_database(stack.database_url, "postgres"), database, store)[-1].startswith(
        "database"
    )  # the second time there is nothing left to hand over
    owner = login(stack, "owner", db_url)
    assert migrate(owner) == []  # up to date, and the owner may check that
    with psycopg.connect(owner) as conn:  # and may alter its tables, as a migration would
        conn.execute("COMMENT ON TABLE readings IS 'raw readings'")
    with psycopg.connect(db_url) as conn:  # the hypertable's chunks went along
        chunk_owners = conn.execute(
            "SELECT DISTINCT r.rolname FROM timescaledb_information.chunks ch "
            "JOIN pg_class c ON c.relname = ch.chunk_name JOIN pg_roles r ON r.oid = c.relowner"
        ).fetchall()
    assert chunk_owners == [("pantau_owner",)]


def test_the_simulator_says_when_the_broker_refuses_its_messages(stack, topic_root):
    """A gateway publishing sensors the registry does not have: every message refused, and the
    simulator says so and fails, instead of reporting a simulation nobody received."""
    device_accounts(stack, topic_root, [Device("ONLY-THIS-ONE", "waste_bin")])
    result = run_pantau(
        "simulate", "--backfill", "0.02", "--start", "2026-11-27T00:00:00+07:00",
        "--sensors", "5", "--faults", "0",
        env=pantau_env(PANTAU_MQTT_URL=stack.mqtt_urls["simulator"], PANTAU_TOPIC_ROOT=topic_root),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "error: the broker refused" in result.stderr
    assert "Not authorized" in result.stderr
    assert "pantau registry load" in result.stderr
