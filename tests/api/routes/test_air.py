"""What the air routes answer (api/routes/air.py: stations with their current ISPU, their
history), checked against the raw readings and ``processing.air``."""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from processing import air
from tests.api.routes.helpers import (
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

MEASURED = ("pm25", "pm10", "so2", "co", "o3", "no2")


def _ispu_at(db: psycopg.Connection[Any], sensor_id: str, hour: datetime) -> dict[str, Any]:
    """ISPU for the window ending at ``hour``, from the raw readings of the 24 hours before."""
    sub = np.full((len(air.POLLUTANTS), 1), np.nan)
    out: dict[str, Any] = {"beyond_index": False}
    for p in MEASURED:
        means = db.execute(
            "SELECT time_bucket('1 hour', r.ts) AS h, avg(r.value) AS mean FROM readings r "
            "JOIN sensors s USING (sensor_key) JOIN metrics m USING (metric_id) "
            "WHERE s.sensor_id = %s AND m.name = %s AND r.ts >= %s AND r.ts < %s GROUP BY 1",
            (sensor_id, air.METRIC_OF[p], hour - timedelta(hours=24), hour),
        ).fetchall()
        conc = sum(r["mean"] for r in means) / len(means) if len(means) >= 18 else math.nan
        index, beyond = air.ispu_subindex(p, np.array([conc]))
        out["beyond_index"] |= bool(beyond[0])
        sub[air.POLLUTANTS.index(p), 0] = index[0]
        out[f"{p}_ispu"] = None if math.isnan(index[0]) else float(index[0])
        out[f"{p}_ugm3"] = conc
    overall, dominant = air.ispu_overall(sub)
    out["ispu"] = float(overall[0])
    out["dominant"] = air.POLLUTANTS[int(dominant[0])]
    out["category"] = air.ISPU_CATEGORIES[int(air.ispu_category(overall)[0])].name_id
    aqi, _ = air.us_aqi_pm25(np.array([out["pm25_ugm3"]]))
    out["us_aqi"] = float(aqi[0])
    out["us_category"] = air.US_AQI_CATEGORIES[int(air.us_aqi_category(aqi)[0])].name_en
    return out


def test_air_stations_current_ispu(get: Get, db: psycopg.Connection[Any], end: datetime) -> None:
    stations = get_all(get, "/v1/air/stations")
    registry = db.execute(
        "SELECT sensor_id, zone_id, name, lat, lon FROM sensors WHERE kind = 'air_quality' "
        "AND active ORDER BY sensor_id"
    ).fetchall()
    assert [
        {k: s[k] for k in ("sensor_id", "zone_id", "name", "lat", "lon")} for s in stations
    ] == [dict(r) for r in registry]
    for station in stations:
        current = station["current"]
        assert current is not None, station["sensor_id"]
        hour = ts(current["hour"])
        assert hour == end  # the job ran at 14:00 WIB: the hour ending then is the newest
        expected = _ispu_at(db, station["sensor_id"], hour)
        for name in ("ispu", "category", "dominant", "us_aqi", "us_category", "beyond_index",
                     *(f"{p}_ispu" for p in MEASURED)):  # fmt: skip
            assert current[name] == expected[name], (station["sensor_id"], name)
        assert close(current["pm25_ugm3"], expected["pm25_ugm3"], rel=1e-9)
        sub = [current[f"{p}_ispu"] for p in MEASURED]
        assert current["ispu"] == max(s for s in sub if s is not None)
        assert current[f"{current['dominant']}_ispu"] == current["ispu"]


@pytest.mark.parametrize("hours", [None, 5, 48])
def test_air_station_history(get: Get, hours: int | None) -> None:
    station = get("/v1/air/stations", limit=1)["items"][0]
    params = {} if hours is None else {"hours": hours}
    history = get(f"/v1/air/stations/{station['sensor_id']}/history", **params)
    assert history["sensor_id"] == station["sensor_id"]
    times = [ts(h["hour"]) for h in history["hours"]]
    limit = 24 if hours is None else hours
    assert 0 < len(times) <= limit
    assert times[-1] == ts(station["current"]["hour"])
    assert history["hours"][-1] == station["current"]
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(times))
    assert times[0] > times[-1] - timedelta(hours=limit)
    if hours is None:
        assert len(times) == 24  # the data covers the last day fully


# --- CSV and pages -------------------------------------------------------------------------------


CSV_ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/air/stations", {}),
    ("/v1/air/stations/AQ-CENTRE/history", {}),
]


@pytest.mark.parametrize(("path", "params"), CSV_ENDPOINTS, ids=[p for p, _ in CSV_ENDPOINTS])
def test_csv_equals_json(
    api_client: TestClient, api_data: ApiData, path: str, params: dict[str, Any]
) -> None:
    check_csv_equals_json(api_client, api_data, path, params)


PAGED: list[tuple[str, dict[str, Any], int]] = [
    ("/v1/air/stations", {}, 3),
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
