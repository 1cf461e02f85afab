"""`pantau simulate` against the real broker: load mode says whether it reached its target,
backfill publishes the same stream it writes to a file, per-device connections announce
themselves on their status topics."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ops import mqttauth
from ops.mqttauth import Device
from pantau.registry.fleet import load_fleet
from tests.fixtures.broker import connect_mqtt, device_accounts, login_url
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.integration

START = time.strftime("%Y-%m-%dT00:00:00+07:00", time.gmtime(time.time() - 3 * 86_400))


class Subscriber:
    """Counts messages under ``root``; keeps the last payload of each status topic."""

    def __init__(self, url: str, root: str) -> None:
        self.count = 0
        self.status: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-sub-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.ready.set()
        connect_mqtt(self.client, url)
        self.client.subscribe([(f"{root}/+/+", 1), (f"{root}/+/+/status", 1)])
        self.client.loop_start()
        assert self.ready.wait(10)

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            if message.topic.endswith("/status"):
                self.status[message.topic] = message.payload
            else:
                self.count += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def env(stack, topic_root: str, **extra: str) -> dict[str, str]:
    return pantau_env(
        PANTAU_MQTT_URL=stack.mqtt_url,
        PANTAU_TOPIC_ROOT=topic_root,
        PANTAU_SIM_CLIENT_ID=f"sim-{uuid.uuid4().hex[:6]}",
        **extra,
    )


def test_load_mode_reports_a_reachable_target_as_reached(stack, topic_root):
    sub = Subscriber(stack.mqtt_url, topic_root)
    try:
        result = run_pantau(
            "simulate", "--load", "300", "--duration", "3", "--faults", "0",
            env=env(stack, topic_root),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "load: reached 300 msg/s" in result.stderr
        assert "load    1 s:" in result.stderr
        assert "cannot reach" not in result.stderr
        sent = int(result.stderr.split("(mean ")[1].split()[0].replace(",", "")) * 3
        wait_for(lambda: sub.count >= 0.9 * sent, what="the published messages at the broker")
    finally:
        sub.close()


def test_load_mode_says_when_the_machine_cannot_reach_the_target(stack, topic_root):
    result = run_pantau(
        # 8 s: the warning needs 3 whole seconds below target after start-up, also on a
        # loaded machine (4 s left too few there).
        "simulate", "--load", "50000000", "--load-unit", "readings", "--duration", "8",
        "--sensors", "5000", env=env(stack, topic_root),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "this machine cannot reach 50,000,000 readings/s" in result.stderr
    assert "load: could NOT reach 50,000,000 readings/s" in result.stderr
    assert "Time went to generation" in result.stderr


def test_backfill_publishes_what_it_writes_and_devices_announce_themselves(
    stack, topic_root, tmp_path: Path
):
    fleet = tmp_path / "fleet10.toml"
    # 8 faults per sensor and day: about 20 labels over 10 sensors and 6 h, so "more than 5"
    # holds whatever the fleet file's content does to the random streams.
    common = ("--fleet", str(fleet), "--backfill", "0.25", "--start", START, "--faults", "8")
    written = run_pantau(
        "simulate", "--sensors", "10", "--write-fleet", str(fleet), env=pantau_env()
    )
    assert written.returncode == 0, written.stderr
    out = tmp_path / "stream.txt"
    to_file = run_pantau("simulate", *common, "--output", str(out), env=pantau_env())
    assert to_file.returncode == 0, to_file.stderr
    lines = out.read_text().splitlines()
    telemetry = [line for line in lines if not line.split("\t")[0].endswith("/status")]
    labels = (tmp_path / "stream.txt.labels.csv").read_text().splitlines()
    assert labels[0] == "sensor_id,metric,start,end,kind"
    assert len(labels) > 5
    # Each device connects with its own broker account (the local stack's, as `pantau registry
    # credentials` makes them), which may publish only its own topics.
    devices = [Device(s.id, s.kind) for s in load_fleet(fleet).sensors]
    assert len(device_accounts(stack, topic_root, devices)) == 10
    sub = Subscriber(stack.mqtt_url, topic_root)
    try:
        published = run_pantau(
            "simulate", *common, "--per-device", "--labels", str(tmp_path / "l.csv"),
            env=env(stack, topic_root, PANTAU_STATE_DIR=stack.state_dir),
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        assert "backfill: 0.25 simulated days" in published.stderr
        assert "100.0%" in published.stderr  # the progress bar reached the end
        wait_for(lambda: sub.count == len(telemetry), what=f"{len(telemetry)} messages")
        assert (tmp_path / "l.csv").read_text().splitlines() == labels
        online = [t for t, p in sub.status.items() if p == b"online"]
        assert len(online) >= 8  # every device announced itself (some went offline since)
        assert len(sub.status) == 10
    finally:
        sub.close()


def test_a_refused_login_stops_the_simulator_at_once_with_the_fix(stack, topic_root):
    wrong = login_url(stack, mqttauth.SIMULATOR, "not-the-password")
    result = run_pantau(
        "simulate", "--duration", "600", "--faults", "0",
        env=pantau_env(PANTAU_MQTT_URL=wrong, PANTAU_TOPIC_ROOT=topic_root),
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert mqttauth.SIMULATOR in result.stderr
    assert "fix:" in result.stderr
    assert "not-the-password" not in result.stderr
    assert "Traceback" not in result.stderr
