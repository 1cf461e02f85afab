"""`pantau ingest --processes N`: workers on a shared subscription, restarted when they die."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from ops import mqttauth
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from tests.fixtures.broker import Publisher, login_url
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.polling import wait_for
from tests.fixtures.stack import count_readings

pytestmark = pytest.mark.integration

T0_MS = 1_767_225_600_000


def children_of(pid: int) -> set[int]:
    """The worker processes of supervisor ``pid``: its children that multiprocessing spawned
    (not multiprocessing's resource tracker, its other child)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
                found.add(int(proc.name))
    return found


def test_two_processes_share_the_load_and_a_killed_one_comes_back(stack, db_url, topic_root):
    with psycopg.connect(db_url) as conn:
        load_into(conn, load_fleet())
    env = pantau_env(
        PANTAU_DATABASE_URL=db_url,
        PANTAU_MQTT_URL=stack.mqtt_url,
        PANTAU_TOPIC_ROOT=topic_root,
        PANTAU_INGEST_BATCH_MAX_AGE_MS="50",
    )
    client_id = f"sup-{os.getpid()}"
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "ingest",
            "--processes",
            "2",
            "--client-id",
            client_id,
        ],
        env=env,
    )
    publisher = Publisher(stack.mqtt_url)
    try:
        first = wait_for(
            lambda: (c := children_of(supervisor.pid)) and len(c) == 2 and c, what="2 workers"
        )
        bins = [s.id for s in load_fleet().sensors if s.kind == "waste_bin"][:50]

        def publish(start: int, n: int) -> None:
            for i in range(start, start + n):
                payload = f'{{"ts": {T0_MS + i * 1000}, "fill_pct": {i % 100}}}'.encode()
                publisher.publish(f"{topic_root}/waste_bin/{bins[i % len(bins)]}", payload)

        # Until a worker has subscribed, the broker drops what it gets: probe until one lands,
        # then wait for the probes still in flight, so that the count starts from a known value.
        probes: list[int] = []

        def probe() -> bool:
            probes.append(-1 - len(probes))
            publish(probes[-1], 1)
            return count_readings(db_url) > 0

        wait_for(probe, what="a subscription")
        publisher.wait_all()
        time.sleep(0.5)  # longer than a batch's age: the last probes are committed or dropped
        baseline = count_readings(db_url)
        assert 1 <= baseline <= len(probes)
        publish(0, 2000)
        wait_for(lambda: count_readings(db_url) == baseline + 2000, what="the first 2000 readings")
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        publish(2000, 2000)
        again = wait_for(
            lambda: (c := children_of(supervisor.pid)) and len(c) == 2 and victim not in c and c,
            timeout_s=30,
            what="the killed worker replaced",
        )
        assert len(again - first) == 1
        publisher.wait_all()
        wait_for(
            lambda: count_readings(db_url) == baseline + 4000, timeout_s=60, what="all readings"
        )
    finally:
        publisher.close()
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(timeout=90)
    assert code == 0
    assert children_of(supervisor.pid) == set()


def test_a_misconfigured_group_stops_with_the_childs_error(stack, topic_root):
    env = pantau_env(
        PANTAU_DATABASE_URL="postgresql://pantau@127.0.0.1:1/nowhere",
        PANTAU_MQTT_URL=stack.mqtt_url,
        PANTAU_TOPIC_ROOT=topic_root,
    )
    result = run_pantau("ingest", "--processes", "2", env=env)
    assert result.returncode == 4
    assert "cannot connect to the database" in result.stderr


def test_an_invalid_setting_is_named(stack):
    result = run_pantau(
        "ingest",
        "--processes",
        "0",
        env=pantau_env(PANTAU_MQTT_URL=stack.mqtt_url, PANTAU_DATABASE_URL=stack.database_url),
    )
    assert result.returncode == 2
    assert "setting processes" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_group_whose_login_the_broker_refuses_stops_at_once(stack, db_url, topic_root):
    env = pantau_env(
        PANTAU_DATABASE_URL=db_url,
        PANTAU_MQTT_URL=login_url(stack, mqttauth.INGEST, "not-the-password"),
        PANTAU_TOPIC_ROOT=topic_root,
    )
    # Children that retried the login forever would keep the group up: the timeout fails then.
    result = run_pantau("ingest", "--processes", "2", env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "refused the connection of the account" in result.stderr
    assert "fix: check the account" in result.stderr
    assert "stopping all" in result.stderr
