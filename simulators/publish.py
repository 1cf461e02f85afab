"""Publishing simulated messages: over MQTT (QoS 1), or as `topic<TAB>payload` lines.

:class:`MqttSink` is one connection for the whole fleet (a gateway, or a test harness);
:class:`PerDeviceSink` opens one connection per sensor, with the device's own client id,
credentials and a last will (retained ``offline`` on ``<root>/<kind>/<id>/status``), as real
devices would. Both publish at QoS 1 and bound the messages awaiting a PUBACK: when the
window is full, ``send`` waits (flow control) instead of queueing without limit in paho.

Every connection follows Pantau's MQTT failure policy (:class:`pantau.mqtt.FailurePolicy`):
paho reconnects after network errors, and a login the broker refuses ends the simulation with
a ConfigError that says what to check, at once when connecting and at the next ``send`` later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from pantau.errors import ConfigError, ServiceUnavailableError
from pantau.mqtt import FailurePolicy, MqttEndpoint
from simulators.payloads import Message

logger = logging.getLogger(__name__)

MAX_DEVICES = 2000  # one paho network thread per connection
CONNECT_TIMEOUT_S = 10.0
GATEWAY_LOGIN = "PANTAU_SIM_USERNAME/PASSWORD or PANTAU_MQTT_URL"
DEVICE_LOGIN = "the devices' accounts (`pantau registry credentials`, PANTAU_SIM_CREDENTIALS_FILE)"


class Sink(Protocol):
    def send(self, message: Message) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    # Each device's own password (username = its sensor id), from `pantau registry credentials`.
    devices: Mapping[str, str] | None = None

    def for_device(self, sensor_id: str) -> Credentials:
        """The device's own account, else ``{sensor_id}`` replaced in the username/password."""
        if self.devices is not None:
            if sensor_id not in self.devices:
                raise ConfigError(
                    f"sensor {sensor_id} has no broker account",
                    "run `pantau registry credentials` after loading the registry",
                )
            return Credentials(sensor_id, self.devices[sensor_id])
        return Credentials(
            self.username.replace("{sensor_id}", sensor_id) if self.username else None,
            self.password.replace("{sensor_id}", sensor_id) if self.password else None,
        )


class _Window:
    """Counts messages sent and acknowledged; ``wait_room`` blocks while ``limit`` are pending."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent = 0
        self.acked = 0
        self.refused = 0  # PUBACKs with a failure reason code (MQTT 5), e.g. not authorised
        self.refusal = ""
        self.wait_s = 0.0  # time spent waiting for PUBACKs
        self._cond = threading.Condition()

    def on_ack(self, client: Any, userdata: Any, mid: int, reason: ReasonCode, props: Any) -> None:
        with self._cond:
            self.acked += 1
            if reason.is_failure:
                self.refused += 1
                self.refusal = str(reason)
            self._cond.notify_all()

    def check_refused(self) -> None:
        """Raise when the broker refused messages: a simulation it dropped is no simulation."""
        if self.refused:
            raise ConfigError(
                f"the broker refused {self.refused:,} of {self.sent:,} messages ({self.refusal})",
                "an account may publish only the topics of registered sensors: load the fleet "
                "being simulated (`pantau simulate --write-fleet FILE`, `pantau registry load "
                "FILE`), which also gives its sensors broker accounts on the local stack",
            )

    def wait_room(self) -> None:
        if self.sent - self.acked < self.limit:
            return
        t0 = time.perf_counter()
        with self._cond:
            while self.sent - self.acked >= self.limit:
                self._cond.wait(0.5)
        self.wait_s += time.perf_counter() - t0

    def drain(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.acked < self.sent and time.monotonic() < deadline:
                self._cond.wait(0.1)
        return self.acked >= self.sent


def _client(
    endpoint: MqttEndpoint, client_id: str, creds: Credentials, inflight: int, policy: FailurePolicy
) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    endpoint.configure(client, creds.username, creds.password)
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    policy.apply(client)
    return client


def _connect(
    client: mqtt.Client, endpoint: MqttEndpoint, ready: threading.Event, policy: FailurePolicy
) -> None:
    """Connect and start ``client``'s network thread; raise unless the broker accepts it."""
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=30)
    except OSError as exc:
        raise ServiceUnavailableError(
            f"cannot connect to the broker at {endpoint.url()}: {exc}",
            "start it with `pantau stack up` or check PANTAU_MQTT_URL",
        ) from exc
    client.loop_start()
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not ready.wait(0.05) and not policy.refused.is_set():
        if time.monotonic() > deadline:
            break
    if policy.refused.is_set():
        client.loop_stop()
        policy.raise_if_refused()
    if not ready.is_set():
        client.loop_stop()
        raise ServiceUnavailableError(
            f"the broker at {endpoint.url()} did not accept the connection of "
            f"{client._client_id.decode()!r}",  # paho has no public getter
            "check the credentials (PANTAU_SIM_USERNAME/PASSWORD or the URL) and the broker log",
        )


class MqttSink:
    """One QoS 1 connection; at most ``max_inflight`` messages await their PUBACK."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_id: str,
        max_inflight: int,
        credentials: Credentials | None = None,
    ) -> None:
        creds = credentials or Credentials()
        self.window = _Window(max_inflight)
        self.policy = FailurePolicy(endpoint, GATEWAY_LOGIN, creds.username)
        self.client = _client(endpoint, client_id, creds, max_inflight, self.policy)
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self.window.on_ack
        _connect(self.client, endpoint, self._connected, self.policy)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        if self.policy.connected(client, rc):
            self._connected.set()

    @property
    def sent(self) -> int:
        return self.window.sent

    @property
    def acked(self) -> int:
        return self.window.acked

    def send(self, message: Message) -> None:
        # While disconnected, paho keeps QoS 1 messages and sends them after reconnecting.
        self.policy.raise_if_refused()
        self.window.wait_room()
        self.client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        self.window.sent += 1

    def close(self, timeout_s: float = 30.0) -> None:
        """Wait for the broker to acknowledge everything sent, then disconnect."""
        if not self.window.drain(timeout_s):
            logger.warning(
                "%d of %d messages unacknowledged by the broker at exit",
                self.window.sent - self.window.acked,
                self.window.sent,
            )
        self.client.disconnect()
        self.client.loop_stop()
        self.window.check_refused()


class PerDeviceSink:
    """One connection per sensor: client id ``<prefix>-<sensor_id>``, the device's own
    credentials, and a last will (retained ``offline`` on its status topic); ``online`` is
    published retained on connecting. The broker's PUBACKs are shared in one window."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_prefix: str,
        devices: Sequence[tuple[str, str]],
        max_inflight: int,
        credentials: Credentials,
    ) -> None:
        """``devices``: (sensor id, status topic) of every sensor."""
        if len(devices) > MAX_DEVICES:
            raise ConfigError(
                f"--per-device would open {len(devices)} connections (at most {MAX_DEVICES})",
                "use a smaller fleet (--sensors), or one gateway connection (drop --per-device)",
            )
        self.window = _Window(max_inflight)
        self.clients: dict[str, mqtt.Client] = {}
        self.policies: dict[str, FailurePolicy] = {}
        per_client = max(10, max_inflight // max(len(devices), 1))
        where = GATEWAY_LOGIN if credentials.devices is None else DEVICE_LOGIN
        try:
            for sensor_id, status_topic in devices:
                creds = credentials.for_device(sensor_id)
                policy = FailurePolicy(endpoint, where, creds.username)
                client = _client(
                    endpoint, f"{client_prefix}-{sensor_id}", creds, per_client, policy
                )
                client.will_set(status_topic, b"offline", qos=1, retain=True)
                ready = threading.Event()
                client.on_connect = _announce(ready, status_topic, policy)
                client.on_publish = self.window.on_ack
                _connect(client, endpoint, ready, policy)
                self.clients[sensor_id] = client
                self.policies[sensor_id] = policy
        except Exception:
            self._stop_all()
            raise

    @property
    def sent(self) -> int:
        return self.window.sent

    @property
    def acked(self) -> int:
        return self.window.acked

    def send(self, message: Message) -> None:
        self.policies[message.sensor_id].raise_if_refused()
        self.window.wait_room()
        client = self.clients[message.sensor_id]
        client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        self.window.sent += 1

    def _stop_all(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()

    def close(self, timeout_s: float = 30.0) -> None:
        if not self.window.drain(timeout_s):
            logger.warning("%d messages unacknowledged at exit", self.sent - self.acked)
        self._stop_all()
        self.window.check_refused()


def _announce(ready: threading.Event, status_topic: str, policy: FailurePolicy) -> Any:
    def on_connect(
        client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        if not policy.connected(client, rc):
            return
        # QoS 0: an announcement has no PUBACK to count against the window.
        client.publish(status_topic, b"online", qos=0, retain=True)
        ready.set()

    return on_connect


class LineSink:
    """One `topic<TAB>payload` line per message, for inspection, diffs and replay."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.sent = 0
        self.acked = 0

    def send(self, message: Message) -> None:
        self.out.write(f"{message.topic}\t{message.payload.decode()}\n")
        self.sent += 1
        self.acked += 1

    def close(self) -> None:
        self.out.flush()
