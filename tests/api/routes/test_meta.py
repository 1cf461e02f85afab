"""What the meta routes answer (api/routes/meta.py: health, readiness, zones), checked against
the raw tables."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api import apikeys
from pantau.db.migrate import available
from tests.api.routes.helpers import (
    MAX_PAGE,
    Get,
    check_csv_equals_json,
    check_page_above_maximum_is_a_problem,
    check_pages_concatenate,
    get_all,
)
from tests.fixtures.api import ApiData

pytestmark = pytest.mark.integration


def test_health_and_ready(get: Get, db: psycopg.Connection[Any]) -> None:
    assert get("/v1/health") == {"status": "ok"}
    ready = get("/v1/ready")
    version = db.execute("SELECT max(version) AS v FROM schema_migrations").fetchone()
    assert version is not None
    assert ready == {
        "status": "ready",
        "database": "reachable",
        "schema_version": version["v"],
    }
    assert ready["schema_version"] == max(m.version for m in available())


def test_zones_equal_the_table(get: Get, db: psycopg.Connection[Any]) -> None:
    rows = db.execute(
        "SELECT zone_id, name, kind, kecamatan, lat, lon, area_m2, capacity_persons FROM zones "
        "ORDER BY zone_id"
    ).fetchall()
    items = get_all(get, "/v1/zones")
    assert items == [dict(r) for r in rows]
    by_kind = Counter(r["kind"] for r in rows)
    assert set(by_kind) == {"tourism", "village", "kecamatan", "disposal", "air_site"}
    for kind, n in by_kind.items():
        page = get("/v1/zones", kind=kind, limit=MAX_PAGE)
        assert page["count"] == n
        assert {z["kind"] for z in page["items"]} == {kind}
    # Every role sees the zones.
    for role in apikeys.ROLES:
        assert get("/v1/zones", role=role, limit=3)["count"] == 3


# --- CSV and pages -------------------------------------------------------------------------------


CSV_ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/zones", {}),
]


@pytest.mark.parametrize(("path", "params"), CSV_ENDPOINTS, ids=[p for p, _ in CSV_ENDPOINTS])
def test_csv_equals_json(
    api_client: TestClient, api_data: ApiData, path: str, params: dict[str, Any]
) -> None:
    check_csv_equals_json(api_client, api_data, path, params)


PAGED: list[tuple[str, dict[str, Any], int]] = [
    ("/v1/zones", {}, 7),
]


@pytest.mark.parametrize(("path", "params", "limit"), PAGED, ids=[p for p, _, _ in PAGED])
def test_pages_concatenate(get: Get, path: str, params: dict[str, Any], limit: int) -> None:
    check_pages_concatenate(get, path, params, limit)


@pytest.mark.parametrize("path", [p for p, _, _ in PAGED])
def test_page_above_maximum_is_a_problem(
    api_client: TestClient, api_data: ApiData, path: str
) -> None:
    params = dict(next(q for p, q, _ in PAGED if p == path))
    check_page_above_maximum_is_a_problem(api_client, api_data, path, params)
