"""`pantau db migrate`: versioned SQL migrations, applied in order, once each.

Migrations are the files ``migrations/NNNN_name.sql`` of this package. Each one runs in its own
transaction and is recorded in ``schema_migrations`` with a checksum; a file changed after it was
applied is an error, not something to re-run. A session-level advisory lock makes concurrent
``migrate`` calls wait for each other instead of racing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg.rows import TupleRow

from pantau.db.connect import connect
from pantau.errors import MissingDependencyError, PantauError

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x70616E746175  # "pantau"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """The migrations shipped with Pantau, in version order."""
    found = []
    for entry in resources.files("pantau.db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise PantauError(f"duplicate migration versions in {versions}", "renumber the files")
    return found


def check_timescaledb(conn: psycopg.Connection[TupleRow]) -> None:
    """Raise a clear error unless TimescaleDB is installed and preloaded on this server."""
    row = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if row is None:
        raise MissingDependencyError(
            "the TimescaleDB extension is not installed on this PostgreSQL server",
            "use the local stack (`pantau stack up` installs it), the timescale/timescaledb Docker "
            "image, or install the postgresql-<version>-timescaledb package",
        )
    created = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if created is not None:
        # Created in this database (by `pantau db bootstrap`), so it loads; the owner running
        # the migrations may not read shared_preload_libraries (a superuser's setting).
        return
    preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    if preload is None or "timescaledb" not in str(preload[0]):
        raise MissingDependencyError(
            "TimescaleDB is installed but not preloaded by this PostgreSQL server",
            "add shared_preload_libraries = 'timescaledb' to postgresql.conf and restart it",
        )


def applied(conn: psycopg.Connection[TupleRow]) -> dict[int, str]:
    """Applied versions and their checksums."""
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version    integer PRIMARY KEY,
               name       text NOT NULL,
               checksum   text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {int(str(v)): str(c) for v, c in rows}


def migrate(url: str) -> list[Migration]:
    """Apply pending migrations to the database at ``url``; returns those applied now."""
    ran = []
    with connect(url, autocommit=True, application_name="pantau-migrate") as conn:
        check_timescaledb(conn)
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            done = applied(conn)
            for migration in available():
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise PantauError(
                            f"migration {migration.version:04d}_{migration.name} was changed "
                            "after it was applied",
                            "never edit an applied migration: add a new one",
                        )
                    continue
                logger.info("applying migration %04d_%s", migration.version, migration.name)
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                ran.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return ran


def pending_on(conn: psycopg.Connection[TupleRow]) -> list[Migration]:
    """Migrations not applied yet on ``conn``'s database; reads only."""
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    done = set()
    if row and row[0]:
        done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
    return [m for m in available() if m.version not in done]


def pending(url: str) -> list[Migration]:
    """Migrations not applied yet (used by readiness checks)."""
    with connect(url, autocommit=True) as conn:
        return pending_on(conn)


def require_current(conn: psycopg.Connection[TupleRow]) -> None:
    """Raise a clear error unless every migration has been applied."""
    todo = pending_on(conn)
    if todo:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
        raise PantauError(
            f"the database schema is not up to date (pending: {names})", "run `pantau db migrate`"
        )
