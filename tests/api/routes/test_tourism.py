"""What the tourism route answers (api/routes/tourism.py: tourist zones), checked against the raw
readings and ``processing.tourism``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from processing import tourism
from tests.api.routes.helpers import (
    WIB,
    Get,
    check_csv_equals_json,
    check_page_above_maximum_is_a_problem,
    check_pages_concatenate,
    close,
    get_all,
    ts,
)
from tests.fixtures.api import ApiData

pytestmark = pytest.mark.integration

CLOSING = "18:00"  # ProcessSettings.closing_time default (WIB)


def _session_start(end: datetime, closing: str) -> datetime:
    """The last closing time before ``end`` (WIB): the current visiting session began then."""
    h, m = (int(x) for x in closing.split(":"))
    local = end.astimezone(WIB)
    at = local.replace(hour=h, minute=m, second=0, microsecond=0)
    return at if at < local else at - timedelta(days=1)


def test_tourist_zones(get: Get, db: psycopg.Connection[Any], end: datetime) -> None:
    items = get_all(get, "/v1/tourism/zones")
    zones = {
        r["zone_id"]: r
        for r in db.execute(
            "SELECT zone_id, name, area_m2, capacity_persons, params FROM zones z "
            "WHERE EXISTS (SELECT FROM sensors s WHERE s.zone_id = z.zone_id "
            "AND s.kind = 'footfall' AND s.active)"
        ).fetchall()
    }
    assert sorted(z["zone_id"] for z in items) == sorted(zones)
    open_zones = 0
    for z in items:
        reg = zones[z["zone_id"]]
        since = _session_start(end, reg["params"].get("closing", CLOSING))
        minutes = db.execute(
            "SELECT time_bucket('1 minute', r.ts) AS t, "
            "coalesce(sum(r.value) FILTER (WHERE m.name = 'count_in'), 0) AS n_in, "
            "coalesce(sum(r.value) FILTER (WHERE m.name = 'count_out'), 0) AS n_out "
            "FROM readings r JOIN sensors s USING (sensor_key) JOIN metrics m USING (metric_id) "
            "WHERE s.zone_id = %s AND s.kind = 'footfall' AND s.active "
            "AND m.name IN ('count_in', 'count_out') AND r.ts >= %s AND r.ts < %s "
            "GROUP BY 1 ORDER BY 1",
            (z["zone_id"], since, end),
        ).fetchall()
        visitors = sum(r["n_in"] for r in minutes)
        occupancy = 0.0
        for r in minutes:
            occupancy = max(0.0, occupancy + r["n_in"] - r["n_out"])
        assert z["name"] == reg["name"]
        assert z["visitors_today"] == visitors, z["zone_id"]
        assert z["occupancy"] == occupancy, z["zone_id"]
        open_zones += visitors > 0
        assert z["area_m2"] == reg["area_m2"]
        assert z["capacity_persons"] == reg["capacity_persons"]
        if reg["area_m2"]:
            assert close(z["density_ppm2"], occupancy / reg["area_m2"])
            level = int(tourism.fruin_level(np.array([z["density_ppm2"]]))[0])
            assert z["fruin_level"] == tourism.FRUIN_LEVELS[level].letter
        else:
            assert z["density_ppm2"] is None
            assert z["fruin_level"] is None
        ratio = z["capacity_ratio"]
        assert close(ratio, occupancy / reg["capacity_persons"])
        expected = (
            "over capacity" if ratio > 1.0
            else "crowded" if ratio >= 0.9
            else "busy" if ratio >= 0.7
            else "normal"
        )  # fmt: skip
        assert z["crowding"] == expected
        if z["typical_to_date"]:
            assert close(z["vs_typical"], z["visitors_today"] / z["typical_to_date"])
        else:
            assert z["vs_typical"] is None
        assert ts(z["ts"]) <= end
    assert open_zones >= 3  # Friday 14:00: the zones are open and counting
    assert any(z["density_ppm2"] for z in items)


# --- CSV and pages -------------------------------------------------------------------------------


CSV_ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/tourism/zones", {}),
]


@pytest.mark.parametrize(("path", "params"), CSV_ENDPOINTS, ids=[p for p, _ in CSV_ENDPOINTS])
def test_csv_equals_json(
    api_client: TestClient, api_data: ApiData, path: str, params: dict[str, Any]
) -> None:
    check_csv_equals_json(api_client, api_data, path, params)


PAGED: list[tuple[str, dict[str, Any], int]] = [
    ("/v1/tourism/zones", {}, 5),
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
