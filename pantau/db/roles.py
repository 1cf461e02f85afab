"""Database roles: the owner, the services' logins, and `pantau db bootstrap` that makes them.

Who connects as whom (nobody as a superuser at run time):

==================  ===================  ==================================================
login               member of            does
==================  ===================  ==================================================
``pantau_owner``    (owns the database)  migrations, ``registry load``, ``api key create``
``pantau_ingest_    ``pantau_writer``    ``pantau ingest`` and ``pantau process``: append
user``                                   readings and rejects, keep derived tables
``pantau_api_user`` ``pantau_api``       ``pantau api``: read, acknowledge alarms
``pantau_grafana_   ``pantau_grafana``   Grafana's data source: read only, read-only
user``                                   transactions, statement timeout
==================  ===================  ==================================================

The group roles' privileges are granted by the migrations (0001, 0003, 0004, 0005, 0006).
Bootstrapping needs a superuser once, at installation: it creates the roles and logins, hands
the database to the owner and creates the TimescaleDB extension (which only a superuser may).
Passwords are sent as SCRAM verifiers computed by libpq, so they never appear in the server's
statement log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from pantau.db.connect import connect
from pantau.db.scratch import with_database
from pantau.errors import ConfigError

Conn = psycopg.Connection[TupleRow]
logger = logging.getLogger(__name__)

OWNER = "pantau_owner"
GROUPS = ("pantau_writer", "pantau_reader", "pantau_api", "pantau_grafana")
GRAFANA_STATEMENT_TIMEOUT = "30s"


@dataclass(frozen=True)
class Login:
    """A service login: its name, its group role, whether its transactions are read-only."""

    service: str
    name: str
    group: str
    read_only: bool = False
    statement_timeout: str | None = None


LOGINS = (
    Login("ingest", "pantau_ingest_user", "pantau_writer"),
    Login("api", "pantau_api_user", "pantau_api"),
    Login("grafana", "pantau_grafana_user", "pantau_grafana", True, GRAFANA_STATEMENT_TIMEOUT),
)


def _set_password(conn: Conn, name: str, password: str, verb: str, options: str) -> None:
    verifier = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256")
    conn.execute(
        sql.SQL(verb + " ROLE {} " + options + " PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(verifier.decode())
        )
    )


def ensure_login(
    conn: Conn,
    name: str,
    password: str,
    group: str,
    *,
    read_only: bool = False,
    statement_timeout: str | None = None,
) -> bool:
    """Create or update login ``name`` as a member of ``group``; True when it was created.

    Refuses to touch a superuser or the login running this (it would change that login's
    password). The caller commits.
    """
    row = conn.execute(
        "SELECT rolsuper, rolname = current_user FROM pg_roles WHERE rolname = %s", (name,)
    ).fetchone()
    if row is not None and (row[0] or row[1]):
        raise ConfigError(
            f"{name!r} is a superuser or the login running this command",
            "give each service a login of its own, never a superuser",
        )
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone() is None:
        raise ConfigError(
            f"the group role {group} does not exist",
            "run `pantau db bootstrap` and `pantau db migrate` first",
        )
    role = sql.Identifier(name)
    _set_password(conn, name, password, "CREATE" if row is None else "ALTER", "LOGIN")
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), role))
    conn.execute(
        sql.SQL("ALTER ROLE {} SET default_transaction_read_only = {}").format(
            role, sql.Literal("on" if read_only else "off")
        )
    )
    if statement_timeout is not None:
        conn.execute(
            sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                role, sql.Literal(statement_timeout)
            )
        )
    return row is None


def bootstrap(admin_url: str, database: str, passwords: dict[str, str]) -> list[str]:
    """Make the owner, the group roles and the service logins; hand ``database`` to the owner.

    ``admin_url`` is a superuser's connection to the server; ``passwords`` holds ``owner`` and
    the services of :data:`LOGINS` (a service without a password gets no login). Idempotent: run
    again, it sets the passwords given and changes nothing else. Returns what it did, for the log.
    """
    done: list[str] = []
    with connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not row or not row[0]:
            raise ConfigError(
                "bootstrapping needs a superuser's connection (it creates roles and the "
                "TimescaleDB extension)",
                "pass the URL of the server's superuser (postgres) to `pantau db bootstrap`",
            )
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (OWNER,)).fetchone()
        _set_password(
            conn,
            OWNER,
            passwords["owner"],
            "ALTER" if exists else "CREATE",
            "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE",
        )
        done.append(f"login {OWNER} (owner)")
        for group in GROUPS:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone():
                continue
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
            done.append(f"group role {group}")
        for login in LOGINS:
            if login.service in passwords:
                ensure_login(
                    conn,
                    login.name,
                    passwords[login.service],
                    login.group,
                    read_only=login.read_only,
                    statement_timeout=login.statement_timeout,
                )
                done.append(f"login {login.name} ({login.group})")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            done.append(f"database {database}")
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(database), sql.Identifier(OWNER)
            )
        )
    with connect(with_database(admin_url, database), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        moved = hand_over(conn)
        if moved:
            done.append(f"{moved} tables, views and sequences handed over to {OWNER}")
    done.append(f"database {database} owned by {OWNER}, extension timescaledb")
    return done


# Relations of the public schema owned by the login running this (a superuser), except the
# sequences of identity columns, which follow their table.
_SUPERUSER_OWNED = """
SELECT c.relname, c.relkind FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                    AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0)
ORDER BY c.relname"""
_ALTER = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}


def hand_over(conn: Conn) -> int:
    """Give the owner what a superuser made in the public schema (a database migrated before
    the owner existed); returns how many relations moved. A hypertable takes its chunks along."""
    rows = conn.execute(_SUPERUSER_OWNED).fetchall()
    for name, kind in rows:
        conn.execute(
            sql.SQL("ALTER " + _ALTER[kind] + " {} OWNER TO {}").format(
                sql.Identifier("public", name), sql.Identifier(OWNER)
            )
        )
    return len(rows)


def check_runtime_login(url: str, environment: str) -> None:
    """A service must not run as a superuser: refused in production, a warning in development."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    if row is None or not row[1]:
        return
    problem = f"this service connects to the database as the superuser {row[0]!r}"
    fix = "give it its own login (`pantau db bootstrap`, .env.example's PANTAU_DB_*_PASSWORD)"
    if environment == "production":
        raise ConfigError(problem, fix)
    logger.warning("%s; in production that is refused: %s", problem, fix)


def login_url(server_url: str, name: str, password: str, database: str) -> str:
    """A postgresql:// URL for ``name`` on the server of ``server_url``."""
    parts = urlsplit(server_url)
    login = f"{quote(name, safe='')}:{quote(password, safe='')}@{parts.hostname}"
    netloc = login + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}", query=""))
