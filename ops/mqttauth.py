"""Broker accounts: Mosquitto's password file (hashed) and ACL file, from the registry. Pure.

Who may do what on the broker (``<root>`` is the topic root, ``pantau/v1`` by default):

- a **device** (username = its sensor id) may publish its own telemetry ``<root>/<kind>/<id>``
  and its own status ``<root>/<kind>/<id>/status``, and read nothing;
- a **gateway** (the simulator's ``pantau-simulator`` is one) may publish the telemetry and
  status of the sensors it serves, each named in the ACL, and read nothing;
- **pantau-ingest** may read telemetry ``<root>/+/+`` and publish nothing;
- **pantau-process** may read the status topics ``<root>/+/+/status`` and publish nothing;
- **pantau-admin** (the local development stack only, never in a deployment) may read and write
  everything: tests, benchmarks and debugging use it.

Anything not granted is refused; anonymous clients are refused. Passwords are stored the way
``mosquitto_passwd`` stores them: PBKDF2-HMAC-SHA512 with a random 12-byte salt and 101
iterations (``$7$101$<salt>$<hash>``, base64), which Mosquitto 2.0 reads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pantau.topics import status_filter, status_topic, telemetry_filter, telemetry_topic

ADMIN = "pantau-admin"
INGEST = "pantau-ingest"
PROCESS = "pantau-process"
SIMULATOR = "pantau-simulator"
SERVICE_ACCOUNTS = (INGEST, PROCESS, SIMULATOR)

ITERATIONS = 101
SALT_BYTES = 12
# A sensor id (the schema's CHECK) and a service account name: nothing a password or ACL file
# could misread (no ':' , no spaces, no newlines, no MQTT wildcards).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ROOT = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")

Access = Literal["read", "write", "readwrite"]


@dataclass(frozen=True)
class Grant:
    access: Access
    topic: str


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    grants: tuple[Grant, ...]


@dataclass(frozen=True)
class Device:
    """A registered sensor as the broker sees it."""

    sensor_id: str
    kind: str


def check_name(name: str, what: str = "account name") -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not usable on the broker: use 1-64 letters, digits, '_', '.', "
            "'-', starting with a letter or digit"
        )
    return name


def check_root(root: str) -> str:
    if not _ROOT.match(root):
        raise ValueError(
            f"topic root {root!r} is not usable in an ACL: use levels of letters, digits, "
            "'_', '.', '-' separated by '/', without wildcards"
        )
    return root


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The password file form of ``password`` (Mosquitto's ``$7$`` PBKDF2-SHA512)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``$7$`` entry (as Mosquitto checks it)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), parts[4]
    expected = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(base64.b64encode(expected).decode(), digest)


def device_grants(root: str, device: Device) -> tuple[Grant, ...]:
    return (
        Grant("write", telemetry_topic(root, device.kind, device.sensor_id)),
        Grant("write", status_topic(root, device.kind, device.sensor_id)),
    )


def service_accounts(
    root: str, passwords: dict[str, str], devices: Iterable[Device]
) -> list[Account]:
    """The ingest, process and simulator accounts (those with a password in ``passwords``).

    The simulator is a gateway serving every registered device.
    """
    grants: dict[str, tuple[Grant, ...]] = {
        INGEST: (Grant("read", telemetry_filter(root)),),
        PROCESS: (Grant("read", status_filter(root)),),
        SIMULATOR: tuple(g for d in devices for g in device_grants(root, d)),
        ADMIN: (Grant("readwrite", "#"),),
    }
    return [Account(name, passwords[name], grants[name]) for name in grants if name in passwords]


def device_accounts(
    root: str, devices: Iterable[Device], passwords: dict[str, str]
) -> list[Account]:
    """One account per device, named by its sensor id; devices without a password are left out."""
    return [
        Account(d.sensor_id, passwords[d.sensor_id], device_grants(root, d))
        for d in devices
        if d.sensor_id in passwords
    ]


def render_password_file(accounts: Iterable[Account], salt: bytes | None = None) -> str:
    """``username:$7$...`` lines (``salt`` fixed only for tests)."""
    lines = []
    for account in accounts:
        check_name(account.username)
        lines.append(f"{account.username}:{hash_password(account.password, salt)}")
    return "\n".join(lines) + "\n"


def render_acl(accounts: Iterable[Account]) -> str:
    """Mosquitto's ACL file: a ``user`` block per account, its grants as ``topic`` lines.

    No line precedes the first ``user`` (such lines would apply to anonymous clients) and no
    ``pattern`` line is used (it would apply to every account).
    """
    blocks = ["# Generated by `pantau registry credentials`; edits are overwritten."]
    for account in accounts:
        check_name(account.username)
        lines = [f"user {account.username}"]
        lines += [f"topic {g.access} {g.topic}" for g in account.grants]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
