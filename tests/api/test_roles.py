"""Who may call what: the role matrix over every endpoint, bad and revoked keys, and the
database role the API runs as (read-only but for acknowledging alarms).

Expected outcomes are written out as tables here, from the issue: DLH sees waste and air, the
tourism office sees tourism, engineers see sensors, readings, latest values, anomalies and
rejects, admin sees everything; zones and alarms are open to every role (alarms scoped to the
role's own: test_alarm_scopes.py); health and readiness need no key. No key (or a bad one) is
401, a role without access 403, both as problem details.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import errors

from api import apikeys
from api.app import create_app
from api.settings import ApiSettings
from tests.fixtures.api import ApiData

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
ROLES = ("dlh", "tourism", "engineer", "admin")
NO_KEY = "no key"
OPEN = "open"  # no key needed
UNKNOWN_ALARM = 9_000_000_000  # acknowledging it passes the role check, then 404: nothing changes

# (method, route template) -> roles allowed besides admin (OPEN: no key at all).
ALLOWED: dict[tuple[str, str], str | frozenset[str]] = {
    ("GET", "/v1/health"): OPEN,
    ("GET", "/v1/ready"): OPEN,
    ("GET", "/v1/zones"): frozenset(ROLES),
    ("GET", "/v1/sensors"): frozenset({"engineer"}),
    ("GET", "/v1/sensors/{sensor_id}"): frozenset({"engineer"}),
    ("GET", "/v1/sensors/{sensor_id}/readings"): frozenset({"engineer"}),
    ("GET", "/v1/latest"): frozenset({"engineer"}),
    ("GET", "/v1/anomalies"): frozenset({"engineer"}),
    ("GET", "/v1/alarms"): frozenset(ROLES),
    ("POST", "/v1/alarms/{alarm_id}/acknowledge"): frozenset(ROLES),
    ("GET", "/v1/rejects"): frozenset({"engineer"}),
    ("GET", "/v1/waste/bins"): frozenset({"dlh"}),
    ("GET", "/v1/waste/villages"): frozenset({"dlh"}),
    ("GET", "/v1/waste/collection-plan"): frozenset({"dlh"}),
    ("GET", "/v1/air/stations"): frozenset({"dlh"}),
    ("GET", "/v1/air/stations/{sensor_id}/history"): frozenset({"dlh"}),
    ("GET", "/v1/tourism/zones"): frozenset({"tourism"}),
}

# A concrete, valid request for each route.
URL: dict[tuple[str, str], str] = {
    ("GET", "/v1/health"): "/v1/health",
    ("GET", "/v1/ready"): "/v1/ready",
    ("GET", "/v1/zones"): "/v1/zones?limit=5",
    ("GET", "/v1/sensors"): "/v1/sensors?kind=air_quality",
    ("GET", "/v1/sensors/{sensor_id}"): "/v1/sensors/WB-W-DMS-07-001",
    ("GET", "/v1/sensors/{sensor_id}/readings"): (
        "/v1/sensors/WB-W-DMS-07-001/readings?metric=fill_pct"
        "&start=2026-11-27T08:00:00%2B07:00&end=2026-11-27T14:00:00%2B07:00"
    ),
    ("GET", "/v1/latest"): "/v1/latest?kind=footfall",
    ("GET", "/v1/anomalies"): "/v1/anomalies?limit=5",
    ("GET", "/v1/alarms"): "/v1/alarms",
    ("POST", "/v1/alarms/{alarm_id}/acknowledge"): f"/v1/alarms/{UNKNOWN_ALARM}/acknowledge",
    ("GET", "/v1/rejects"): "/v1/rejects",
    ("GET", "/v1/waste/bins"): "/v1/waste/bins?limit=5",
    ("GET", "/v1/waste/villages"): "/v1/waste/villages",
    ("GET", "/v1/waste/collection-plan"): "/v1/waste/collection-plan",
    ("GET", "/v1/air/stations"): "/v1/air/stations",
    ("GET", "/v1/air/stations/{sensor_id}/history"): "/v1/air/stations/AQ-CENTRE/history",
    ("GET", "/v1/tourism/zones"): "/v1/tourism/zones",
}


def expected_status(route: tuple[str, str], role: str) -> int:
    allowed = ALLOWED[route]
    if allowed == OPEN:
        return 200
    if role == NO_KEY:
        return 401
    if role == "admin" or role in allowed:
        return 404 if route[0] == "POST" else 200
    return 403


MATRIX = [
    pytest.param(route, role, expected_status(route, role), id=f"{route[0]} {route[1]} {role}")
    for route in ALLOWED
    for role in (*ROLES, NO_KEY)
]


def assert_problem(response: Any, status: int, path: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    assert body["instance"] == path
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert len(body["detail"]) > 20
    return body


def test_matrix_covers_every_route(api_client: TestClient) -> None:
    """Every operation the app publishes has a row in the matrix (a new one must be added)."""
    paths = api_client.get("/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert routes == set(ALLOWED)
    assert set(URL) == set(ALLOWED)


@pytest.mark.parametrize(("route", "role", "status"), MATRIX)
def test_role_matrix(
    api_client: TestClient, api_data: ApiData, route: tuple[str, str], role: str, status: int
) -> None:
    headers = {} if role == NO_KEY else {"X-API-Key": api_data.keys[role]}
    url = URL[route]
    response = api_client.request(route[0], url, headers=headers)
    path = url.split("?")[0]
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        return
    body = assert_problem(response, status, path)
    if status == 401:
        assert "X-API-Key" in body["detail"]
        assert "pantau api key create" in body["detail"]
        assert response.headers["www-authenticate"].startswith("ApiKey")
    elif status == 403:
        allowed = ALLOWED[route]
        assert isinstance(allowed, frozenset)
        assert repr(role) in body["detail"]
        for name in {"admin", *allowed}:
            assert name in body["detail"]
    else:
        assert status == 404  # acknowledging an unknown alarm: past the role check
        assert str(UNKNOWN_ALARM) in body["detail"]


def test_bearer_key_is_accepted(api_client: TestClient, api_data: ApiData) -> None:
    response = api_client.get(
        "/v1/tourism/zones", headers={"Authorization": f"Bearer {api_data.keys['tourism']}"}
    )
    assert response.status_code == 200
    assert response.json()["count"] > 0


def _bad_keys(api_data: ApiData) -> list[dict[str, str]]:
    good = api_data.keys["engineer"]
    parsed = apikeys.parse(good)
    assert parsed is not None
    key_id, secret = parsed
    other_secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    return [
        {"X-API-Key": "nonsense"},
        {"X-API-Key": "pantau_"},
        {"X-API-Key": f"pantau_{key_id}"},
        {"X-API-Key": f"pantau_{key_id}_{secret}x"},  # one character too many
        {"X-API-Key": f"pantau_{key_id.upper()}_{secret}"},  # the id is lower-case hex
        {"X-API-Key": f"pantau_{key_id}_{other_secret}"},  # right id, wrong secret
        {"X-API-Key": f"pantau_000000000000_{secret}"},  # unknown id
        {"X-API-Key": good.replace("pantau_", "pantoo_")},
        {"Authorization": f"Basic {good}"},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Bearer"},
        {"X-API-Key": ""},
    ]


def test_malformed_or_unknown_keys_are_401(api_client: TestClient, api_data: ApiData) -> None:
    for headers in _bad_keys(api_data):
        response = api_client.get("/v1/sensors", headers=headers)
        body = assert_problem(response, 401, "/v1/sensors")
        assert "key" in body["detail"].lower(), headers
        assert response.headers["www-authenticate"].startswith("ApiKey")
    # The engineer's real key still works after all that.
    ok = api_client.get("/v1/sensors", headers={"X-API-Key": api_data.keys["engineer"]})
    assert ok.status_code == 200


def test_invalid_key_detail_says_what_to_do(api_client: TestClient) -> None:
    response = api_client.get("/v1/zones", headers={"X-API-Key": "nonsense"})
    body = assert_problem(response, 401, "/v1/zones")
    assert "pantau api key create" in body["detail"] or "administrator" in body["detail"]


def test_revoked_key_is_401(api_data: ApiData, api_client: TestClient) -> None:
    """A key revoked before its first use is refused at once; one revoked after use is refused
    by a fresh app (a running one may keep accepting it for up to KEY_CACHE_S)."""
    with psycopg.connect(api_data.url) as conn:
        never_used = apikeys.create(conn, "revoked before use", "admin")
        used = apikeys.create(conn, "revoked after use", "dlh")
        assert apikeys.revoke(conn, never_used.key_id)
        conn.commit()
    response = api_client.get("/v1/zones", headers={"X-API-Key": never_used.key})
    body = assert_problem(response, 401, "/v1/zones")
    assert "revoked" in body["detail"]

    settings = ApiSettings(database_url=api_data.url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/waste/bins", headers={"X-API-Key": used.key}).status_code == 200
    with psycopg.connect(api_data.url) as conn:
        assert apikeys.revoke(conn, used.key_id)
        assert not apikeys.revoke(conn, used.key_id), "a revoked key cannot be revoked twice"
        conn.commit()
    with TestClient(create_app(settings)) as client:
        response = client.get("/v1/waste/bins", headers={"X-API-Key": used.key})
        body = assert_problem(response, 401, "/v1/waste/bins")
        assert "revoked" in body["detail"]
    with psycopg.connect(api_data.url) as conn:
        row = conn.execute(
            "SELECT last_used_at IS NOT NULL, revoked_at IS NOT NULL FROM api_keys "
            "WHERE key_id = %s",
            (used.key_id,),
        ).fetchone()
    assert row == (True, True)


def test_new_key_works_for_its_role(api_data: ApiData, api_client: TestClient) -> None:
    with psycopg.connect(api_data.url) as conn:
        new = apikeys.create(conn, "fresh tourism key", "tourism")
        conn.commit()
    headers = {"X-API-Key": new.key}
    assert api_client.get("/v1/tourism/zones", headers=headers).status_code == 200
    assert api_client.get("/v1/air/stations", headers=headers).status_code == 403


# --- the database role ---------------------------------------------------------------------------


@pytest.fixture
def as_api(api_data: ApiData) -> Iterator[psycopg.Connection[Any]]:
    """A connection that switched to the API's role, as the API's pool does."""
    with psycopg.connect(api_data.url, autocommit=True) as conn:
        conn.execute("SET ROLE pantau_api")
        yield conn


def test_api_pool_connections_run_as_pantau_api(api_client: TestClient) -> None:
    pool = api_client.app.state.pool  # type: ignore[attr-defined]

    async def who() -> list[str]:
        names = []
        for _ in range(3):
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT current_user AS u")
                row = await cur.fetchone()
                names.append(row["u"])
        return names

    portal = api_client.portal
    assert portal is not None
    assert portal.call(who) == ["pantau_api"] * 3


FORBIDDEN = [
    "INSERT INTO readings (sensor_key, metric_id, ts, value) VALUES (1, 1, now(), 1)",
    "UPDATE readings SET value = 0 WHERE false",
    "DELETE FROM readings WHERE false",
    "INSERT INTO latest (sensor_key, metric_id, ts, value) VALUES (1, 1, now(), 1)",
    "UPDATE rollup_1h SET n = 0 WHERE false",
    "UPDATE alarms SET message = 'x' WHERE false",
    "UPDATE alarms SET cleared_at = now() WHERE false",
    "UPDATE alarms SET opened_at = now() WHERE false",
    "DELETE FROM alarms WHERE false",
    "INSERT INTO alarms (sensor_key, rule, severity, state, message, opened_at) "
    "VALUES (1, 'x', 'info', 'open', 'x', now())",
    "UPDATE sensors SET active = false WHERE false",
    "UPDATE zones SET name = 'x' WHERE false",
    "UPDATE waste_status SET fill_pct = 0 WHERE false",
    "INSERT INTO api_keys (key_id, name, role, secret_sha256) "
    "VALUES ('0123456789ab', 'x', 'admin', decode(repeat('00', 32), 'hex'))",
    "UPDATE api_keys SET role = 'admin' WHERE false",
    "UPDATE api_keys SET revoked_at = NULL WHERE false",
    "DELETE FROM api_keys WHERE false",
    "SELECT created_at FROM api_keys",
    "SELECT last_used_at FROM api_keys",
    "UPDATE api_keys SET last_used_at = last_used_at WHERE false",  # reads last_used_at
    "SELECT * FROM api_keys",
    "SELECT * FROM detector_state",
    "SELECT * FROM alarm_conditions",
    "TRUNCATE rejects",
    "CREATE TABLE api_scratch (x int)",
]


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_api_role_may_not(as_api: psycopg.Connection[Any], statement: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        as_api.execute(statement)


ALLOWED_SQL = [
    "SELECT count(*) FROM readings",
    "SELECT key_id, name, role, secret_sha256, revoked_at FROM api_keys",
    "SELECT * FROM alarms",
    "SELECT * FROM rollup_1d LIMIT 1",
    "SELECT * FROM schema_migrations",
    "UPDATE alarms SET state = state, acknowledged_at = acknowledged_at, "
    "acknowledged_by = acknowledged_by WHERE alarm_id = (SELECT min(alarm_id) FROM alarms)",
    "UPDATE api_keys SET last_used_at = now() WHERE key_id = (SELECT min(key_id) FROM api_keys)",
]


@pytest.mark.parametrize("statement", ALLOWED_SQL)
def test_api_role_may(as_api: psycopg.Connection[Any], statement: str) -> None:
    """What the API needs; writes run in a transaction that is rolled back."""
    with as_api.transaction(force_rollback=True):
        cur = as_api.execute(statement)
        if statement.startswith("UPDATE"):
            assert cur.rowcount == 1
        else:
            assert cur.fetchall() is not None
