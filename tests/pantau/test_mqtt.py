"""The MQTT failure policy: which refusals are fatal (with what fix) and which are retried; and
the policy on a real paho client against the real broker."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ops import mqttauth
from ops.stack.processes import free_port
from pantau.errors import ConfigError
from pantau.mqtt import FailurePolicy, MqttEndpoint, connack_refusal, suback_refusal
from tests.fixtures.broker import login_url
from tests.fixtures.polling import wait_for

ENDPOINT = MqttEndpoint("broker.example", 1883, "pantau-ingest", "s3cret")
ANONYMOUS = MqttEndpoint("broker.example", 1883)
WHERE = "PANTAU_MQTT_URL"


@pytest.mark.parametrize("code", [0x86, 4])  # MQTT 5 "Bad user name or password", 3.1.1's 4
def test_a_bad_login_is_fatal_and_says_to_check_the_password(code: int) -> None:
    error = connack_refusal(code, ENDPOINT, WHERE)
    assert isinstance(error, ConfigError)
    assert "refused the connection of the account 'pantau-ingest'" in error.problem
    assert "Bad user name or password" in error.problem
    assert error.fix == "check the user name 'pantau-ingest' and its password in PANTAU_MQTT_URL"


@pytest.mark.parametrize("code", [0x87, 5])  # "Not authorized" in MQTT 5 and in 3.1.1
def test_not_authorized_is_fatal_and_names_the_account_its_password_and_its_acl(code: int) -> None:
    error = connack_refusal(code, ENDPOINT, WHERE)
    assert isinstance(error, ConfigError)
    assert error.problem.endswith(": Not authorized")
    assert "'pantau-ingest'" in error.fix
    assert "password in PANTAU_MQTT_URL" in error.fix
    assert "ACL" in error.fix


def test_an_anonymous_client_is_told_to_log_in() -> None:
    error = connack_refusal(0x87, ANONYMOUS, WHERE)
    assert error is not None
    assert "an anonymous client" in error.problem
    assert error.fix.startswith("give a user name and password in PANTAU_MQTT_URL")


def test_the_login_given_apart_from_the_url_is_the_one_named() -> None:
    error = connack_refusal(0x86, ANONYMOUS, "PANTAU_SIM_USERNAME/PASSWORD", username="gw-1")
    assert error is not None
    assert "'gw-1'" in error.problem
    assert "PANTAU_SIM_USERNAME/PASSWORD" in error.fix


def test_no_password_in_the_error() -> None:
    for code in (0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C):
        error = connack_refusal(code, ENDPOINT, WHERE)
        assert error is not None, hex(code)
        assert "s3cret" not in str(error)


@pytest.mark.parametrize(("v311", "v5"), [(1, 0x84), (2, 0x85), (4, 0x86), (5, 0x87)])
def test_mqtt_3_1_1_return_codes_mean_what_their_mqtt_5_codes_mean(v311: int, v5: int) -> None:
    assert str(connack_refusal(v311, ENDPOINT, WHERE)) == str(connack_refusal(v5, ENDPOINT, WHERE))


@pytest.mark.parametrize(
    "code",
    [
        0x00,  # success
        3,  # 3.1.1: server unavailable
        0x80,  # unspecified error
        0x88,  # server unavailable
        0x89,  # server busy
        0x97,  # quota exceeded
        0x9C,  # use another server
        0x9D,  # server moved
        0x9F,  # connection rate exceeded
    ],
)
def test_refusals_that_may_pass_are_retried(code: int) -> None:
    assert connack_refusal(code, ENDPOINT, WHERE) is None


def test_granted_subscriptions_are_no_refusal() -> None:
    assert suback_refusal([0, 1, 2], "r/v1/+/+", ENDPOINT, WHERE) is None
    assert suback_refusal([], "r/v1/+/+", ENDPOINT, WHERE) is None


@pytest.mark.parametrize("code", [0x87, 0x80])  # MQTT 5 "Not authorized"; 3.1.1's "Failure"
def test_a_refused_subscription_is_fatal_and_points_at_the_acl(code: int) -> None:
    error = suback_refusal([1, code], "$share/g/r/v1/+/+", ENDPOINT, WHERE)
    assert isinstance(error, ConfigError)
    assert "refused the subscription of the account 'pantau-ingest' to $share/g/r/v1/+/+" in (
        error.problem
    )
    assert "ACL" in error.fix
    assert "reading $share/g/r/v1/+/+" in error.fix


def test_a_broker_without_shared_subscriptions_is_named() -> None:
    error = suback_refusal([0x9E], "$share/g/r/v1/+/+", ENDPOINT, WHERE)
    assert error is not None
    assert "Shared subscriptions not supported" in error.problem


# -- on a real client ------------------------------------------------------------------------


def policed_client(url: str) -> tuple[mqtt.Client, FailurePolicy, str]:
    endpoint = MqttEndpoint.parse(url)
    client_id = f"test-policy-{uuid.uuid4().hex[:8]}"
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    endpoint.configure(client)
    policy = FailurePolicy(endpoint, WHERE)
    policy.apply(client)
    client.on_connect = lambda c, u, flags, rc, props: policy.connected(c, rc)
    client.connect_async(endpoint.host, endpoint.port, keepalive=30)
    client.loop_start()
    return client, policy, client_id


def network_thread_alive(client_id: str) -> bool:
    return any(t.name == f"paho-mqtt-client-{client_id}" for t in threading.enumerate())


@pytest.mark.integration
def test_a_refused_login_stops_the_client_and_is_raised(stack) -> None:
    url = login_url(stack, mqttauth.INGEST, "not-the-password")
    client, policy, client_id = policed_client(url)
    try:
        assert policy.refused.wait(10), "the refusal was not kept"
        with pytest.raises(ConfigError, match="refused the connection of the account"):
            policy.raise_if_refused()
        # paho stops reconnecting: its network thread ends.
        wait_for(lambda: not network_thread_alive(client_id), what="the network thread's end")
    finally:
        client.loop_stop()


@pytest.mark.integration
def test_a_broker_that_cannot_be_reached_is_retried() -> None:
    client, policy, client_id = policed_client(f"mqtt://127.0.0.1:{free_port()}")
    try:
        assert policy.answered.wait(10), "connecting did not fail"
        assert not policy.refused.is_set()
        policy.raise_if_refused()  # nothing to raise: still trying
        assert network_thread_alive(client_id)
    finally:
        client.loop_stop()
