"""The private broker and database of one benchmark run, and fresh databases in it.

Started through Pantau's own stack code, the way the test fixtures (tests/services.py) do: a
temporary state directory, free ports on 127.0.0.1, ``LocalStack.up()`` and ``down()``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from pantau.db.migrate import migrate
from pantau.registry.fleet import Fleet
from pantau.registry.load import load_into
from pantau.stack import install
from pantau.stack.local import LocalStack, StackState, settings_for
from pantau.stack.processes import free_port


@contextmanager
def private_stack(*, fsync: bool) -> Iterator[StackState]:
    """A private Mosquitto and PostgreSQL + TimescaleDB, stopped and removed on exit."""
    state_dir = Path(tempfile.mkdtemp(prefix="pantau-bench-"))
    state_dir.chmod(0o755)  # run as root, the servers run as their own users and must enter it
    local = LocalStack(settings_for(state_dir, free_port(), free_port(), fsync=fsync))
    try:
        yield local.up()
    finally:
        local.down()
        shutil.rmtree(state_dir, ignore_errors=True)


def database_url(state: StackState, name: str) -> str:
    return state.database_url.rsplit("/", 1)[0] + "/" + name


@contextmanager
def fresh_database(state: StackState, label: str, fleet: Fleet | None = None) -> Iterator[str]:
    """A new database migrated with Pantau's schema (and ``fleet`` loaded), dropped on exit."""
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(state.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(state, name)
    try:
        migrate(url)
        if fleet is not None:
            with psycopg.connect(url) as conn:
                load_into(conn, fleet)
        yield url
    finally:
        with psycopg.connect(state.database_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


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
