"""`pantau demo`: the whole system on one machine, with a live one-line summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from pantau.db.connect import connect
from pantau.db.migrate import migrate
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from pantau.settings import StackSettings
from pantau.stack.local import LocalStack


def _spawn(args: list[str], env: dict[str, str], log_path: str) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 (the child owns it)
    return subprocess.Popen(
        [sys.executable, "-m", "pantau.cli", *args], env=env, stdout=log, stderr=log
    )


def run_demo(*, speed: float, duration_s: float | None) -> int:
    settings = StackSettings()
    stack = LocalStack(settings)
    was_running = stack.read_state() is not None and "running" in "".join(stack.status().values())
    t0 = time.monotonic()
    state = stack.up()
    print(f"stack up in {time.monotonic() - t0:.1f} s: {state.mqtt_url}, {state.database_url}")
    for m in migrate(state.database_url):
        print(f"applied migration {m.version:04d}_{m.name}")
    fleet = load_fleet()
    with connect(state.database_url) as conn:
        result = load_into(conn, fleet)
    print(f"fleet {fleet.name}: {result.zones} zones, {result.sensors} sensors")

    env = {
        **os.environ,
        "PANTAU_DATABASE_URL": state.database_url,
        "PANTAU_MQTT_URL": state.mqtt_url,
        "PANTAU_STATE_DIR": state.state_dir,
    }
    logs = settings.state_dir.resolve()
    children = [
        _spawn(["ingest"], env, str(logs / "ingest.log")),
        _spawn(["simulate", "--speed", str(speed)], env, str(logs / "simulate.log")),
    ]
    print(
        f"simulating the Jepara fleet at {speed:g}x; logs in {logs}/ingest.log and simulate.log\n"
        f"look at the data:  psql {state.database_url} -c 'SELECT * FROM readings_named "
        "ORDER BY ts DESC LIMIT 20'\n"
        f"watch the traffic: mosquitto_sub -p {state.mqtt_port} -t 'pantau/v1/#' -v\n"
        "Ctrl-C stops the demo."
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + duration_s if duration_s else None
    last_rows, last_t = 0, time.monotonic()
    exit_code = 0
    try:
        with connect(state.database_url, autocommit=True) as conn:
            while not stop.wait(2.0):
                rows = conn.execute("SELECT count(*) FROM readings").fetchone()
                rejects = conn.execute("SELECT count(*) FROM rejects").fetchone()
                n = int(rows[0]) if rows else 0
                now = time.monotonic()
                rate = (n - last_rows) / (now - last_t)
                last_rows, last_t = n, now
                print(
                    f"\r{rate:8.0f} readings/s  {n:10d} rows stored  "
                    f"{int(rejects[0]) if rejects else 0:6d} rejects",
                    end="",
                    flush=True,
                )
                if any(c.poll() is not None for c in children):
                    print("\na demo process stopped unexpectedly; see its log in", logs)
                    exit_code = 1
                    break
                if deadline and now >= deadline:
                    break
    finally:
        print()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        if not was_running:
            print("stopped: " + ", ".join(stack.down()))
    return exit_code
