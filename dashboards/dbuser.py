"""`pantau dashboards db-user`: the database login Grafana's data source connects with.

The login is a member of the read-only group role ``pantau_grafana`` (migration 0005), its
transactions are read-only by default and its statements time out, so a heavy dashboard can
neither write nor hold the database. The password is sent as a SCRAM verifier computed by
libpq, so it never appears in the server's statement log.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from pantau.errors import ConfigError

STATEMENT_TIMEOUT = "30s"


def ensure_login(conn: psycopg.Connection[TupleRow], name: str, password: str, group: str) -> bool:
    """Create or update login ``name`` in ``group``; True when it was created.

    Refuses to touch a superuser or the login running this (it would change that login's
    password). The caller commits.
    """
    row = conn.execute(
        "SELECT rolsuper, rolname = current_user FROM pg_roles WHERE rolname = %s", (name,)
    ).fetchone()
    if row is not None and (row[0] or row[1]):
        raise ConfigError(
            f"{name!r} is a superuser or the login running this command",
            "give Grafana a login of its own: set PANTAU_GRAFANA_DB_USER to another name",
        )
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone() is None:
        raise ConfigError(f"the group role {group} does not exist", "run `pantau db migrate` first")
    verifier = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256")
    role = sql.Identifier(name)
    secret = sql.Literal(verifier.decode())
    verb = "CREATE" if row is None else "ALTER"
    conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(role, secret))
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), role))
    conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
    conn.execute(
        sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
            role, sql.Literal(STATEMENT_TIMEOUT)
        )
    )
    return row is None
