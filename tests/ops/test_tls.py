"""The optional TLS listener: a real Mosquitto with a certificate made as docs/security.md says,
and the real ingest worker connecting over mqtts:// and storing what a device sent over TLS."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ops.credentials import generate
from ops.mqttauth import INGEST, Device
from ops.stack import install
from ops.stack.mosquitto import Broker, BrokerConfig
from ops.stack.processes import ServiceUser, free_port
from pantau.db.connect import connect
from pantau.mqtt import MqttEndpoint
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from tests.fixtures.ingest import start_worker
from tests.fixtures.polling import wait_for
from tests.fixtures.stack import make_state_dir

pytestmark = pytest.mark.integration


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (docs/security.md, step 1)."""
    ca_key, ca, key, csr, cert = (
        directory / f"{name}{suffix}"
        for suffix in ("-ca.key", "-ca.pem", "-server.key", "-server.csr", "-server.pem")
    )
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN={name} test CA", "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(key), "-out", str(csr))  # fmt: skip
    ext = directory / "san.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return ca, cert, key


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[tuple[BrokerConfig, Path, Path, str]]:
    """A broker with a plain and a TLS listener; yields its config, the right CA, a wrong CA
    and the ingest account's password."""
    directory = make_state_dir("pantau-tls-")
    ca, cert, key = make_certificates(directory, "pantau")
    other_ca, _, _ = make_certificates(directory, "other")
    user = ServiceUser.for_service("mosquitto")
    for path in (cert, key):
        user.own(path)
    config = BrokerConfig(
        port=free_port(),
        directory=directory / "mosquitto",
        tls_port=free_port(),
        tls_certfile=cert,
        tls_keyfile=key,
        tls_cafile=ca,
    )
    toolchain = install.detect()
    assert toolchain.mosquitto is not None
    broker = Broker(toolchain.mosquitto, config, user)
    password = "ingest-" + uuid.uuid4().hex
    accounts = generate("tls/v1", [Device("BIN-TLS-1", "waste_bin")], {}, {INGEST: password})
    broker.write_accounts(accounts.accounts)
    broker.start()
    device_password = accounts.device_passwords["BIN-TLS-1"]
    try:
        yield config, ca, other_ca, password + "|" + device_password
    finally:
        broker.stop()
        shutil.rmtree(directory, ignore_errors=True)


def connack(url: str) -> list[object]:
    """The CONNACK's reason code of connecting to ``url``, in a list."""
    endpoint = MqttEndpoint.parse(url)
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"tls-{uuid.uuid4().hex[:6]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    endpoint.configure(client)
    result: list[object] = []
    client.on_connect = lambda c, u, f, rc, p: result.append(int(rc.value))
    client.on_connect_fail = lambda c, u: result.append("connect failed")
    client.connect(endpoint.host, endpoint.port, keepalive=5)
    client.loop_start()
    try:
        wait_for(lambda: result, timeout_s=10, what="CONNACK or failure")
    finally:
        client.disconnect()
        client.loop_stop()
    return result


def test_the_tls_listener_verifies_and_authenticates(tls_broker):
    config, ca, other_ca, secrets = tls_broker
    ingest_pw = secrets.split("|")[0]
    tls = f"127.0.0.1:{config.tls_port}"
    assert connack(f"mqtts://{INGEST}:{ingest_pw}@{tls}?cafile={ca}") == [0]
    # TLS changes the transport, not who may connect: no login, no entry.
    assert connack(f"mqtts://{tls}?cafile={ca}") == [135]
    # The certificate verifies against our CA and for 127.0.0.1; a client trusting another CA
    # refuses it.
    for trusted, ok in ((ca, True), (other_ca, False)):
        context = ssl.create_default_context(cafile=str(trusted))
        with socket.create_connection(("127.0.0.1", config.tls_port), timeout=5) as raw:
            if ok:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped:
                    assert wrapped.version() in ("TLSv1.2", "TLSv1.3")
            else:
                with pytest.raises(ssl.SSLCertVerificationError):
                    context.wrap_socket(raw, server_hostname="127.0.0.1")
    # A plain MQTT CONNECT on the TLS port gets no CONNACK: the broker hangs up.
    connect_packet = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01a"
    with socket.create_connection(("127.0.0.1", config.tls_port), timeout=5) as raw:
        raw.sendall(connect_packet)
        try:
            answer = raw.recv(16)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"\x20")
    # The same CONNECT on the plain listener is answered (refused: no login).
    with socket.create_connection(("127.0.0.1", config.port), timeout=5) as raw:
        raw.sendall(connect_packet)
        assert raw.recv(4)[:1] == b"\x20"


def test_the_ingest_worker_stores_readings_sent_over_tls(stack, db_url, tls_broker):
    config, ca, _, secrets = tls_broker
    ingest_pw, device_pw = secrets.split("|")
    with connect(db_url) as conn:
        load_into(conn, load_fleet())
        conn.execute(
            "INSERT INTO sensors (sensor_id, kind, expected_interval_s) "
            "VALUES ('BIN-TLS-1', 'waste_bin', 900)"
        )
        conn.commit()
    tls = f"127.0.0.1:{config.tls_port}"
    worker = start_worker(
        stack, db_url, "tls/v1", mqtt_url=f"mqtts://{INGEST}:{ingest_pw}@{tls}?cafile={ca}"
    )
    device = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="BIN-TLS-1",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    MqttEndpoint.parse(f"mqtts://BIN-TLS-1:{device_pw}@{tls}?cafile={ca}").configure(device)
    device.connect("127.0.0.1", config.tls_port)
    device.loop_start()
    try:
        device.publish("tls/v1/waste_bin/BIN-TLS-1", '{"ts": 1795828800, "fill_pct": 55}', qos=1)
        rows = wait_for(lambda: _readings(db_url), what="the reading sent over TLS", timeout_s=20)
        assert rows == [("BIN-TLS-1", "fill_pct", 55.0)]
    finally:
        device.disconnect()
        device.loop_stop()
        worker.shutdown()


def _readings(url: str) -> list[tuple[object, ...]]:
    with connect(url) as conn:
        return conn.execute("SELECT sensor_id, metric, value FROM readings_named").fetchall()
