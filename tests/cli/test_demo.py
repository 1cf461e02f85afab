"""`pantau demo`: the whole system from nothing, readings flowing, everything stopped after."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from ops.stack.processes import free_port, port_open
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.stack import make_state_dir

pytestmark = pytest.mark.integration


def test_demo_stores_readings_and_cleans_up():
    state_dir = make_state_dir("pantau-demo-")
    mqtt_port, pg_port = free_port(), free_port()
    env = pantau_env(
        PANTAU_STATE_DIR=str(state_dir),
        PANTAU_STACK_MQTT_PORT=str(mqtt_port),
        PANTAU_STACK_PG_PORT=str(pg_port),
        PANTAU_STACK_FSYNC="false",
    )
    try:
        result = run_pantau("demo", "--duration", "10", "--speed", "600", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "sensors" in result.stdout
        assert "/metrics" in result.stdout
        assert "/docs  (key, role admin: pantau_" in result.stdout  # the API ran throughout
        stored = [int(n) for n in re.findall(r"(\d+) rows stored", result.stdout)]
        assert stored, result.stdout
        assert stored[-1] > 1000, result.stdout
        rejects = [int(n) for n in re.findall(r"(\d+) rejects", result.stdout)]
        assert rejects[-1] == 0, result.stdout
        # The demo started the stack, so it stopped it.
        assert not (state_dir / "stack.json").exists()
        assert not port_open(mqtt_port)
        assert not port_open(pg_port)
    finally:
        if (state_dir / "stack.json").exists():
            subprocess.run(
                [sys.executable, "-m", "cli.main", "stack", "down"], env=env, check=False
            )
            print(json.loads((state_dir / "stack.json").read_text()))
        shutil.rmtree(state_dir, ignore_errors=True)
