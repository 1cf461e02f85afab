"""What the waste routes answer (api/routes/waste.py: bins, villages, the collection plan), checked
against the raw tables."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.routes.helpers import (
    WIB,
    Get,
    check_csv_equals_json,
    check_page_above_maximum_is_a_problem,
    check_pages_concatenate,
    close,
    get_all,
    newest_readings,
    ts,
)
from tests.fixtures.api import ApiData

pytestmark = pytest.mark.integration

THRESHOLD_PCT = 80.0  # ProcessSettings.collection_threshold_pct default
COLLECTION_HOUR = 7  # ProcessSettings.collection_hour default (WIB)


def _next_round(end: datetime) -> datetime:
    local = end.astimezone(WIB)
    at = local.replace(hour=COLLECTION_HOUR, minute=0, second=0, microsecond=0)
    return at if at > local else at + timedelta(days=1)


def test_waste_bins(get: Get, db: psycopg.Connection[Any], end: datetime) -> None:
    newest = {
        r["sensor_id"]: r for r in newest_readings(db, "m.name = 'fill_pct'", ())
    }  # fmt: skip
    registry = {
        r["sensor_id"]: r
        for r in db.execute(
            "SELECT sensor_id, zone_id, lat, lon FROM sensors WHERE kind = 'waste_bin' AND active"
        ).fetchall()
    }
    items = get_all(get, "/v1/waste/bins")
    assert [b["sensor_id"] for b in items] == sorted(registry)
    to_round = _next_round(end) - end
    reasons = Counter(b["collection_reason"] for b in items)
    for b in items:
        reg, fill = registry[b["sensor_id"]], newest[b["sensor_id"]]
        assert (b["zone_id"], b["lat"], b["lon"]) == (reg["zone_id"], reg["lat"], reg["lon"])
        assert b["fill_pct"] == fill["value"], b["sensor_id"]
        assert ts(b["ts"]) == fill["ts"]
        assert b["needs_collection"] == (b["collection_reason"] != "none"), b
        assert b["overflowing"] == (b["fill_pct"] >= 100.0)
        reason = b["collection_reason"]
        if reason == "overflow":
            assert b["fill_pct"] >= 100.0
        elif reason == "over_threshold":
            assert THRESHOLD_PCT <= b["fill_pct"] < 100.0
        elif reason == "predicted_full":
            assert b["fill_pct"] < THRESHOLD_PCT
            assert b["predicted_full_at"] is not None
            assert ts(b["predicted_full_at"]) <= ts(b["ts"]) + to_round + timedelta(seconds=1)
        else:
            assert reason == "none"
            assert b["fill_pct"] < THRESHOLD_PCT
            full = b["predicted_full_at"]
            assert full is None or ts(full) >= ts(b["ts"]) + to_round - timedelta(seconds=1)
        for name in ("predicted_full_at", "last_emptied_at"):
            if b[name] is not None:
                ts(b[name])
    assert reasons["none"] > 0
    assert sum(n for r, n in reasons.items() if r != "none") > 0
    needing = get_all(get, "/v1/waste/bins", needs_collection="true")
    assert [b["sensor_id"] for b in needing] == [
        b["sensor_id"] for b in items if b["needs_collection"]
    ]
    in_zone = get_all(get, "/v1/waste/bins", zone_id="W-DMS-07")
    assert [b["sensor_id"] for b in in_zone] == sorted(
        s for s, r in registry.items() if r["zone_id"] == "W-DMS-07"
    )


def _haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (m), written out here (sphere of mean radius 6,371,008.8 m)."""
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    dphi, dlam = phi2 - phi1, math.radians(b[1] - a[1])
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def test_collection_plan(get: Get, db: psycopg.Connection[Any]) -> None:
    disposal = db.execute(
        "SELECT lat, lon FROM zones WHERE kind = 'disposal' ORDER BY zone_id LIMIT 1"
    ).fetchone()
    assert disposal is not None
    site = (disposal["lat"], disposal["lon"])
    bins = db.execute(
        "SELECT s.sensor_id, s.lat, s.lon, w.fill_pct, w.collection_reason FROM waste_status w "
        "JOIN sensors s USING (sensor_key) WHERE s.active AND w.needs_collection "
        "AND s.lat IS NOT NULL AND s.lon IS NOT NULL"
    ).fetchall()
    assert len(bins) >= 3
    plan = get("/v1/waste/collection-plan")
    assert tuple(plan["disposal_site"]) == site
    assert tuple(plan["depot"]) == site  # PANTAU_API_DEPOT unset: the trucks start at the site
    stops = plan["stops"]
    assert [s["order"] for s in stops] == list(range(1, len(stops) + 1))
    assert Counter(s["sensor_id"] for s in stops) == Counter(b["sensor_id"] for b in bins)
    by_id = {b["sensor_id"]: b for b in bins}
    for s in stops:
        b = by_id[s["sensor_id"]]
        assert (s["lat"], s["lon"], s["fill_pct"], s["collection_reason"]) == (
            b["lat"], b["lon"], b["fill_pct"], b["collection_reason"]
        )  # fmt: skip
    points = [tuple(plan["depot"]), *((s["lat"], s["lon"]) for s in stops), site]
    legs = [_haversine(a, b) for a, b in itertools.pairwise(points)]
    for s, leg in zip(stops, legs, strict=False):
        assert math.isclose(s["leg_m"], leg, rel_tol=1e-9), s
    assert math.isclose(plan["last_leg_m"], legs[-1], rel_tol=1e-9)
    assert math.isclose(plan["total_m"], sum(legs), rel_tol=1e-9)
    assert math.isclose(sum(s["leg_m"] for s in stops) + plan["last_leg_m"], plan["total_m"])
    assert plan["total_m"] <= plan["nearest_neighbour_m"] * (1 + 1e-12)

    # Nearest neighbour from the depot, recomputed: its length is the one reported.
    todo = list(by_id)
    here, nn = tuple(plan["depot"]), 0.0
    while todo:
        nxt = min(todo, key=lambda s: _haversine(here, (by_id[s]["lat"], by_id[s]["lon"])))
        nn += _haversine(here, (by_id[nxt]["lat"], by_id[nxt]["lon"]))
        here = (by_id[nxt]["lat"], by_id[nxt]["lon"])
        todo.remove(nxt)
    nn += _haversine(here, site)
    assert math.isclose(plan["nearest_neighbour_m"], nn, rel_tol=1e-9)

    # 2-opt optimum: no reversal of a segment of stops shortens the path.
    n = len(points)
    for i in range(1, n - 2):
        for j in range(i + 1, n - 1):
            change = (
                _haversine(points[i - 1], points[j]) + _haversine(points[i], points[j + 1])
                - legs[i - 1] - legs[j]
            )  # fmt: skip
            assert change >= -1e-6 * plan["total_m"], (i, j, change)

    # A village's plan holds only its bins that need collection.
    zone = stops[0]["zone_id"]
    local = get("/v1/waste/collection-plan", zone_id=zone)
    assert sorted(s["sensor_id"] for s in local["stops"]) == sorted(
        s["sensor_id"] for s in stops if s["zone_id"] == zone
    )


def test_collection_plan_without_bins(get: Get) -> None:
    plan = get("/v1/waste/collection-plan", zone_id="T-KARTINI")  # a zone without bins
    assert plan["stops"] == []
    direct = _haversine(tuple(plan["depot"]), tuple(plan["disposal_site"]))
    assert math.isclose(plan["total_m"], direct, abs_tol=1e-6)
    assert math.isclose(plan["last_leg_m"], direct, abs_tol=1e-6)


def test_village_figures(get: Get, db: psycopg.Connection[Any], end: datetime) -> None:
    items = get_all(get, "/v1/waste/villages")
    assert items
    names = {r["zone_id"]: r["name"] for r in db.execute("SELECT zone_id, name FROM zones")}
    bins = {
        r["zone_id"]: r["n"]
        for r in db.execute(
            "SELECT zone_id, count(*) AS n FROM sensors WHERE kind = 'waste_bin' AND active "
            "AND zone_id IS NOT NULL GROUP BY zone_id"
        ).fetchall()
    }
    assert sorted(v["zone_id"] for v in items) == sorted(bins)
    for v in items:
        period = v["period_days"]
        row = db.execute(
            "SELECT count(*) AS n, avg(e.fill_before) AS mean, "
            "count(*) FILTER (WHERE e.fill_before < 40) AS wasted FROM waste_events e "
            "JOIN sensors s USING (sensor_key) WHERE s.zone_id = %s AND s.active "
            "AND e.ts > %s AND e.ts <= %s",
            (v["zone_id"], end - timedelta(days=period), end),
        ).fetchone()
        assert row is not None
        assert v["name"] == names[v["zone_id"]]
        assert v["bins"] == bins[v["zone_id"]]
        assert v["collections"] == row["n"], v
        assert v["wasted_trips"] == row["wasted"]
        assert close(v["mean_fill_at_collection_pct"], row["mean"])
        # Per week over the days the village's bins have reported for, at most the period.
        assert 1 <= v["days_reported"] <= period
        assert math.isclose(v["collections_per_week"], row["n"] / v["days_reported"] * 7)
        assert v["overflow_hours"] >= 0
    assert sum(v["collections"] for v in items) > 0


# --- CSV and pages -------------------------------------------------------------------------------


CSV_ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/waste/bins", {"zone_id": "W-DMS-07"}),
    ("/v1/waste/villages", {}),
    ("/v1/waste/collection-plan", {}),
]


@pytest.mark.parametrize(("path", "params"), CSV_ENDPOINTS, ids=[p for p, _ in CSV_ENDPOINTS])
def test_csv_equals_json(
    api_client: TestClient, api_data: ApiData, path: str, params: dict[str, Any]
) -> None:
    check_csv_equals_json(api_client, api_data, path, params)


PAGED: list[tuple[str, dict[str, Any], int]] = [
    ("/v1/waste/bins", {}, 60),
    ("/v1/waste/villages", {}, 8),
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
