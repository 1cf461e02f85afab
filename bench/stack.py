"""The private broker and database of one benchmark run, and fresh databases in it.

Started through Pantau's own stack code, as the test fixtures are: ``temporary_stack`` (free
ports on 127.0.0.1, a temporary state directory) and ``scratch_database``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from ops.stack import install
from ops.stack.local import StackState, temporary_stack
from pantau.db.scratch import scratch_database
from pantau.registry.fleet import Fleet
from pantau.registry.load import load_into


@contextmanager
def private_stack(*, fsync: bool) -> Iterator[StackState]:
    """A private Mosquitto and PostgreSQL + TimescaleDB, stopped and removed on exit."""
    with temporary_stack("pantau-bench-", fsync=fsync) as local:
        state = local.read_state()
        assert state is not None
        yield state


@contextmanager
def fresh_database(state: StackState, label: str, fleet: Fleet | None = None) -> Iterator[str]:
    """A new database migrated with Pantau's schema (and ``fleet`` loaded), dropped on exit."""
    with scratch_database(state.database_url, f"bench_{label}") as url:
        if fleet is not None:
            with psycopg.connect(url) as conn:
                load_into(conn, fleet)
        yield url


def server_versions(url: str) -> dict[str, str]:
    """PostgreSQL and TimescaleDB versions as the migrated database ``url`` reports them."""
    with psycopg.connect(url, autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
        ts = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        lic = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return {
        "postgresql": str(pg[0]) if pg else "unknown",
        "timescaledb": f"{ts[0] if ts else 'unknown'} (license: {lic[0] if lic else 'unknown'})",
        "mosquitto": mosquitto_version(),
    }


def mosquitto_version() -> str:
    """The version the broker binary the stack runs prints (``mosquitto -h``)."""
    binary = install.detect().mosquitto
    if binary is None:
        return "unknown"
    out = subprocess.run(
        [str(binary), "-h"], capture_output=True, text=True, check=False, timeout=10
    ).stdout
    for line in out.splitlines():
        if line.startswith("mosquitto version"):
            return line.split()[-1]
    return "unknown"
