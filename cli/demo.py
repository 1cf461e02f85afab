"""`pantau demo`: the whole system on one machine, with a live one-line summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from api import apikeys
from ops.credentials import registered_devices
from ops.settings import StackSettings
from ops.stack.local import LocalStack, StackState
from ops.stack.processes import free_port, port_open
from pantau.db.connect import connect
from pantau.db.migrate import migrate
from pantau.masking import mask_url
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into

METRICS_PORT = 9464  # the port commonly assigned to Prometheus exporters of this kind
API_PORT = 8080


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args], env=env, stdout=log, stderr=log
        )


def _prepare(stack: LocalStack) -> StackState:
    """Stack up, schema migrated, fleet loaded."""
    t0 = time.monotonic()
    state = stack.up()
    print(
        f"stack up in {time.monotonic() - t0:.1f} s: {mask_url(state.mqtt_url)}, "
        f"{mask_url(state.database_url)}"
    )
    owner = state.database_urls["owner"]
    for m in migrate(owner):
        print(f"applied migration {m.version:04d}_{m.name}")
    fleet = load_fleet()
    with connect(owner) as conn:
        result = load_into(conn, fleet)
        devices = registered_devices(conn)
    print(f"fleet {fleet.name}: {result.zones} zones, {result.sensors} sensors")
    print("broker: " + stack.write_devices(stack.settings.topic_root, devices, rotate=False))
    return state


def _watch(
    state: StackState,
    children: dict[str, subprocess.Popen[bytes]],
    logs: Path,
    stop: threading.Event,
    deadline: float | None,
) -> int:
    """Print readings/s, rows, rejects, anomalies and alarms every 2 s until stopped; 1 if a
    child died."""
    last_rows, last_t = 0, time.monotonic()
    with connect(state.database_urls["api"], autocommit=True) as conn:  # a read-only login
        while not stop.wait(2.0):
            row = conn.execute(
                "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM rejects), "
                "(SELECT count(*) FROM anomalies), "
                "(SELECT count(*) FROM alarms WHERE state <> 'cleared')"
            ).fetchone()
            rows, rejects, anomalies, alarms = (int(v) for v in row) if row else (0, 0, 0, 0)
            now = time.monotonic()
            rate = (rows - last_rows) / (now - last_t)
            last_rows, last_t = rows, now
            print(
                f"\r{rate:8.0f} readings/s  {rows:10d} rows stored  {rejects:6d} rejects  "
                f"{anomalies:6d} anomalies  {alarms:4d} active alarms",
                end="",
                flush=True,
            )
            for name, child in children.items():
                if child.poll() is not None:
                    tail = (logs / f"{name}.log").read_text(errors="replace").splitlines()[-8:]
                    print(f"\n`pantau {name}` stopped unexpectedly; the end of its log:")
                    print("\n".join("  " + line for line in tail))
                    return 1
            if deadline is not None and now >= deadline:
                break
    return 0


def _demo_key(database_url: str) -> str:
    """An admin API key for this demo (shown once; `pantau api key list` shows them all)."""
    with connect(database_url) as conn:
        key = apikeys.create(conn, "demo", "admin").key
        conn.commit()
    return key


def run_demo(*, speed: float, duration_s: float | None) -> int:
    settings = StackSettings()
    stack = LocalStack(settings)
    was_running = any(line.startswith("running") for line in stack.status().values())
    state = _prepare(stack)
    metrics_port = METRICS_PORT if not port_open(METRICS_PORT) else free_port()
    api_port = API_PORT if not port_open(API_PORT) else free_port()
    api_key = _demo_key(state.database_urls["owner"])
    # No URL in the environment: each command takes its own service's login from stack.json.
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("PANTAU_DATABASE_URL", "PANTAU_MQTT_URL")
        },
        "PANTAU_STATE_DIR": state.state_dir,
        "PANTAU_INGEST_METRICS_PORT": str(metrics_port),
        "PANTAU_API_PORT": str(api_port),
    }
    logs = Path(state.state_dir)
    children = {
        "ingest": _spawn(["ingest"], env, logs / "ingest.log"),
        # Faults that a detector can find; no garbage, so the live line's rejects stay 0 (the
        # ground truth of what was injected is in labels.csv beside the logs).
        "simulate": _spawn(
            [
                "simulate",
                "--speed",
                str(speed),
                "--labels",
                str(logs / "labels.csv"),
                "--fault-kinds",
                "stuck,spike,drift,offline,duplicate,clock_skew,out_of_order",
            ],
            env,
            logs / "simulate.log",
        ),
        "process": _spawn(["process", "--interval", "10"], env, logs / "process.log"),
        "api": _spawn(["api"], env, logs / "api.log"),
    }
    print(
        f"simulating the Jepara fleet at {speed:g}x (from a day ago, catching up to now); "
        f"logs: {logs}/ingest.log, simulate.log, process.log, api.log\n"
        f"API docs:          http://127.0.0.1:{api_port}/docs  (key, role admin: {api_key})\n"
        f'look at the data:  psql "$(pantau stack url grafana)" -c \'SELECT * FROM readings_named '
        "ORDER BY ts DESC LIMIT 20'\n"
        'bins to collect:   psql "$(pantau stack url grafana)" -c \'SELECT * FROM waste_status '
        "WHERE needs_collection'\n"
        'air quality now:   psql "$(pantau stack url grafana)" -c \'SELECT DISTINCT ON '
        "(sensor_key) sensor_key, hour, ispu, category, dominant FROM air_ispu_hourly "
        "ORDER BY sensor_key, hour DESC'\n"
        'watch the traffic: mosquitto_sub -L "$(pantau stack url mqtt-admin)/pantau/v1/#" -v\n'
        f"ingest metrics:    http://127.0.0.1:{metrics_port}/metrics\n"
        "Ctrl-C stops the demo."
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + duration_s if duration_s else None
    try:
        return _watch(state, children, logs, stop, deadline)
    finally:
        print()
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        if not was_running:
            print("stopped: " + ", ".join(stack.down()))
