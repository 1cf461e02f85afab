"""Publishing simulated messages: over MQTT (QoS 1), or as `topic<TAB>payload` lines."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from pantau.errors import ServiceUnavailableError
from pantau.settings import MqttEndpoint
from simulators.fleet import Message

logger = logging.getLogger(__name__)


class Sink(Protocol):
    def send(self, message: Message) -> None: ...
    def close(self) -> None: ...


class MqttSink:
    """A QoS 1 publisher whose inflight window is large enough not to be the bottleneck."""

    def __init__(self, endpoint: MqttEndpoint, client_id: str, max_inflight: int) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if endpoint.username:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.sent = 0
        self.acked = 0
        try:
            self.client.connect(endpoint.host, endpoint.port, keepalive=30)
        except OSError as exc:
            raise ServiceUnavailableError(
                f"cannot connect to the broker at {endpoint.url()}: {exc}",
                "start it with `pantau stack up` or check PANTAU_MQTT_URL",
            ) from exc
        self.client.loop_start()
        if not self._connected.wait(10):
            raise ServiceUnavailableError(
                f"the broker at {endpoint.url()} did not accept the connection", "read its log"
            )

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        if not rc.is_failure:
            self._connected.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        self.acked += 1

    def send(self, message: Message) -> None:
        # While disconnected, paho keeps QoS 1 messages and sends them after reconnecting.
        self.client.publish(message.topic, message.payload, qos=1)
        self.sent += 1

    def close(self, timeout_s: float = 30.0) -> None:
        """Wait for the broker to acknowledge everything sent, then disconnect."""
        deadline = time.monotonic() + timeout_s
        while self.acked < self.sent and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.acked < self.sent:
            logger.warning(
                "%d of %d messages unacknowledged by the broker at exit",
                self.sent - self.acked,
                self.sent,
            )
        self.client.disconnect()
        self.client.loop_stop()


class LineSink:
    """One `topic<TAB>payload` line per message, for inspection, diffs and replay."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def send(self, message: Message) -> None:
        self.out.write(f"{message.topic}\t{message.payload.decode()}\n")

    def close(self) -> None:
        self.out.flush()
