"""What the event routes answer (api/routes/events.py: anomalies, alarms and their
acknowledgement, rejects), checked against the raw tables.

Only one test writes: it acknowledges one open alarm and checks that nothing else changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api import apikeys
from api.audiences import sees
from tests.api.routes.helpers import (
    PROBLEM,
    Get,
    check_csv_equals_json,
    check_page_above_maximum_is_a_problem,
    check_pages_concatenate,
    get_all,
    ts,
)
from tests.fixtures.api import ApiData

pytestmark = pytest.mark.integration

# --- anomalies -----------------------------------------------------------------------------------

ANOMALY_FILTERS: list[dict[str, Any]] = [
    {},
    {"kind": "stuck"},
    {"kind": "spike"},
    {"kind": "level_shift"},
    {"kind": "drift"},
    {"sensor_id": "WB-W-DMS-20-002"},
    {"sensor_id": "WB-W-DMS-20-002", "kind": "stuck"},
    {"start": "2026-11-26T12:00:00+07:00", "end": "2026-11-27T00:00:00+07:00"},
    {"kind": "spike", "start": "2026-11-26T12:00:00+07:00"},
]


@pytest.mark.parametrize("filters", ANOMALY_FILTERS, ids=lambda f: "&".join(f.values()) or "all")
def test_anomalies_filters(get: Get, db: psycopg.Connection[Any], filters: dict[str, Any]) -> None:
    rows = db.execute(
        "SELECT s.sensor_id, m.name AS metric, a.ts, a.kind, a.score, a.observed, a.expected "
        "FROM anomalies a JOIN sensors s USING (sensor_key) JOIN metrics m USING (metric_id)"
    ).fetchall()
    start = datetime.fromisoformat(filters["start"]) if "start" in filters else None
    stop = datetime.fromisoformat(filters["end"]) if "end" in filters else None
    expected = {
        (r["sensor_id"], r["metric"], r["ts"], r["kind"]): (
            r["score"],
            r["observed"],
            r["expected"],
        )
        for r in rows
        if r["kind"] == filters.get("kind", r["kind"])
        and r["sensor_id"] == filters.get("sensor_id", r["sensor_id"])
        and (start is None or r["ts"] >= start)
        and (stop is None or r["ts"] < stop)
    }
    items = get_all(get, "/v1/anomalies", **filters)
    got = {
        (i["sensor_id"], i["metric"], ts(i["ts"]), i["kind"]): (
            i["score"], i["observed"], i["expected"]
        )
        for i in items
    }  # fmt: skip
    assert len(got) == len(items) == len(expected)
    assert got == expected
    times = [ts(i["ts"]) for i in items]
    assert times == sorted(times, reverse=True), "newest first"
    if not filters:
        assert len(items) > 100


def test_anomaly_pages_around_a_tie_equal_the_list(get: Get) -> None:
    """Pages of several sizes covering the tied pair must equal the slices of the full list
    (about 60 pages: with the ambiguous order, many of them come out swapped or repeated)."""
    items = get_all(get, "/v1/anomalies")
    sort_key = [(i["ts"], i["sensor_id"], i["kind"]) for i in items]
    tied = [n for n in range(len(items) - 1) if sort_key[n] == sort_key[n + 1]]
    assert tied, "the simulated data has two anomalies with the same sort key"
    n = tied[0]
    wrong = []
    for limit in (1, 2, 3, 5, 10, 40):
        for offset in range(max(0, n - limit + 1), n + 2):
            page = get("/v1/anomalies", limit=limit, offset=offset)["items"]
            if page != items[offset : offset + limit]:
                wrong.append((limit, offset))
    assert wrong == []


# --- alarms --------------------------------------------------------------------------------------

ALARM_COLUMNS = (
    "a.alarm_id, s.sensor_id, a.zone_id, a.rule, a.severity, a.state, a.message, a.opened_at, "
    "a.acknowledged_at, a.acknowledged_by, a.cleared_at, a.last_value"
)


def _alarm_rows(db: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return db.execute(
        f"SELECT {ALARM_COLUMNS} FROM alarms a LEFT JOIN sensors s USING (sensor_key) "
        "ORDER BY a.alarm_id"
    ).fetchall()


def _alarm_of_item(item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    for name in ("opened_at", "acknowledged_at", "cleared_at"):
        out[name] = ts(item[name]) if item[name] is not None else None
    return out


@pytest.mark.parametrize(
    "filters",
    [{}, {"state": "open"}, {"state": "cleared"}, {"rule": "sensor_offline"},
     {"sensor_id": "TPS-W-KEC-01-002"}, {"sensor_id": "TPS-W-KEC-01-002", "rule": "anomaly_stuck"}],
    ids=lambda f: "&".join(f.values()) or "all",
)  # fmt: skip
def test_alarms_list(get: Get, db: psycopg.Connection[Any], filters: dict[str, str]) -> None:
    rows = [
        r
        for r in _alarm_rows(db)
        if all(r[k] == v for k, v in filters.items())
    ]  # fmt: skip
    items = get_all(get, "/v1/alarms", **filters)
    assert sorted((_alarm_of_item(i) for i in items), key=lambda a: a["alarm_id"]) == rows
    order = [(ts(i["opened_at"]), i["alarm_id"]) for i in items]
    assert order == sorted(order, reverse=True), "newest first"
    if not filters:
        assert len(rows) >= 10


def test_acknowledge_flow(
    api_client: TestClient, api_data: ApiData, db: psycopg.Connection[Any]
) -> None:
    before = _alarm_rows(db)
    # An engineer acknowledges a sensor alarm (the rules of its scope, api/audiences.py).
    candidates = [r for r in before if r["state"] == "open" and sees("engineer", r["rule"])]
    assert candidates, "the simulated data has open sensor alarms"
    target = candidates[-1]
    alarm_id = target["alarm_id"]
    key = api_data.keys["engineer"]
    parsed = apikeys.parse(key)
    assert parsed is not None
    name_row = db.execute("SELECT name FROM api_keys WHERE key_id = %s", (parsed[0],)).fetchone()
    assert name_row is not None
    headers = {"X-API-Key": key}

    first = api_client.post(f"/v1/alarms/{alarm_id}/acknowledge", headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["alarm_id"] == alarm_id
    assert body["state"] == "acknowledged"
    assert body["acknowledged_by"] == name_row["name"] == "test engineer"
    assert ts(body["acknowledged_at"]) >= ts(body["opened_at"])

    second = api_client.post(f"/v1/alarms/{alarm_id}/acknowledge", headers=headers)
    assert second.status_code == 409
    assert second.headers["content-type"] == PROBLEM
    assert second.json()["status"] == 409
    assert "acknowledged" in second.json()["detail"]

    unknown = max(r["alarm_id"] for r in before) + 1000
    missing = api_client.post(f"/v1/alarms/{unknown}/acknowledge", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["instance"] == f"/v1/alarms/{unknown}/acknowledge"

    after = {r["alarm_id"]: r for r in _alarm_rows(db)}
    row = after.pop(alarm_id)
    assert row["state"] == "acknowledged"
    assert row["acknowledged_by"] == "test engineer"
    assert row["acknowledged_at"] == ts(body["acknowledged_at"])
    assert row["cleared_at"] is None
    assert {k: v for k, v in row.items() if not k.startswith(("state", "acknowledged"))} == {
        k: v for k, v in target.items() if not k.startswith(("state", "acknowledged"))
    }
    # Isolation: no other alarm changed.
    assert after == {r["alarm_id"]: r for r in before if r["alarm_id"] != alarm_id}


# --- CSV and pages -------------------------------------------------------------------------------


CSV_ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/anomalies", {"limit": 60}),
    ("/v1/alarms", {}),
    ("/v1/rejects", {}),
]


@pytest.mark.parametrize(("path", "params"), CSV_ENDPOINTS, ids=[p for p, _ in CSV_ENDPOINTS])
def test_csv_equals_json(
    api_client: TestClient, api_data: ApiData, path: str, params: dict[str, Any]
) -> None:
    check_csv_equals_json(api_client, api_data, path, params)


PAGED: list[tuple[str, dict[str, Any], int]] = [
    ("/v1/anomalies", {"kind": "stuck"}, 40),  # no tied sort keys here (see above)
    ("/v1/alarms", {}, 5),
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
