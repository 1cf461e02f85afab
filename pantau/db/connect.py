"""Opening database connections with errors that say what to do."""

from __future__ import annotations

import psycopg

from pantau.errors import ServiceUnavailableError
from pantau.masking import mask_url


def connect(
    url: str, *, autocommit: bool = False, application_name: str = "pantau"
) -> psycopg.Connection:
    """A connection to ``url``, or :class:`ServiceUnavailableError` that names the fix."""
    try:
        return psycopg.connect(
            url, autocommit=autocommit, connect_timeout=5, application_name=application_name
        )
    except psycopg.OperationalError as exc:
        text = str(exc).strip()
        # psycopg's first line says what failed ("connection to server at ... failed: ...").
        reason = text.splitlines()[0].removeprefix("connection failed: ") if text else "failed"
        raise ServiceUnavailableError(
            f"cannot connect to the database at {mask_url(url)}: {reason}",
            "start it with `pantau stack up` (local stack) or check PANTAU_DATABASE_URL",
        ) from exc
