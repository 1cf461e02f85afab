"""API keys: made, shown once, stored as a SHA-256 digest, looked up by their public id.

A key reads ``pantau_<key_id>_<secret>``: ``key_id`` (12 hex digits) finds the row, and the
SHA-256 of the secret (32 random bytes, URL-safe base64) must equal the stored digest. The secret
has 256 bits of entropy, so a fast hash is enough (slow password hashes are for guessable
passwords) and verifying costs microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

ROLES = ("dlh", "tourism", "engineer", "admin")
_KEY = re.compile(r"^pantau_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key: str  # the whole key: shown once, never stored


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    match = _KEY.match(key.strip())
    return (match.group(1), match.group(2)) if match else None


def matches(secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(digest(secret), stored)


def make() -> tuple[str, str, NewKey]:
    """A new key: its id, its secret's digest (hex, for storing) and the key to hand out."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, digest(secret).hex(), NewKey(key_id, f"pantau_{key_id}_{secret}")


def create(conn: psycopg.Connection[Any], name: str, role: str) -> NewKey:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    key_id, hex_digest, new = make()
    conn.execute(
        "INSERT INTO api_keys (key_id, name, role, secret_sha256) "
        "VALUES (%s, %s, %s, decode(%s, 'hex'))",
        (key_id, name, role, hex_digest),
    )
    return new


def revoke(conn: psycopg.Connection[Any], key_id: str) -> bool:
    """Revoke a key by id; False if there is no such active key."""
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL",
        (key_id,),
    )
    return cur.rowcount == 1


def listing(conn: psycopg.Connection[Any]) -> list[KeyRow]:
    rows = conn.execute(
        "SELECT key_id, name, role, created_at, revoked_at, last_used_at FROM api_keys "
        "ORDER BY created_at"
    ).fetchall()
    return [KeyRow(*row) for row in rows]
