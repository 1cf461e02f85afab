"""The last-will listener: retained ``<root>/<kind>/<sensor_id>/status`` messages.

Devices set a last will of ``offline`` on that topic (retained) and publish ``online`` when they
connect, so the broker tells us when a device's connection dies. The payload is the bare word or
a JSON object with a ``status`` (or ``state``) field. Heard states wait here until the next run
of the job stores them (:func:`monitor.health.store_wills`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from pantau.mqtt import FailurePolicy, MqttEndpoint
from pantau.topics import parse_status_topic, status_filter

logger = logging.getLogger(__name__)
STATES = frozenset({"online", "offline"})
FIRST_ANSWER_S = 10.0  # how long start() waits for the broker's answer (or a network error)


def parse_status(root: str, topic: str, payload: bytes) -> tuple[str, str] | None:
    """(sensor_id, 'online'|'offline') of a status message, or None if it is not one."""
    parsed = parse_status_topic(root, topic)
    if parsed is None:
        return None
    text = payload.strip()
    state: Any = text.decode("utf-8", "replace").lower()
    if text.startswith(b"{"):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        state = doc.get("status", doc.get("state")) if isinstance(doc, dict) else None
        state = state.lower() if isinstance(state, str) else None
    return (parsed.sensor_id, state) if state in STATES else None


class StatusListener:
    """Subscribes to the status topics on its own connection and collects what it hears."""

    def __init__(self, endpoint: MqttEndpoint, root: str, client_id: str) -> None:
        self.root = root
        self.topic_filter = status_filter(root)
        self.lock = threading.Lock()
        self.heard: dict[str, tuple[str, int]] = {}
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id
        )
        endpoint.configure(self.client)
        self.policy = FailurePolicy(endpoint, where="PANTAU_MQTT_URL")
        self.policy.apply(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.endpoint = endpoint

    def start(self) -> None:
        """Connect in the background; raise if the broker refuses the login at once. A broker
        that cannot be reached is retried in the background."""
        self.client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        self.client.loop_start()
        self.policy.answered.wait(FIRST_ANSWER_S)
        if self.policy.refused.is_set():
            self.stop()
            self.policy.raise_if_refused()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def take(self) -> dict[str, tuple[str, int]]:
        """The states heard since the last call; raises if the broker refused the listener."""
        self.policy.raise_if_refused()
        with self.lock:
            heard, self.heard = self.heard, {}
        return heard

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if self.policy.connected(client, reason):
            client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: list[ReasonCode], props: Any
    ) -> None:
        self.policy.subscribed(client, codes, self.topic_filter)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parsed = parse_status(self.root, msg.topic, bytes(msg.payload))
        if parsed is None:
            return
        with self.lock:
            self.heard[parsed[0]] = (parsed[1], time.time_ns() // 1_000_000)
