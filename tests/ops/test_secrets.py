"""Secrets stay secret: no log line, no output, no --help shows one, and production refuses
placeholder secrets and superuser logins."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from ops.credentials import registered_devices
from ops.stack.local import StackState
from pantau.db.connect import connect
from pantau.db.scratch import with_database
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from tests.fixtures.broker import device_accounts
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.polling import wait_for
from tests.fixtures.stack import count_readings

pytestmark = pytest.mark.integration

START = "2026-11-27T00:00:00+07:00"


def all_secrets(stack: StackState) -> list[str]:
    store = json.loads((Path(stack.state_dir) / "secrets.json").read_text())
    found = [pw for group in ("database", "mqtt") for pw in store[group].values()]
    found += [entry["password"] for entry in store.get("devices", {}).values()]
    return found


def test_no_secret_reaches_a_log_an_output_or_help(stack, db_url, topic_root):
    with connect(db_url) as conn:
        load_into(conn, load_fleet())
        devices = registered_devices(conn)
    device_accounts(stack, topic_root, devices)
    database = db_url.rsplit("/", 1)[1]
    ingest_db = with_database(stack.database_urls["ingest"], database)
    api_db = with_database(stack.database_urls["api"], database)
    common = {"PANTAU_TOPIC_ROOT": topic_root, "PANTAU_STATE_DIR": stack.state_dir}
    outputs: list[str] = []

    def run(*args: str, **env: str) -> str:
        result = run_pantau("-v", *args, env=pantau_env(**common, **env), timeout=180)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
        return result.stdout + result.stderr

    # The simulator publishes a backfill through its gateway account while a worker (with a
    # debug log, under the ingest login) stores it; then the processing job runs once.
    ingest = run_pantau_background(
        "ingest", PANTAU_DATABASE_URL=ingest_db, PANTAU_MQTT_URL=stack.mqtt_urls["ingest"], **common
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(ingest.stdout.readline, "")))
    reader.start()
    try:
        wait_for(lambda: any("subscribed to" in line for line in lines), what="the worker")
        sim = run(
            "simulate", "--backfill", "0.05", "--start", START, "--sensors", "20", "--faults", "0",
            PANTAU_MQTT_URL=stack.mqtt_urls["simulator"],
        )  # fmt: skip
        sent = int(re.search(r"messages, ([\d,]+) readings", sim)[1].replace(",", ""))  # type: ignore[index]
        wait_for(lambda: count_readings(db_url) == sent, what=f"{sent} readings stored")
    finally:
        ingest.terminate()
        ingest.wait(timeout=60)
        reader.join(timeout=10)
        ingest.stdout.close()
    out = "".join(lines)
    outputs.append(out)
    assert "pantau-ingest:***@" in out  # the URL is named, its password masked
    assert " readings (" in out  # and it stored what the simulator sent
    run(
        "process",
        "--once",
        PANTAU_DATABASE_URL=ingest_db,
        PANTAU_MQTT_URL=stack.mqtt_urls["process"],
    )
    run("db", "status", PANTAU_DATABASE_URL=api_db)
    run("stack", "status")
    outputs.extend(run(*command, "--help") for command in ([], ["ingest"], ["simulate"], ["api"]))
    # The servers' own logs: bootstrap sent verifiers, not passwords; the broker logs no password.
    outputs.extend(
        (Path(stack.state_dir) / log).read_text(errors="replace")
        for log in ("mosquitto/mosquitto.log", "postgres/postgres.log")
    )

    text = "\n".join(outputs)
    secrets = all_secrets(stack)
    assert len(secrets) > 300  # the services' and every registered device's passwords
    leaked = [s for s in secrets if s in text]
    assert leaked == []
    assert "***" in text


def run_pantau_background(*args: str, **env: str):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "-v", *args],
        env=pantau_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_production_refuses_placeholder_secrets_and_superuser_logins(stack, db_url):
    database = db_url.rsplit("/", 1)[1]
    placeholder = stack.database_urls["ingest"].replace(
        stack.database_urls["ingest"].split(":")[2].split("@")[0], "change-me"
    )
    refused = run_pantau(
        "process",
        "--once",
        env=pantau_env(PANTAU_ENV="production", PANTAU_DATABASE_URL=placeholder),
    )
    assert refused.returncode == 2, refused.stderr
    assert "database_url has a placeholder or empty password and PANTAU_ENV is production" in (
        refused.stderr
    )
    assert "change-me" not in refused.stderr + refused.stdout
    # An MQTT URL without a password is refused the same way.
    anonymous = run_pantau(
        "simulate", "--backfill", "0.01",
        env=pantau_env(PANTAU_ENV="production", PANTAU_MQTT_URL="mqtt://127.0.0.1:1883"),
    )  # fmt: skip
    assert anonymous.returncode == 2
    assert "mqtt_url has a placeholder or empty password" in anonymous.stderr
    # The superuser's login: refused in production, a warning in development.
    superuser = with_database(stack.database_url, database)
    as_root = run_pantau(
        "process", "--once", env=pantau_env(PANTAU_ENV="production", PANTAU_DATABASE_URL=superuser)
    )
    assert as_root.returncode == 2
    assert "connects to the database as the superuser 'pantau'" in as_root.stderr
    dev = run_pantau("process", "--once", env=pantau_env(PANTAU_DATABASE_URL=superuser))
    assert dev.returncode == 0, dev.stderr
    assert "WARNING" in dev.stderr
    assert "superuser 'pantau'; in production that is refused" in dev.stderr
    # A real login in production starts.
    ok = run_pantau(
        "process", "--once",
        env=pantau_env(
            PANTAU_ENV="production",
            PANTAU_DATABASE_URL=with_database(stack.database_urls["ingest"], database),
        ),
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
