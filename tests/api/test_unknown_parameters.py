"""Unknown query parameters and unknown filter values: a 422 problem naming them, on every route.

A misspelt parameter (``/v1/alarms?kinnd=x``) or a value that names nothing Pantau knows
(``?zone_id=does-not-exist``, ``?kind=not_a_kind``) used to be answered like a real question,
with an empty list. Checked on the simulated days of tests/fixtures/api.py (read only), and for
the cache of zone ids on a database of the test's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api import apikeys, query
from api.app import create_app
from api.settings import ApiSettings
from ops.stack.local import StackState
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from tests.fixtures.api import ApiData
from tests.fixtures.polling import wait_for
from tests.fixtures.stack import fresh_database

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
R = "/v1/sensors/WB-W-DMS-07-001/readings"
DAY = "start=2026-11-26T14:00:00%2B07:00&end=2026-11-27T14:00:00%2B07:00"

# A valid request of every operation, with all its query parameters where it has some.
VALID: dict[tuple[str, str], str] = {
    ("GET", "/v1/health"): "/v1/health",
    ("GET", "/v1/ready"): "/v1/ready",
    ("GET", "/v1/zones"): "/v1/zones?kind=village&limit=5&offset=0&format=json",
    ("GET", "/v1/sensors"): "/v1/sensors?kind=waste_bin&zone_id=W-DMS-07&status=online&limit=5",
    ("GET", "/v1/sensors/{sensor_id}"): "/v1/sensors/WB-W-DMS-07-001",
    ("GET", "/v1/sensors/{sensor_id}/readings"): f"{R}?metric=fill_pct&{DAY}&bucket=1h",
    ("GET", "/v1/latest"): "/v1/latest?kind=footfall&limit=5",
    ("GET", "/v1/anomalies"): (
        "/v1/anomalies?sensor_id=WB-W-DMS-07-001&kind=spike&start=2026-11-26T14:00:00%2B07:00"
    ),
    ("GET", "/v1/alarms"): (
        "/v1/alarms?state=open&rule=sensor_offline&sensor_id=WB-W-DMS-07-001&limit=5"
    ),
    ("POST", "/v1/alarms/{alarm_id}/acknowledge"): "/v1/alarms/9000000000/acknowledge",
    ("GET", "/v1/rejects"): "/v1/rejects?reason=malformed_payload&end=2026-11-27T14:00:00%2B07:00",
    ("GET", "/v1/waste/bins"): "/v1/waste/bins?zone_id=W-DMS-07&needs_collection=true",
    ("GET", "/v1/waste/villages"): "/v1/waste/villages?limit=3",
    ("GET", "/v1/waste/collection-plan"): "/v1/waste/collection-plan?zone_id=W-DMS-07",
    ("GET", "/v1/air/stations"): "/v1/air/stations?format=csv",
    ("GET", "/v1/air/stations/{sensor_id}/history"): "/v1/air/stations/AQ-CENTRE/history?hours=3",
    ("GET", "/v1/tourism/zones"): "/v1/tourism/zones?offset=1",
}


def admin(api_data: ApiData) -> dict[str, str]:
    return {"X-API-Key": api_data.keys["admin"]}


def problem_of(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] == "Invalid request"
    return body


def test_the_table_covers_every_operation(api_client: TestClient) -> None:
    paths = api_client.get("/openapi.json").json()["paths"]
    assert {(m.upper(), p) for p, ops in paths.items() for m in ops} == set(VALID)


@pytest.mark.parametrize("route", sorted(VALID), ids=lambda r: f"{r[0]} {r[1]}")
def test_every_operation_takes_its_own_parameters_and_refuses_others(
    api_client: TestClient, api_data: ApiData, route: tuple[str, str]
) -> None:
    method, url = route[0], VALID[route]
    ok = api_client.request(method, url, headers=admin(api_data))
    assert ok.status_code in (200, 404), ok.text  # the acknowledge of an unknown alarm: 404
    joiner = "&" if "?" in url else "?"
    refused = api_client.request(method, f"{url}{joiner}kinnd=x", headers=admin(api_data))
    body = problem_of(refused)
    assert "'kinnd'" in body["detail"]
    assert f"{method} {url.split('?')[0]} takes" in body["detail"], "says which endpoint"
    assert body["errors"] == [{"where": "query.kinnd", "problem": "unknown parameter"}]
    assert body["instance"] == url.split("?")[0]


def test_the_issue_s_example_names_the_parameter_and_what_the_route_takes(
    api_client: TestClient, api_data: ApiData
) -> None:
    body = problem_of(api_client.get("/v1/alarms?kinnd=x", headers=admin(api_data)))
    detail = body["detail"]
    assert "unknown query parameter 'kinnd'" in detail
    for name in ("format", "limit", "offset", "rule", "sensor_id", "state", "zone_id"):
        assert name in detail


def test_a_near_miss_is_given_the_right_name(api_client: TestClient, api_data: ApiData) -> None:
    body = problem_of(api_client.get("/v1/sensors?kinnd=waste_bin", headers=admin(api_data)))
    assert "did you mean 'kind'?" in body["detail"]
    body = problem_of(api_client.get("/v1/waste/bins?zone=W-DMS-07", headers=admin(api_data)))
    assert "did you mean 'zone_id'?" in body["detail"]


def test_every_unknown_parameter_is_named(api_client: TestClient, api_data: ApiData) -> None:
    body = problem_of(api_client.get("/v1/zones?a=1&limit=2&b=2&a=3", headers=admin(api_data)))
    assert "parameters 'a', 'b'" in body["detail"]
    assert [e["where"] for e in body["errors"]] == ["query.a", "query.b"]


def test_public_routes_refuse_unknown_parameters_too(api_client: TestClient) -> None:
    body = problem_of(api_client.get("/v1/health?verbose=1"))
    assert "'verbose'" in body["detail"]
    assert "takes no query parameters" in body["detail"]


def test_the_query_string_is_checked_before_the_key(api_client: TestClient) -> None:
    assert "'kinnd'" in problem_of(api_client.get("/v1/alarms?kinnd=x"))["detail"]
    assert api_client.get("/v1/alarms").status_code == 401


# (url, parameter, value): each names nothing Pantau knows
UNKNOWN_VALUES = [
    ("/v1/alarms?zone_id=does-not-exist", "zone_id", "does-not-exist"),
    ("/v1/sensors?zone_id=does-not-exist", "zone_id", "does-not-exist"),
    ("/v1/waste/bins?zone_id=does-not-exist", "zone_id", "does-not-exist"),
    ("/v1/waste/collection-plan?zone_id=does-not-exist", "zone_id", "does-not-exist"),
    ("/v1/waste/bins?zone_id=", "zone_id", ""),
    ("/v1/alarms?rule=not_a_kind", "rule", "not_a_kind"),
    ("/v1/alarms?sensor_id=NO-SUCH-SENSOR", "sensor_id", "NO-SUCH-SENSOR"),
    ("/v1/anomalies?sensor_id=NO-SUCH-SENSOR", "sensor_id", "NO-SUCH-SENSOR"),
    ("/v1/sensors?kind=not_a_kind", "kind", "not_a_kind"),
    ("/v1/latest?kind=not_a_kind", "kind", "not_a_kind"),
    ("/v1/anomalies?kind=not_a_kind", "kind", "not_a_kind"),
    ("/v1/zones?kind=beach", "kind", "beach"),
    ("/v1/rejects?reason=not_a_reason", "reason", "not_a_reason"),
    ("/v1/alarms?state=closed", "state", "closed"),
]


@pytest.mark.parametrize(
    ("url", "name", "value"), UNKNOWN_VALUES, ids=[u for u, _, _ in UNKNOWN_VALUES]
)
def test_an_unknown_filter_value_is_named(
    api_client: TestClient, api_data: ApiData, url: str, name: str, value: str
) -> None:
    body = problem_of(api_client.get(url, headers=admin(api_data)))
    assert name in body["detail"]
    assert repr(value) in body["detail"]
    assert {"where": f"query.{name}", "value": value}.items() <= body["errors"][0].items()


def test_a_value_with_a_near_miss_is_given_the_right_one(
    api_client: TestClient, api_data: ApiData
) -> None:
    body = problem_of(api_client.get("/v1/alarms?zone_id=T-KARTIN", headers=admin(api_data)))
    assert "did you mean 'T-KARTINI'?" in body["detail"]
    assert "/v1/zones" in body["detail"]
    body = problem_of(api_client.get("/v1/alarms?rule=bin_overflown", headers=admin(api_data)))
    assert "did you mean 'bin_overflow'?" in body["detail"]


def test_a_long_value_is_quoted_short(api_client: TestClient, api_data: ApiData) -> None:
    response = api_client.get("/v1/zones?kind=" + "k" * 1500, headers=admin(api_data))
    body = problem_of(response)
    assert "(1500 characters)" in body["detail"]
    assert len(response.content) < 1000


def test_known_values_are_answered(api_client: TestClient, api_data: ApiData) -> None:
    """The same filters with values Pantau knows: answers, not problems."""
    with psycopg.connect(api_data.url) as conn:
        reason = conn.execute("SELECT min(reason) FROM rejects").fetchone()
        rule = conn.execute("SELECT min(rule) FROM alarms").fetchone()
    for url in (
        "/v1/alarms?zone_id=T-KARTINI",
        "/v1/sensors?zone_id=W-DMS-07",
        "/v1/waste/bins?zone_id=W-DMS-07",
        "/v1/waste/collection-plan?zone_id=W-DMS-07",
        "/v1/alarms?sensor_id=WB-W-DMS-07-001",
        "/v1/anomalies?sensor_id=WB-W-DMS-07-001",
        "/v1/zones?kind=disposal",
        f"/v1/rejects?reason={reason[0] if reason and reason[0] else 'malformed_payload'}",
        f"/v1/alarms?rule={rule[0] if rule and rule[0] else 'sensor_offline'}",
    ):
        response = api_client.get(url, headers=admin(api_data))
        assert response.status_code == 200, (url, response.text)


def test_fixed_vocabularies_are_the_enums_of_the_openapi_document(api_client: TestClient) -> None:
    paths = api_client.get("/openapi.json").json()["paths"]

    def enum(path: str, name: str) -> set[str]:
        parameter = next(p for p in paths[path]["get"]["parameters"] if p["name"] == name)
        return set(parameter["schema"]["enum"])

    assert enum("/v1/zones", "kind") == {"tourism", "village", "kecamatan", "disposal", "air_site"}
    assert "malformed_payload" in enum("/v1/rejects", "reason")
    assert "crowding" in enum("/v1/alarms", "rule")
    zone = next(p for p in paths["/v1/alarms"]["get"]["parameters"] if p["name"] == "zone_id")
    assert "enum" not in zone["schema"], "zone ids come from the database"


# --- the cache of zone ids -----------------------------------------------------------------------


@pytest.fixture
def own(stack: StackState) -> Iterator[tuple[str, str, TestClient]]:
    """A database of this test's own with the fleet, an admin key and the app on it."""
    with fresh_database(stack) as url:
        with psycopg.connect(url) as conn:
            load_into(conn, load_fleet())
            key = apikeys.create(conn, "cache", "admin").key
            conn.commit()
        with TestClient(create_app(ApiSettings(database_url=url, rate_per_s=0))) as client:
            yield url, key, client


def test_a_known_zone_costs_no_query_and_a_new_zone_is_known_at_once(
    own: tuple[str, str, TestClient],
) -> None:
    url, key, client = own
    headers = {"X-API-Key": key}
    check: query.QueryCheck = client.app.state.query_check  # type: ignore[attr-defined]
    assert client.get("/v1/waste/bins?zone_id=W-DMS-07", headers=headers).status_code == 200
    loaded_at = check.loaded[query.ZONE_IDS.name].at
    for _ in range(20):  # known zones: the list is not loaded again
        assert client.get("/v1/alarms?zone_id=W-DMS-07", headers=headers).status_code == 200
    assert check.loaded[query.ZONE_IDS.name].at == loaded_at

    new = "W-NEW-01"
    assert problem_of(client.get(f"/v1/waste/bins?zone_id={new}", headers=headers))
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO zones (zone_id, name, kind) VALUES (%s, 'Desa Baru', 'village')", (new,)
        )
    # Within RELOAD_AFTER_S of the last load an unknown value is refused from the cache; after,
    # it reloads the list once and the new zone is known.
    started = time.monotonic()
    wait_for(
        lambda: client.get(f"/v1/waste/bins?zone_id={new}", headers=headers).status_code == 200,
        what="a zone added to the table to be known",
        timeout_s=10,
    )
    assert time.monotonic() - started < query.RELOAD_AFTER_S + 5
    assert check.loaded[query.ZONE_IDS.name].at > loaded_at


def test_a_flood_of_unknown_zones_reloads_the_list_at_most_once_a_second(
    own: tuple[str, str, TestClient],
) -> None:
    _, key, client = own
    headers = {"X-API-Key": key}
    check: query.QueryCheck = client.app.state.query_check  # type: ignore[attr-defined]
    assert client.get("/v1/alarms?zone_id=W-DMS-07", headers=headers).status_code == 200
    loads = set()
    started = time.monotonic()
    for n in range(50):
        problem_of(client.get(f"/v1/alarms?zone_id=NOPE-{n}", headers=headers))
        loads.add(check.loaded[query.ZONE_IDS.name].at)
    elapsed = time.monotonic() - started
    assert len(loads) <= 1 + elapsed / query.RELOAD_AFTER_S
