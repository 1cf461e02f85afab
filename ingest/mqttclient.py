"""A paho-mqtt client that reads the socket in large chunks and acknowledges in bulk.

paho 2.x reads each packet with one ``recv`` for the command byte, one per byte of the remaining
length and one for the rest, and handles one packet per ``select`` wake-up. For the small QoS 1
messages sensors send, that costs more CPU than everything else the worker does. This subclass
serves paho's small reads from a 64 KiB buffer and keeps handling packets while the buffer holds
any, so one ``recv`` and one wake-up cover hundreds of messages. Nothing else changes: paho still
parses every packet.

Acknowledging a batch one ``ack()`` at a time costs a wake-up of paho's thread and a ``send`` per
message; :meth:`BufferedClient.ack_many` queues the PUBACKs of a whole batch as one write, in
receive order (MQTT 5 section 4.6).

It builds on three methods of paho's ``Client`` (``_sock_recv``, ``loop_read`` and
``_packet_queue``); the version range in pyproject.toml pins the paho releases this was checked
against, and ``tests/ingest/test_mqttclient.py`` fails if their shape changes.

:func:`session_client` builds the worker's client from its settings; the composition
(cli/commands/ingest.py) hands it to the worker as its client factory.
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from ingest.settings import IngestSettings

CHUNK_BYTES = 65536
PUBACK = 0x40


def puback_packets(mids: list[int]) -> bytes:
    """PUBACK packets for ``mids``, concatenated.

    Each is the fixed header (type 4, remaining length 2) and the packet identifier: MQTT 3.1.1
    section 3.4, and MQTT 5 section 3.4.2.1, where a Success reason code with no properties may
    be omitted.
    """
    return b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids)


class BufferedClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object = None

    def _buffered(self) -> int:
        """Bytes received from the current socket and not handed to paho yet."""
        if self._rsock is not self._sock:  # a new connection: nothing buffered belongs to it
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        return len(self._rbuf) - self._rpos

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._buffered() == 0:
            # Raises BlockingIOError when nothing is there, as paho expects; b"" is EOF.
            self._rbuf, self._rpos = super()._sock_recv(CHUNK_BYTES), 0
        chunk = self._rbuf[self._rpos : self._rpos + bufsize]
        self._rpos += len(chunk)
        return chunk

    def close(self) -> None:
        """Close the network socket and paho's wake-up socket pair now.

        paho leaves them to ``Client.__del__``, which a reference cycle can delay to the
        interpreter's last collection (where they are reported as unclosed sockets).
        """
        self._reset_sockets()

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages ``mids`` (in receive order) with one write."""
        if mids:
            self._packet_queue(PUBACK, puback_packets(mids), 0, 0)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        # select() will not wake us for data already in the buffer: handle it now.
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None and self._buffered():
            rc = super().loop_read(1)
        return rc


def session_client(settings: IngestSettings) -> BufferedClient:
    """The worker's client: its fixed client id, manual acknowledgement, the MQTT version of
    ``settings`` and the login and TLS settings of its broker URL.

    A persistent session is MQTT 5's clean start off (given when connecting) or MQTT 3.1.1's
    clean session off, which lasts until the broker's own expiry (Mosquitto:
    persistent_client_expiration).
    """
    if settings.mqtt_version == "5":
        client = BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
    else:
        client = BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=False,
            manual_ack=True,
        )
    settings.resolved_mqtt().configure(client)
    return client
