"""The route tests: what the read API answers, checked against the raw tables.

Every expected value here is computed independently of ``api/``: with SQL on ``readings``,
``zones``, ``sensors``, ``alarms``, ``waste_events``... (through a plain psycopg connection to
the test database, as its owner) or in Python with the pure functions of ``processing/``. The
data is two simulated days of the Jepara fleet ending Friday 2026-11-27 14:00 WIB
(``tests/fixtures/api.py``); the job ran as of that time.

Only one test writes (test_events.py): it acknowledges one open alarm and checks that nothing
else changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from tests.api.routes.helpers import Get
from tests.fixtures.api import ApiData


@pytest.fixture(scope="module")
def db(api_data: ApiData) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """The test database as its owner (not through the API), autocommit, dict rows."""
    with psycopg.connect(api_data.url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def end(api_data: ApiData) -> datetime:
    """The simulated "now": Friday 2026-11-27 14:00 WIB."""
    return datetime.fromtimestamp(api_data.end_ms / 1000, UTC)


@pytest.fixture(scope="module")
def get(api_client: TestClient, api_data: ApiData) -> Get:
    """GET a path as ``role`` (default admin), assert 200 JSON, return the body."""

    def call(path: str, role: str = "admin", **params: Any) -> Any:
        response = api_client.get(
            path, params=_params(params), headers={"X-API-Key": api_data.keys[role]}
        )
        assert response.status_code == 200, (path, params, response.text)
        assert response.headers["content-type"].startswith("application/json")
        return response.json()

    return call


def _params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}
