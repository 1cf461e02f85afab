"""Alarms scoped by role: every role may list and acknowledge alarms, each only those for it.

From the issue: DLH sees the waste and air alarms, the tourism office the crowding alarms,
engineers the sensor alarms (offline, battery, anomalies), admin every alarm (a rule the API
does not know yet included). An alarm outside the key's scope is left out of the list; asking
for its rule, or acknowledging it, is 403 and changes nothing.

A database of its own holds one open alarm of every rule (and one of a rule added later), so
each role's list is known exactly; the simulated days of tests/fixtures/api.py are checked
too, read only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from api import apikeys
from api.app import create_app
from api.settings import ApiSettings
from ops.stack.local import StackState
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from tests.fixtures.api import ApiData
from tests.fixtures.stack import fresh_database

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
ANOMALY_RULES = (
    "anomaly_spike", "anomaly_level_shift", "anomaly_stuck", "anomaly_drift",
    "anomaly_out_of_range", "anomaly_impossible",
)  # fmt: skip
SCOPE: dict[str, frozenset[str]] = {
    "dlh": frozenset({"bin_overflow", "bin_predicted_full", "bin_fire_risk", "ispu_unhealthy"}),
    "tourism": frozenset({"crowding"}),
    "engineer": frozenset({"sensor_offline", "battery_low", *ANOMALY_RULES}),
}
LATER = "a_rule_added_later"  # in the table, not in the API's: admin only
EVERY_RULE = frozenset().union(*SCOPE.values(), {LATER})


def scope_of(role: str) -> frozenset[str]:
    return EVERY_RULE if role == "admin" else SCOPE[role]


def audience_of(rule: str) -> str:
    return next((role for role, rules in SCOPE.items() if rule in rules), "admin")


@dataclass(frozen=True)
class Scoped:
    url: str
    keys: dict[str, str]
    alarm_of: dict[str, int]  # rule -> its (open) alarm's id


@pytest.fixture(scope="module")
def scoped(stack: StackState) -> Iterator[Scoped]:
    """The fleet and one open alarm per rule: bins for waste, a station for air, a tourist zone
    for crowding, a footfall counter for the sensor rules."""
    with fresh_database(stack) as url, psycopg.connect(url) as conn:
        load_into(conn, load_fleet())

        def sensor_of(kind: str) -> int:
            row = conn.execute(
                "SELECT min(sensor_key) FROM sensors WHERE kind = %s", (kind,)
            ).fetchone()
            assert row is not None
            return int(row[0])

        subject: dict[str, tuple[int | None, str | None]] = {
            **dict.fromkeys(SCOPE["engineer"] | {LATER}, (sensor_of("footfall"), None)),
            **dict.fromkeys(SCOPE["dlh"] - {"ispu_unhealthy"}, (sensor_of("waste_bin"), None)),
            "ispu_unhealthy": (sensor_of("air_quality"), None),
            "crowding": (None, "T-KARTINI"),
        }
        alarm_of = {}
        for rule in sorted(EVERY_RULE):
            row = conn.execute(
                "INSERT INTO alarms (sensor_key, zone_id, rule, severity, state, message, "
                "opened_at) VALUES (%s, %s, %s, 'warning', 'open', %s, now()) RETURNING alarm_id",
                (*subject[rule], rule, f"test alarm {rule}"),
            ).fetchone()
            assert row is not None
            alarm_of[rule] = int(row[0])
        keys = {role: apikeys.create(conn, f"scope {role}", role).key for role in apikeys.ROLES}
        conn.commit()
        yield Scoped(url, keys, alarm_of)


@pytest.fixture(scope="module")
def client(scoped: Scoped) -> Iterator[TestClient]:
    with TestClient(create_app(ApiSettings(database_url=scoped.url, rate_per_s=0))) as c:
        yield c


def key(scoped: Scoped, role: str) -> dict[str, str]:
    return {"X-API-Key": scoped.keys[role]}


def state_of(scoped: Scoped, alarm_id: int) -> dict[str, Any]:
    with psycopg.connect(scoped.url, row_factory=dict_row) as conn:
        row = conn.execute(
            "SELECT state, acknowledged_at, acknowledged_by FROM alarms WHERE alarm_id = %s",
            (alarm_id,),
        ).fetchone()
    assert row is not None
    return row


def assert_problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    detail: str = body["detail"]
    return detail


# --- the list ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", apikeys.ROLES)
def test_each_role_lists_the_alarms_for_it(client: TestClient, scoped: Scoped, role: str) -> None:
    response = client.get("/v1/alarms", headers=key(scoped, role))
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert {i["rule"] for i in items} == scope_of(role)
    assert {i["alarm_id"] for i in items} == {scoped.alarm_of[r] for r in scope_of(role)}
    as_csv = client.get("/v1/alarms?format=csv", headers=key(scoped, role))
    assert as_csv.status_code == 200
    assert len(as_csv.text.strip().splitlines()) == 1 + len(scope_of(role))


def test_dlh_sees_waste_and_air_alarms_on_its_first_day(client: TestClient, scoped: Scoped) -> None:
    """The issue's case: the office the overflow, fire-risk and unhealthy-air alarms exist for."""
    for rule in ("bin_overflow", "bin_fire_risk", "ispu_unhealthy"):
        response = client.get("/v1/alarms", params={"rule": rule}, headers=key(scoped, "dlh"))
        assert response.status_code == 200, response.text
        assert [i["alarm_id"] for i in response.json()["items"]] == [scoped.alarm_of[rule]]


@pytest.mark.parametrize("role", sorted(SCOPE))
def test_asking_for_a_rule_outside_the_scope_is_403(
    client: TestClient, scoped: Scoped, role: str
) -> None:
    for rule in sorted(EVERY_RULE - SCOPE[role]):
        response = client.get("/v1/alarms", params={"rule": rule}, headers=key(scoped, role))
        if rule == LATER:  # not a rule the API knows: 422 (test_unknown_parameters.py)
            assert_problem(response, 422)
            continue
        detail = assert_problem(response, 403)
        assert repr(rule) in detail
        assert repr(role) in detail
        assert repr(audience_of(rule)) in detail, "says whose alarm it is"


def test_other_filters_stay_inside_the_scope(client: TestClient, scoped: Scoped) -> None:
    """Filtering by the crowding alarm's zone or the sensor alarms' sensor never widens a
    role's view."""
    crowding = client.get("/v1/alarms", params={"zone_id": "T-KARTINI"}, headers=key(scoped, "dlh"))
    assert crowding.status_code == 200
    assert crowding.json()["items"] == []
    mine = client.get("/v1/alarms", params={"zone_id": "T-KARTINI"}, headers=key(scoped, "tourism"))
    assert [i["rule"] for i in mine.json()["items"]] == ["crowding"]
    for state in ("open", "acknowledged", "cleared"):
        page = client.get("/v1/alarms", params={"state": state}, headers=key(scoped, "tourism"))
        assert page.status_code == 200
        assert {i["rule"] for i in page.json()["items"]} <= SCOPE["tourism"]


# --- acknowledging -------------------------------------------------------------------------------

# rule acknowledged by each role in scope (each alarm once: the module's tests share them)
ACKNOWLEDGED = {
    "dlh": "bin_overflow",
    "tourism": "crowding",
    "engineer": "sensor_offline",
    "admin": LATER,
}


@pytest.mark.parametrize("role", apikeys.ROLES)
def test_each_role_acknowledges_an_alarm_for_it(
    client: TestClient, scoped: Scoped, role: str
) -> None:
    alarm_id = scoped.alarm_of[ACKNOWLEDGED[role]]
    response = client.post(f"/v1/alarms/{alarm_id}/acknowledge", headers=key(scoped, role))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["alarm_id"], body["state"]) == (alarm_id, "acknowledged")
    assert body["acknowledged_by"] == f"scope {role}"
    row = state_of(scoped, alarm_id)
    assert (row["state"], row["acknowledged_by"]) == ("acknowledged", f"scope {role}")
    again = client.post(f"/v1/alarms/{alarm_id}/acknowledge", headers=key(scoped, role))
    assert "acknowledged" in assert_problem(again, 409)


# (role, rule of an open alarm outside its scope), none of them in ACKNOWLEDGED
OUTSIDE = [
    ("dlh", "battery_low"),
    ("dlh", "anomaly_stuck"),
    ("tourism", "bin_fire_risk"),
    ("tourism", "ispu_unhealthy"),
    ("engineer", "bin_predicted_full"),
    ("engineer", "ispu_unhealthy"),
    ("dlh", LATER),
    ("tourism", LATER),
    ("engineer", LATER),
]


@pytest.mark.parametrize(("role", "rule"), OUTSIDE, ids=[f"{r} {a}" for r, a in OUTSIDE])
def test_acknowledging_an_alarm_outside_the_scope_is_403_and_changes_nothing(
    client: TestClient, scoped: Scoped, role: str, rule: str
) -> None:
    alarm_id = scoped.alarm_of[rule]
    if rule == LATER:  # admin acknowledges it (above): look at one still open
        assert rule not in SCOPE.get(role, set())
    before = state_of(scoped, alarm_id)
    response = client.post(f"/v1/alarms/{alarm_id}/acknowledge", headers=key(scoped, role))
    detail = assert_problem(response, 403)
    assert f"alarm {alarm_id}" in detail
    assert repr(rule) in detail
    assert repr(role) in detail
    assert ("admin only" in detail) if rule == LATER else (repr(audience_of(rule)) in detail)
    assert state_of(scoped, alarm_id) == before


def test_an_alarm_outside_the_scope_is_403_even_when_not_open(
    client: TestClient, scoped: Scoped
) -> None:
    """The scope comes before the state: a role learns nothing of another's alarm's state."""
    alarm_id = scoped.alarm_of["anomaly_drift"]
    with psycopg.connect(scoped.url) as conn:
        conn.execute(
            "UPDATE alarms SET state = 'cleared', cleared_at = now() WHERE alarm_id = %s",
            (alarm_id,),
        )
    detail = assert_problem(
        client.post(f"/v1/alarms/{alarm_id}/acknowledge", headers=key(scoped, "dlh")), 403
    )
    assert "cleared" not in detail
    engineer = client.post(f"/v1/alarms/{alarm_id}/acknowledge", headers=key(scoped, "engineer"))
    assert "cleared" in assert_problem(engineer, 409)


@pytest.mark.parametrize("role", apikeys.ROLES)
def test_an_unknown_alarm_is_404_for_every_role(
    client: TestClient, scoped: Scoped, role: str
) -> None:
    unknown = max(scoped.alarm_of.values()) + 1000
    response = client.post(f"/v1/alarms/{unknown}/acknowledge", headers=key(scoped, role))
    assert f"no alarm {unknown}" in assert_problem(response, 404)


# --- the OpenAPI text ----------------------------------------------------------------------------


def test_the_openapi_document_says_the_scoping(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in (("/v1/alarms", "get"), ("/v1/alarms/{alarm_id}/acknowledge", "post")):
        operation = paths[path][method]
        text = operation["description"]
        for role, rules in SCOPE.items():
            assert f"`{role}`" in text
            assert all(rule in text for rule in rules), (role, text)
        assert "`admin`: every alarm" in text
        assert "403" in text
        assert "role" in operation["responses"]["403"]["description"]
        assert operation["tags"] == ["alarms"]
    rule = next(p for p in paths["/v1/alarms"]["get"]["parameters"] if p["name"] == "rule")
    assert set(rule["schema"]["enum"]) == EVERY_RULE - {LATER}


# --- the simulated days --------------------------------------------------------------------------


@pytest.mark.parametrize("role", apikeys.ROLES)
def test_scopes_on_the_simulated_days(api_client: TestClient, api_data: ApiData, role: str) -> None:
    with psycopg.connect(api_data.url) as conn:
        rows = conn.execute("SELECT alarm_id, rule FROM alarms").fetchall()
    expected = {alarm_id for alarm_id, rule in rows if role == "admin" or rule in SCOPE[role]}
    if role in ("dlh", "engineer", "admin"):
        assert expected, f"the simulated days have alarms for {role}"
    got: set[int] = set()
    while True:
        page = api_client.get(
            "/v1/alarms",
            params={"limit": 1000, "offset": len(got)},
            headers={"X-API-Key": api_data.keys[role]},
        )
        assert page.status_code == 200, page.text
        got |= {i["alarm_id"] for i in page.json()["items"]}
        if page.json()["count"] < 1000:
            break
    assert got == expected
