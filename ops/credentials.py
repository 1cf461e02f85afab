"""`pantau registry credentials`: the broker's password and ACL files from the registry.

Two places to keep them:

- the **local stack** (default): passwords live in ``<state_dir>/secrets.json`` (mode 0600), the
  files in ``<state_dir>/mosquitto/``, and the running broker reloads them (SIGHUP);
- a **deployment** (``--out DIR``, e.g. ``deploy/mosquitto/auth`` for docker-compose): ``passwd``,
  ``acl`` and ``devices.csv`` (the devices' passwords in clear, mode 0600, to provision them)
  are written to DIR; the service accounts' passwords come from the environment
  (``PANTAU_MQTT_INGEST_PASSWORD``, ``..._PROCESS_...``, ``..._SIMULATOR_...``) so that the
  services and the broker agree.

A device keeps its password across runs unless ``--rotate``; a device no longer active in the
registry loses its account. Only the hashed form reaches the broker's files.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow

from ops import mqttauth
from ops.mqttauth import Account, Device
from ops.secretstore import SecretStore, new_password
from pantau.errors import ConfigError
from pantau.topics import telemetry_topic

PASSWD = "passwd"  # noqa: S105 (a file name)
ACL = "acl"
DEVICES_CSV = "devices.csv"


@dataclass(frozen=True)
class Generated:
    accounts: list[Account]
    device_passwords: dict[str, str]
    new_devices: int
    removed_devices: int


def registered_devices(conn: psycopg.Connection[TupleRow]) -> list[Device]:
    rows = conn.execute(
        "SELECT sensor_id, kind FROM sensors WHERE active ORDER BY sensor_id"
    ).fetchall()
    return [Device(str(r[0]), str(r[1])) for r in rows]


def generate(
    root: str,
    devices: Iterable[Device],
    device_passwords: dict[str, str],
    service_passwords: dict[str, str],
    *,
    rotate: bool = False,
) -> Generated:
    """Every account: the services with a password, then one per device (new ones get one)."""
    mqttauth.check_root(root)
    devices = list(devices)
    taken = set(service_passwords) | {mqttauth.ADMIN}
    for d in devices:
        mqttauth.check_name(d.sensor_id, "sensor id")
        if d.sensor_id in taken:
            raise ConfigError(
                f"sensor id {d.sensor_id!r} is the name of a Pantau service account",
                "rename the sensor in the registry",
            )
    passwords = {
        d.sensor_id: (
            device_passwords[d.sensor_id]
            if d.sensor_id in device_passwords and not rotate
            else new_password()
        )
        for d in devices
    }
    new = sum(1 for d in devices if d.sensor_id not in device_passwords)
    removed = len(set(device_passwords) - set(passwords))
    accounts = mqttauth.service_accounts(root, service_passwords, devices)
    accounts += mqttauth.device_accounts(root, devices, passwords)
    return Generated(accounts, passwords, new, removed)


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically, readable by its owner only (``mode``)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_broker_files(directory: Path, accounts: list[Account]) -> tuple[Path, Path]:
    """``passwd`` (hashed) and ``acl`` in ``directory``; the caller gives them to the broker."""
    directory.mkdir(parents=True, exist_ok=True)
    passwd, acl = directory / PASSWD, directory / ACL
    write_private(passwd, mqttauth.render_password_file(accounts))
    write_private(acl, mqttauth.render_acl(accounts))
    return passwd, acl


def devices_csv(devices: Iterable[Device], passwords: dict[str, str], root: str) -> str:
    """sensor_id, kind, username, password, topic: what a device is provisioned with."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sensor_id", "kind", "username", "password", "topic"])
    for d in devices:
        topic = telemetry_topic(root, d.kind, d.sensor_id)
        writer.writerow([d.sensor_id, d.kind, d.sensor_id, passwords[d.sensor_id], topic])
    return out.getvalue()


def read_devices_csv(path: Path) -> dict[str, str]:
    """The device passwords of an earlier ``devices.csv`` (empty when there is none)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    rows = csv.DictReader(io.StringIO(text))
    try:
        return {row["sensor_id"]: row["password"] for row in rows}
    except KeyError as exc:
        raise ConfigError(
            f"{path} has no column {exc}", "remove it to generate new device passwords"
        ) from None


# -- the local stack's store -----------------------------------------------------------------

MQTT_GROUP = "mqtt"
DEVICES_GROUP = "devices"
BROKER_GROUP = "broker"


def local_service_passwords(store: SecretStore) -> dict[str, str]:
    """The local stack's broker service accounts, the operator account included."""
    names = (*mqttauth.SERVICE_ACCOUNTS, mqttauth.ADMIN)
    return {name: store.ensure(MQTT_GROUP, name) for name in names}


def local_devices(store: SecretStore) -> tuple[str, list[Device], dict[str, str]]:
    """The topic root, devices and device passwords the local stack's files were last made of."""
    root = str(store.group(BROKER_GROUP).get("root", "pantau/v1"))
    entries = store.group(DEVICES_GROUP)
    devices = [Device(sid, str(e["kind"])) for sid, e in sorted(entries.items())]
    return root, devices, {sid: str(e["password"]) for sid, e in entries.items()}


def save_local_devices(
    store: SecretStore, root: str, devices: list[Device], passwords: dict[str, str]
) -> None:
    store.put_group(BROKER_GROUP, {"root": root})
    store.put_group(
        DEVICES_GROUP,
        {d.sensor_id: {"kind": d.kind, "password": passwords[d.sensor_id]} for d in devices},
    )


def local_accounts(store: SecretStore) -> list[Account]:
    """Every account of the local stack's broker, as its store last recorded them."""
    root, devices, passwords = local_devices(store)
    return generate(root, devices, passwords, local_service_passwords(store)).accounts
