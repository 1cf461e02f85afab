"""`pantau dashboards db-user`: the database login Grafana's data source connects with.

The login is a member of the read-only group role ``pantau_grafana`` (migration 0005), its
transactions are read-only by default and its statements time out, so a heavy dashboard can
neither write nor hold the database. The password is sent as a SCRAM verifier computed by
libpq, so it never appears in the server's statement log.
"""

from __future__ import annotations

import psycopg
from psycopg.rows import TupleRow

from pantau.db import roles

STATEMENT_TIMEOUT = roles.GRAFANA_STATEMENT_TIMEOUT


def ensure_login(conn: psycopg.Connection[TupleRow], name: str, password: str, group: str) -> bool:
    """Create or update Grafana's login ``name`` in ``group`` (read-only, with a statement
    timeout); True when it was created. The caller commits."""
    return roles.ensure_login(
        conn, name, password, group, read_only=True, statement_timeout=STATEMENT_TIMEOUT
    )
