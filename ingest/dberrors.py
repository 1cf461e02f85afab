"""Which database errors are worth retrying: one lookup on the SQLSTATE class."""

from __future__ import annotations

import psycopg

# Connection exceptions (08), transaction rollbacks such as serialization failures and deadlocks
# (40), insufficient resources (53), operator intervention such as a shutdown (57), and system
# errors (58): the same transaction may succeed later. Everything else (data exceptions 22,
# integrity violations 23, ...) fails again the same way.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is worth retrying with the same data."""
    state = getattr(exc, "sqlstate", None)
    if state:
        return str(state)[:2] in TRANSIENT_SQLSTATE_CLASSES
    # No SQLSTATE: the connection broke before the server could answer.
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
