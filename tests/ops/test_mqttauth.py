"""Broker accounts, ACL and password files (pure), and the secret-handling settings."""

from __future__ import annotations

import base64
import re
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.settings import IngestSettings
from ops import mqttauth
from ops.credentials import devices_csv, generate
from ops.mqttauth import Account, Device, Grant
from pantau.errors import ConfigError
from pantau.masking import is_placeholder
from pantau.mqtt import MqttEndpoint
from simulators.settings import SimulateSettings

ROOT = "pantau/v1"
DEVICES = [Device("BIN-1", "waste_bin"), Device("AQ-1", "air_quality"), Device("FF.2", "footfall")]
SERVICES = {mqttauth.INGEST: "i" * 32, mqttauth.PROCESS: "p" * 32, mqttauth.SIMULATOR: "s" * 32}


# No NUL: HMAC pads keys with zero bytes, so "" and "\x00" are the same key (and no password
# file or MQTT client carries a NUL in a password).
PASSWORDS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)


@given(PASSWORDS, PASSWORDS)
def test_a_hash_verifies_its_password_and_no_other(password: str, other: str) -> None:
    encoded = mqttauth.hash_password(password)
    assert mqttauth.verify_password(password, encoded)
    assert mqttauth.verify_password(other, encoded) == (other == password)


def test_the_hash_has_mosquittos_layout() -> None:
    encoded = mqttauth.hash_password("pw", salt=b"\x00" * 12)
    match = re.fullmatch(r"\$7\$101\$([A-Za-z0-9+/=]{16})\$([A-Za-z0-9+/=]{88})", encoded)
    assert match is not None
    assert base64.b64decode(match[1]) == b"\x00" * 12
    assert len(base64.b64decode(match[2])) == 64  # SHA-512
    # A random salt each time: the same password never hashes the same twice.
    assert mqttauth.hash_password("pw") != mqttauth.hash_password("pw")


def parse_acl(text: str) -> dict[str, list[tuple[str, str]]]:
    """Reference reading of an ACL file, as Mosquitto reads it."""
    users: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, rest = line.split(" ", 1)
        if word == "user":
            current = rest
            users[current] = []
        else:
            assert word == "topic", line  # no `pattern` lines
            assert current is not None, "a topic line before any user applies to anonymous"
            access, topic = rest.split(" ", 1)
            users[current].append((access, topic))
    return users


def test_devices_write_their_own_topics_and_services_what_they_need() -> None:
    generated = generate(ROOT, DEVICES, {}, SERVICES)
    acl = parse_acl(mqttauth.render_acl(generated.accounts))
    assert acl["BIN-1"] == [("write", f"{ROOT}/waste_bin/BIN-1"),
                            ("write", f"{ROOT}/waste_bin/BIN-1/status")]  # fmt: skip
    assert acl[mqttauth.INGEST] == [("read", f"{ROOT}/+/+")]
    assert acl[mqttauth.PROCESS] == [("read", f"{ROOT}/+/+/status")]
    # The simulator is a gateway for exactly the registered devices, writing only.
    assert sorted(acl[mqttauth.SIMULATOR]) == sorted(g for d in DEVICES for g in acl[d.sensor_id])
    assert mqttauth.ADMIN not in acl  # only when given a password (the local stack)
    # No account reads and writes, and only the two readers read.
    readers = {u for u, grants in acl.items() if any(a != "write" for a, _ in grants)}
    assert readers == {mqttauth.INGEST, mqttauth.PROCESS}
    passwd = mqttauth.render_password_file(generated.accounts).splitlines()
    assert [line.split(":", 1)[0] for line in passwd] == list(acl)
    for line in passwd:
        user, encoded = line.split(":", 1)
        password = SERVICES.get(user) or generated.device_passwords[user]
        assert mqttauth.verify_password(password, encoded)
        assert password not in line


def test_device_passwords_are_kept_rotated_and_dropped() -> None:
    first = generate(ROOT, DEVICES, {}, SERVICES)
    assert first.new_devices == 3
    assert len(set(first.device_passwords.values())) == 3
    again = generate(ROOT, DEVICES[:2], first.device_passwords, SERVICES)
    assert again.device_passwords == {k: first.device_passwords[k] for k in ("BIN-1", "AQ-1")}
    assert (again.new_devices, again.removed_devices) == (0, 1)
    rotated = generate(ROOT, DEVICES, first.device_passwords, SERVICES, rotate=True)
    assert all(rotated.device_passwords[k] != v for k, v in first.device_passwords.items())
    csv_text = devices_csv(DEVICES, first.device_passwords, ROOT)
    assert csv_text.splitlines()[1] == (
        f"BIN-1,waste_bin,BIN-1,{first.device_passwords['BIN-1']},{ROOT}/waste_bin/BIN-1"
    )


def test_names_and_roots_that_a_broker_file_could_misread_are_refused() -> None:
    for bad in ("a:b", "a b", "a#", "a+", "a\nuser x", "", "-x", "x" * 65):
        with pytest.raises(ValueError, match="not usable"):
            mqttauth.check_name(bad)
    for root in ("a/+/b", "a/#", "a b", "/a", "a//b"):
        with pytest.raises(ValueError, match="not usable in an ACL"):
            mqttauth.check_root(root)
    with pytest.raises(ConfigError, match="service account"):
        generate(ROOT, [Device(mqttauth.INGEST, "waste_bin")], {}, SERVICES)
    with pytest.raises(ConfigError, match="service account"):
        generate(ROOT, [Device(mqttauth.ADMIN, "waste_bin")], {}, SERVICES)


@given(st.text(max_size=30))
def test_an_account_name_is_accepted_only_without_file_syntax(name: str) -> None:
    try:
        mqttauth.check_name(name)
    except ValueError:
        return
    assert not set(name) & set(": \t\n\r#+/$")
    mqttauth.render_acl([Account(name, "pw", (Grant("write", "x"),))])


def test_mqtts_urls_carry_tls_and_the_ca() -> None:
    endpoint = MqttEndpoint.parse("mqtts://dev:pw@broker.example:8884?cafile=/etc/ca.pem")
    assert (endpoint.tls, endpoint.ca_file, endpoint.port) == (True, "/etc/ca.pem", 8884)
    assert MqttEndpoint.parse("mqtts://broker").port == 8883
    assert MqttEndpoint.parse("mqtt://broker").port == 1883
    assert endpoint.url() == "mqtts://dev:***@broker.example:8884"
    with pytest.raises(ConfigError, match="needs TLS"):
        MqttEndpoint.parse("mqtt://broker?cafile=/x")


def test_placeholders_are_refused_in_production_only() -> None:
    url = "postgresql://pantau_ingest_user:change-me@db:5432/pantau"
    IngestSettings(database_url=url).refuse_placeholders()  # development: allowed
    with pytest.raises(ConfigError, match="database_url has a placeholder"):
        IngestSettings(database_url=url, environment="production").refuse_placeholders()
    with pytest.raises(ConfigError, match="mqtt_url has a placeholder or empty"):
        IngestSettings(
            mqtt_url="mqtt://broker:1883", environment="production"
        ).refuse_placeholders()
    with pytest.raises(ConfigError, match="password has a placeholder"):
        SimulateSettings(
            mqtt_url="mqtt://u:" + secrets.token_hex(16) + "@b", password="CHANGE-ME",
            environment="production",
        ).refuse_placeholders()  # fmt: skip
    IngestSettings(
        database_url=f"postgresql://u:{secrets.token_hex(16)}@db/p",
        mqtt_url=f"mqtt://u:{secrets.token_hex(16)}@broker",
        environment="production",
    ).refuse_placeholders()
    assert is_placeholder("")
    assert is_placeholder("  Change-Me ")
    assert not is_placeholder("x9Q")


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
               min_size=8, max_size=40).map(lambda t: f"Q7{t}9z"))  # fmt: skip
def test_masked_settings_show_no_password(password: str) -> None:
    # (Q7...9z: a password that is also a field name, e.g. "database_url", would be "shown".)
    settings = SimulateSettings(
        database_url=f"postgresql://user:{password}@db:5432/pantau",
        mqtt_url=f"mqtt://dev:{password}@broker:1883",
        password=password,
    )
    shown = repr(settings.masked()) + repr(settings) + str(settings.model_dump())
    assert password not in shown
    assert settings.masked()["password"] == "***"
    assert settings.masked()["mqtt_url"] == "mqtt://dev:***@broker:1883"
