"""Last wills through the real broker: a device's dropped connection reaches `pantau process`."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from monitor.status import StatusListener, parse_status
from ops import mqttauth
from pantau.errors import ConfigError
from pantau.mqtt import MqttEndpoint
from tests.fixtures.broker import Publisher, connect_mqtt, login_url
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.integration


def test_parse_status_accepts_words_and_json_and_nothing_else():
    root = "r/v1"
    assert parse_status(root, "r/v1/waste_bin/b-1/status", b"offline") == ("b-1", "offline")
    assert parse_status(root, "r/v1/footfall/f/status", b' {"status": "Online"} ') == (
        "f",
        "online",
    )
    assert parse_status(root, "r/v1/footfall/f/status", b'{"state": "offline"}') == (
        "f",
        "offline",
    )
    assert parse_status(root, "r/v1/waste_bin/b-1", b"offline") is None  # telemetry topic
    assert parse_status(root, "r/v1/tractor/b-1/status", b"offline") is None
    assert parse_status(root, "r/v1/waste_bin/b-1/status", b"sleepy") is None
    assert parse_status(root, "r/v1/waste_bin/b-1/status", b"{broken") is None


def test_listener_hears_a_retained_status_and_a_real_last_will(stack, topic_root):
    # A status retained before the listener connects is delivered when it subscribes.
    publisher = Publisher(stack.mqtt_url)
    publisher.client.publish(f"{topic_root}/air_quality/aq-9/status", b"online", qos=1, retain=True)
    publisher.wait_all()
    listener = StatusListener(
        MqttEndpoint.parse(stack.mqtt_url), topic_root, f"test-status-{topic_root[-6:]}"
    )
    listener.start()
    try:
        heard = wait_for(listener.take, what="the retained status")
        assert heard["aq-9"][0] == "online"
        # A device whose connection dies: the broker publishes its last will.
        device = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="bin-with-will"
        )
        device.will_set(f"{topic_root}/waste_bin/bin-7/status", b"offline", qos=1, retain=True)
        connect_mqtt(device, stack.mqtt_url, keepalive=5)
        device.loop_start()
        wait_for(device.is_connected, what="the device connection")
        device.loop_stop()
        sock = device.socket()
        assert sock is not None
        sock.close()  # no DISCONNECT packet: the broker must send the will
        heard = wait_for(listener.take, what="the last will")
        assert heard == {"bin-7": ("offline", heard["bin-7"][1])}
    finally:
        listener.stop()
        publisher.client.publish(f"{topic_root}/air_quality/aq-9/status", b"", retain=True)
        publisher.client.publish(f"{topic_root}/waste_bin/bin-7/status", b"", retain=True)
        publisher.close()


def test_a_refused_login_is_an_error_with_the_fix_not_a_silent_listener(stack, topic_root):
    """The listener of `pantau process` with a wrong password used to connect, be refused and
    never subscribe, silently; now start() raises the broker's refusal with what to check."""
    wrong = login_url(stack, mqttauth.PROCESS, "not-the-password")
    listener = StatusListener(
        MqttEndpoint.parse(wrong), topic_root, f"test-refused-{topic_root[-6:]}"
    )
    with pytest.raises(ConfigError, match=mqttauth.PROCESS) as info:
        listener.start()
    listener.stop()
    assert "password" in info.value.fix
    assert "not-the-password" not in f"{info.value.problem} {info.value.fix}"


def test_process_with_a_wrong_broker_password_exits_with_the_fix(stack, db_url, topic_root):
    wrong = login_url(stack, mqttauth.PROCESS, "not-the-password")
    env = pantau_env(
        PANTAU_DATABASE_URL=db_url, PANTAU_MQTT_URL=wrong, PANTAU_TOPIC_ROOT=topic_root
    )
    result = run_pantau("process", "--interval", "5", env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "fix:" in result.stderr
    assert "not-the-password" not in result.stderr
    assert "Traceback" not in result.stderr
