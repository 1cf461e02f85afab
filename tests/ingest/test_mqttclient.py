"""The buffered paho client: PUBACK encoding, and the paho internals it builds on."""

from __future__ import annotations

import inspect
import struct

import paho.mqtt.client as mqtt
from hypothesis import given
from hypothesis import strategies as st

from ingest.mqttclient import BufferedClient, puback_packets


@given(st.lists(st.integers(1, 65535), max_size=50))
def test_puback_packets_match_the_spec_layout(mids):
    expected = b"".join(struct.pack(">BBH", 0x40, 2, mid) for mid in mids)
    assert puback_packets(mids) == expected


def test_the_paho_methods_it_overrides_keep_their_shape():
    # If a paho release renames or reshapes these, the buffered client must be re-checked.
    assert list(inspect.signature(mqtt.Client._sock_recv).parameters) == ["self", "bufsize"]
    assert list(inspect.signature(mqtt.Client.loop_read).parameters) == ["self", "max_packets"]
    assert list(inspect.signature(mqtt.Client._packet_queue).parameters)[:5] == [
        "self", "command", "packet", "mid", "qos",
    ]  # fmt: skip
    source = inspect.getsource(mqtt.Client._packet_read)
    assert "self._sock_recv(1)" in source  # the per-byte reads the buffer serves
    assert list(inspect.signature(mqtt.Client._reset_sockets).parameters) == [
        "self", "sockpair_only",
    ]  # fmt: skip


def test_a_new_socket_discards_what_the_old_one_left():
    client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id="t")
    client._rbuf, client._rpos, client._rsock = b"stale", 0, object()
    assert client._buffered() == 0  # client._sock is None: a different socket
