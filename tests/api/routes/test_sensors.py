"""What the sensor routes answer (api/routes/sensors.py: sensors, a sensor, its readings raw and
bucketed, the latest readings), checked against the raw tables."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.routes.helpers import (
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

# --- sensors -------------------------------------------------------------------------------------

SENSOR_FILTERS: list[dict[str, str]] = [
    {},
    {"kind": "waste_bin"},
    {"kind": "air_quality"},
    {"kind": "footfall"},
    {"zone_id": "W-DMS-07"},
    {"zone_id": "T-KARTINI"},
    {"status": "online"},
    {"status": "offline"},
    {"status": "inactive"},
    {"kind": "waste_bin", "status": "offline"},
    {"kind": "footfall", "zone_id": "T-MUSEUM-KARTINI", "status": "offline"},
]


@pytest.mark.parametrize("filters", SENSOR_FILTERS, ids=lambda f: "&".join(f.values()) or "all")
def test_sensors_filters(get: Get, db: psycopg.Connection[Any], filters: dict[str, str]) -> None:
    rows = db.execute(
        "SELECT s.sensor_id, s.kind, s.zone_id, s.active, st.online FROM sensors s "
        "LEFT JOIN sensor_status st USING (sensor_key) ORDER BY s.sensor_id"
    ).fetchall()

    def wanted(r: dict[str, Any]) -> bool:
        status = {
            "online": r["active"] and r["online"] is True,
            "offline": r["active"] and r["online"] is not True,
            "inactive": not r["active"],
        }
        return (
            r["kind"] == filters.get("kind", r["kind"])
            and r["zone_id"] == filters.get("zone_id", r["zone_id"])
            and ("status" not in filters or status[filters["status"]])
        )

    expected = [r["sensor_id"] for r in rows if wanted(r)]
    items = get_all(get, "/v1/sensors", **filters)
    assert [i["sensor_id"] for i in items] == expected
    if filters == {"status": "offline"}:
        assert len(expected) == 5  # the simulated silent sensors: the filter is exercised


def test_sensor_counts_by_kind(get: Get, db: psycopg.Connection[Any]) -> None:
    counts = {
        r["kind"]: r["n"]
        for r in db.execute("SELECT kind, count(*) AS n FROM sensors GROUP BY kind").fetchall()
    }
    assert counts == {"waste_bin": 336, "air_quality": 7, "footfall": 15}
    for kind, n in counts.items():
        assert len(get_all(get, "/v1/sensors", kind=kind)) == n


@pytest.mark.parametrize(
    "sensor_id",
    ["WB-W-DMS-07-001", "TPS-W-KEC-01-002", "AQ-KARIMUNJAWA", "FF-T-KARTINI-001",
     "FF-T-MUSEUM-KARTINI-001", "WB-W-DMS-04-006"],
)  # fmt: skip
def test_sensor_detail(get: Get, db: psycopg.Connection[Any], sensor_id: str) -> None:
    detail = get(f"/v1/sensors/{sensor_id}")
    newest = newest_readings(db, "s.sensor_id = %s", (sensor_id,))
    assert newest, "the sensor has readings"
    got = {v["metric"]: (v["unit"], ts(v["ts"]), v["value"]) for v in detail["latest"]}
    assert got == {r["metric"]: (r["unit"], r["ts"], r["value"]) for r in newest}
    assert {v["sensor_id"] for v in detail["latest"]} == {sensor_id}

    reg = db.execute(
        "SELECT s.kind, s.zone_id, s.name, s.lat, s.lon, s.expected_interval_s, s.active, "
        "st.online, st.reason, (SELECT max(ts) FROM readings r WHERE r.sensor_key = s.sensor_key) "
        "AS newest FROM sensors s LEFT JOIN sensor_status st USING (sensor_key) "
        "WHERE s.sensor_id = %s",
        (sensor_id,),
    ).fetchone()
    assert reg is not None
    for field in ("kind", "zone_id", "name", "lat", "lon", "expected_interval_s", "active"):
        assert detail[field] == reg[field], field
    assert detail["online"] == reg["online"]
    assert detail["health"] == reg["reason"]
    assert ts(detail["last_seen"]) == reg["newest"]

    alarms = db.execute(
        "SELECT a.alarm_id, a.rule, a.state FROM alarms a JOIN sensors s USING (sensor_key) "
        "WHERE s.sensor_id = %s AND a.state <> 'cleared' ORDER BY a.alarm_id",
        (sensor_id,),
    ).fetchall()
    got_alarms = sorted((a["alarm_id"], a["rule"], a["state"]) for a in detail["alarms"])
    assert got_alarms == [(a["alarm_id"], a["rule"], a["state"]) for a in alarms]
    for alarm in detail["alarms"]:
        ts(alarm["opened_at"])


def test_silent_sensor_is_offline(get: Get) -> None:
    detail = get("/v1/sensors/WB-W-DMS-04-006")
    assert detail["online"] is False
    assert detail["health"] == "silent"
    assert "sensor_offline" in {a["rule"] for a in detail["alarms"]}


# --- readings ------------------------------------------------------------------------------------

SERIES = [
    ("WB-W-DMS-07-001", "fill_pct"),
    ("AQ-CENTRE", "pm25_ugm3"),
    ("FF-T-KARTINI-001", "count_in"),
]


def _series_key(db: psycopg.Connection[Any], sensor_id: str, metric: str) -> tuple[int, int]:
    row = db.execute(
        "SELECT s.sensor_key, m.metric_id FROM sensors s, metrics m "
        "WHERE s.sensor_id = %s AND m.name = %s",
        (sensor_id, metric),
    ).fetchone()
    assert row is not None
    return row["sensor_key"], row["metric_id"]


@pytest.mark.parametrize(("sensor_id", "metric"), SERIES)
@pytest.mark.parametrize("bucket", ["raw", "auto"])
def test_raw_readings_equal_rows(
    get: Get, db: psycopg.Connection[Any], end: datetime, sensor_id: str, metric: str,
    bucket: str,
) -> None:  # fmt: skip
    key, metric_id = _series_key(db, sensor_id, metric)
    start = end - timedelta(hours=6)
    rows = db.execute(
        "SELECT ts, value FROM readings WHERE sensor_key = %s AND metric_id = %s "
        "AND ts >= %s AND ts < %s ORDER BY ts",
        (key, metric_id, start, end),
    ).fetchall()
    assert len(rows) >= 10
    series = get(
        f"/v1/sensors/{sensor_id}/readings", metric=metric, start=start, end=end, bucket=bucket
    )
    assert series["bucket"] == "raw"
    assert (series["sensor_id"], series["metric"]) == (sensor_id, metric)
    assert ts(series["start"]) == start
    assert ts(series["end"]) == end
    assert [(ts(p["ts"]), p["value"], p["n"]) for p in series["points"]] == [
        (r["ts"], r["value"], 1) for r in rows
    ]


def test_raw_range_is_start_inclusive_end_exclusive(
    get: Get, db: psycopg.Connection[Any], end: datetime
) -> None:
    key, metric_id = _series_key(db, "AQ-CENTRE", "pm25_ugm3")
    times = [
        r["ts"]
        for r in db.execute(
            "SELECT ts FROM readings WHERE sensor_key = %s AND metric_id = %s AND ts < %s "
            "ORDER BY ts DESC LIMIT 5",
            (key, metric_id, end),
        ).fetchall()
    ][::-1]
    series = get(
        "/v1/sensors/AQ-CENTRE/readings", metric="pm25_ugm3", start=times[1], end=times[3],
        bucket="raw",
    )  # fmt: skip
    assert [ts(p["ts"]) for p in series["points"]] == times[1:3]


BUCKETED = [
    # (width, span, sensor, metric): 1h over two days, 15m over a day, 1d over two days.
    ("1h", timedelta(days=2), "AQ-CENTRE", "pm25_ugm3"),
    ("1h", timedelta(days=2), "WB-W-DMS-07-001", "fill_pct"),
    ("15m", timedelta(days=1), "AQ-KARIMUNJAWA", "o3_ugm3"),
    ("15m", timedelta(days=1), "FF-T-KARTINI-001", "count_in"),
    ("1d", timedelta(days=3), "WB-W-DMS-20-002", "temp_c"),
    ("1m", timedelta(hours=3), "FF-T-OURLAND-001", "count_out"),
]


@pytest.mark.parametrize(("width", "span", "sensor_id", "metric"), BUCKETED)
def test_bucketed_readings_equal_sql_over_raw(
    get: Get, db: psycopg.Connection[Any], end: datetime, width: str, span: timedelta,
    sensor_id: str, metric: str,
) -> None:  # fmt: skip
    """Each bucket (from the rollup tables) equals AVG/MIN/MAX/COUNT of the raw readings."""
    key, metric_id = _series_key(db, sensor_id, metric)
    interval = {"1m": "1 minute", "15m": "15 minutes", "1h": "1 hour", "1d": "1 day"}[width]
    start = end - span
    rows = db.execute(
        "SELECT * FROM (SELECT time_bucket(%s::interval, ts) AS bucket, avg(value) AS mean, "
        "min(value) AS lo, max(value) AS hi, count(*) AS n, stddev_pop(value) AS sd "
        "FROM readings WHERE sensor_key = %s AND metric_id = %s GROUP BY 1) b "
        "WHERE bucket >= %s AND bucket < %s ORDER BY bucket",
        (interval, key, metric_id, start, end),
    ).fetchall()
    assert len(rows) >= 3
    series = get(
        f"/v1/sensors/{sensor_id}/readings", metric=metric, start=start, end=end, bucket=width
    )
    assert series["bucket"] == width
    points = series["points"]
    assert [ts(p["ts"]) for p in points] == [r["bucket"] for r in rows]
    for p, r in zip(points, rows, strict=True):
        assert p["n"] == r["n"], p
        assert close(p["value"], r["mean"]), (p, r)
        assert p["min"] == r["lo"]
        assert p["max"] == r["hi"]
        assert close(p["stddev"], r["sd"], rel=1e-6, abs_=1e-4 * max(1.0, abs(r["mean"])))


AUTO = [
    (timedelta(minutes=5), "raw"),
    (timedelta(hours=6), "raw"),
    (timedelta(hours=6, seconds=1), "1m"),
    (timedelta(minutes=1000), "1m"),
    (timedelta(minutes=1001), "15m"),
    (timedelta(days=2), "15m"),
    (timedelta(minutes=15 * 1000), "15m"),
    (timedelta(minutes=15 * 1000 + 1), "1h"),
    (timedelta(days=30), "1h"),
    (timedelta(hours=1000), "1h"),
    (timedelta(hours=1001), "1d"),
    (timedelta(days=3650), "1d"),
]


@pytest.mark.parametrize(("span", "expected"), AUTO, ids=[str(s) for s, _ in AUTO])
def test_bucket_auto_width(get: Get, end: datetime, span: timedelta, expected: str) -> None:
    """auto: raw up to 6 h, else the finest width giving at most 1,000 buckets (documented)."""
    series = get(
        "/v1/sensors/AQ-CENTRE/readings", metric="pm25_ugm3", start=end - span, end=end,
        bucket="auto",
    )  # fmt: skip
    assert series["bucket"] == expected
    width = {"1m": 60, "15m": 900, "1h": 3600, "1d": 86_400}.get(expected)
    if width is not None:
        assert len(series["points"]) <= 1000 + 1
        assert all(ts(p["ts"]).timestamp() % width == 0 for p in series["points"])


# --- latest --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["waste_bin", "air_quality", "footfall"])
def test_latest_by_kind(get: Get, db: psycopg.Connection[Any], kind: str) -> None:
    newest = newest_readings(db, "s.kind = %s", (kind,))
    items = get_all(get, "/v1/latest", kind=kind)
    got = {(i["sensor_id"], i["metric"]): (i["unit"], ts(i["ts"]), i["value"]) for i in items}
    assert len(got) == len(items)
    assert got == {(r["sensor_id"], r["metric"]): (r["unit"], r["ts"], r["value"]) for r in newest}


# --- CSV and pages -------------------------------------------------------------------------------


CSV_ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/sensors", {"kind": "air_quality"}),
    ("/v1/sensors/AQ-CENTRE/readings", {"metric": "pm25_ugm3", "start": "2026-11-27T08:00:00+07:00",
                                        "end": "2026-11-27T14:00:00+07:00"}),
    ("/v1/sensors/AQ-CENTRE/readings", {"metric": "pm25_ugm3", "start": "2026-11-26T14:00:00+07:00",
                                        "end": "2026-11-27T14:00:00+07:00", "bucket": "1h"}),
    ("/v1/latest", {"kind": "footfall"}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "params"), CSV_ENDPOINTS, ids=[p for p, _ in CSV_ENDPOINTS])
def test_csv_equals_json(
    api_client: TestClient, api_data: ApiData, path: str, params: dict[str, Any]
) -> None:
    check_csv_equals_json(api_client, api_data, path, params)


PAGED: list[tuple[str, dict[str, Any], int]] = [
    ("/v1/sensors", {}, 50),
    ("/v1/latest", {"kind": "air_quality"}, 9),
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
