"""What the route tests share: the API's conventions as constants, helpers that read the API
and the raw tables, and the checks that every list endpoint passes (CSV equals JSON, pages
concatenate, a page above the maximum is a problem), which each route module's tests run on
that module's endpoints.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.fixtures.api import ApiData

WIB = timezone(timedelta(hours=7))
PROBLEM = "application/problem+json"
MAX_PAGE = 1000

Get = Callable[..., Any]


def get_all(get: Get, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list endpoint, page after page of the largest size."""
    items: list[dict[str, Any]] = []
    while True:
        page = get(path, limit=MAX_PAGE, offset=len(items), **params)
        items.extend(page["items"])
        if page["count"] < MAX_PAGE:
            return items


def ts(text: str) -> datetime:
    """A timestamp of the API, which must carry the WIB offset."""
    assert text.endswith("+07:00"), text
    return datetime.fromisoformat(text)


def close(a: float | None, b: float | None, rel: float = 1e-9, abs_: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def newest_readings(db: psycopg.Connection[Any], where: str, args: tuple[Any, ...]) -> list[Any]:
    """The newest reading of every (sensor, metric) matching ``where``, by DISTINCT ON."""
    return db.execute(
        "SELECT DISTINCT ON (r.sensor_key, r.metric_id) s.sensor_id, m.name AS metric, m.unit, "
        "r.ts, r.value FROM readings r JOIN sensors s USING (sensor_key) "
        f"JOIN metrics m USING (metric_id) WHERE {where} "
        "ORDER BY r.sensor_key, r.metric_id, r.ts DESC",
        args,
    ).fetchall()


# --- the checks of every list endpoint -----------------------------------------------------------


def _json_rows(path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if path.endswith("/readings"):
        return body["points"]
    if path.endswith("/history"):
        return body["hours"]
    if path.endswith("/collection-plan"):
        return body["stops"]
    if path == "/v1/air/stations":
        return [
            {**{k: v for k, v in s.items() if k != "current"}, **(s["current"] or {})}
            for s in body["items"]
        ]
    return body["items"]


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def check_csv_equals_json(
    api_client: TestClient, api_data: ApiData, path: str, params: dict[str, Any]
) -> None:
    """The CSV of ``path`` (asked for by parameter or by Accept) holds the JSON's rows."""
    key = {"X-API-Key": api_data.keys["admin"]}
    as_json = api_client.get(path, params=params, headers=key)
    assert as_json.status_code == 200
    rows = _json_rows(path, as_json.json())
    by_param = api_client.get(path, params={**params, "format": "csv"}, headers=key)
    by_accept = api_client.get(path, params=params, headers={**key, "Accept": "text/csv"})
    explicit_json = api_client.get(path, params={**params, "format": "json"}, headers=key)
    assert explicit_json.json() == as_json.json()
    for response in (by_param, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        table = list(csv.reader(io.StringIO(response.text)))
        header, data = table[0], table[1:]
        assert by_param.text == by_accept.text
        if rows:
            assert header == list(rows[0])
        else:
            assert header  # the columns, even without rows
        assert data == [[_cell(r[c]) for c in header] for r in rows]
    if path != "/v1/rejects":
        assert rows, "a CSV check on an empty list proves little"


def check_pages_concatenate(get: Get, path: str, params: dict[str, Any], limit: int) -> None:
    """Pages of ``limit`` items, one after the other, make up the whole list."""
    whole = get(path, limit=MAX_PAGE, **params)
    assert whole["limit"] == MAX_PAGE
    assert whole["offset"] == 0
    assert whole["count"] == len(whole["items"]) < MAX_PAGE
    assert whole["count"] > limit, "at least two pages"
    pages: list[list[dict[str, Any]]] = []
    while True:
        page = get(path, limit=limit, offset=limit * len(pages), **params)
        assert (page["limit"], page["offset"]) == (limit, limit * len(pages))
        assert page["count"] == len(page["items"]) <= limit
        pages.append(page["items"])
        if page["count"] < limit:
            break
    joined = [item for p in pages for item in p]
    assert joined == whole["items"]
    past = get(path, limit=limit, offset=whole["count"] + 5, **params)
    assert (past["items"], past["count"]) == ([], 0)


def check_page_above_maximum_is_a_problem(
    api_client: TestClient, api_data: ApiData, path: str, params: dict[str, Any]
) -> None:
    """A page size above the maximum, or not a positive integer, is a 422 problem."""
    key = {"X-API-Key": api_data.keys["admin"]}
    assert (
        api_client.get(path, params={**params, "limit": MAX_PAGE}, headers=key).status_code == 200
    )
    for limit in (MAX_PAGE + 1, 10**9):
        response = api_client.get(path, params={**params, "limit": limit}, headers=key)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["status"] == 422
        assert str(MAX_PAGE) in body["detail"]
        assert body["instance"] == path
    for bad in ("0", "-1", "ten"):
        response = api_client.get(path, params={**params, "limit": bad}, headers=key)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
