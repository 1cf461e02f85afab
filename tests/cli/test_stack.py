"""`pantau stack up | status | down` through the real command, on free ports."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from ops.stack.processes import cmdline, free_port, port_open
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.stack import make_state_dir

pytestmark = pytest.mark.integration


def system_server_pids() -> set[int]:
    """The machine's own broker and database servers (not their short-lived backends)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            line = cmdline(int(proc.name))
            if "/etc/mosquitto/" in line or ("postgres" in line and "/var/lib/postgresql" in line):
                pids.add(int(proc.name))
    return pids


@pytest.fixture
def stack_env():
    state_dir = make_state_dir("pantau-stackcli-")
    env = pantau_env(
        PANTAU_STATE_DIR=str(state_dir),
        PANTAU_STACK_MQTT_PORT=str(free_port()),
        PANTAU_STACK_PG_PORT=str(free_port()),
        PANTAU_STACK_FSYNC="false",
    )
    yield state_dir, env
    run_pantau("stack", "down", env=env)
    shutil.rmtree(state_dir, ignore_errors=True)


def test_up_twice_status_down_then_up_again(stack_env, stack):
    state_dir, env = stack_env
    others_before = system_server_pids() | {stack.mosquitto_pid, stack.postgres_pid}

    first = run_pantau("stack", "up", env=env)
    assert first.returncode == 0, first.stderr
    state = json.loads((state_dir / "stack.json").read_text())
    pids = {state["mosquitto_pid"], state["postgres_pid"]}
    assert f"export PANTAU_STATE_DIR={state_dir}" in first.stdout
    secrets = json.loads((state_dir / "secrets.json").read_text())
    passwords = [pw for group in ("database", "mqtt") for pw in secrets[group].values()]
    assert len(passwords) == 9
    assert all(len(pw) >= 32 for pw in passwords)
    # The output names the URLs but shows no password; `stack url` prints one on request.
    assert "***@127.0.0.1" in first.stdout
    assert not any(pw in first.stdout + first.stderr for pw in passwords)
    assert (state_dir / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert (state_dir / "stack.json").stat().st_mode & 0o777 == 0o600
    url = run_pantau("stack", "url", "ingest", env=env)
    assert url.stdout.strip() == state["database_urls"]["ingest"]
    assert url.stdout.startswith(
        f"postgresql://pantau_ingest_user:{secrets['database']['ingest']}@"
    )
    assert port_open(state["mqtt_port"])
    assert port_open(state["pg_port"])

    second = run_pantau("stack", "up", env=env)
    assert second.returncode == 0, second.stderr
    again = json.loads((state_dir / "stack.json").read_text())
    assert {again["mosquitto_pid"], again["postgres_pid"]} == pids  # nothing restarted

    status = run_pantau("stack", "status", env=env)
    assert f"running, pid {state['mosquitto_pid']}" in status.stdout
    assert f"running, pid {state['postgres_pid']}" in status.stdout

    down = run_pantau("stack", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert f"mosquitto (pid {state['mosquitto_pid']})" in down.stdout
    assert f"postgres (pid {state['postgres_pid']})" in down.stdout
    for pid in pids:
        assert str(state_dir) not in cmdline(pid), f"pid {pid} still runs"
    assert not port_open(state["mqtt_port"])
    assert not port_open(state["pg_port"])
    # Other servers on this machine (the system's, the test session's stack) were left alone.
    assert all(cmdline(pid) for pid in others_before)
    assert "not running" in run_pantau("stack", "status", env=env).stdout

    third = run_pantau("stack", "up", env=env)
    assert third.returncode == 0, third.stderr
    restarted = json.loads((state_dir / "stack.json").read_text())
    assert port_open(restarted["mqtt_port"])
    assert port_open(restarted["pg_port"])
    # The data directory was kept: the cluster is the same one, and so are the passwords.
    assert (state_dir / "postgres/data/PG_VERSION").exists()
    assert restarted["database_urls"] == state["database_urls"]
    assert restarted["mqtt_url"].rsplit(":", 1)[0] == state["mqtt_url"].rsplit(":", 1)[0]


def test_port_taken_by_another_program_is_a_clear_error(stack_env):
    _, env = stack_env
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        env = {**env, "PANTAU_STACK_MQTT_PORT": str(blocker.getsockname()[1])}
        result = run_pantau("stack", "up", env=env)
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert "PANTAU_STACK_MQTT_PORT" in result.stderr
