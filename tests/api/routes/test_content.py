"""What the read API answers, checked against the raw tables.

Every expected value here is computed independently of ``api/``: with SQL on ``readings``,
``zones``, ``sensors``, ``alarms``, ``waste_events``... (through a plain psycopg connection to
the test database, as its owner) or in Python with the pure functions of ``processing/``. The
data is two simulated days of the Jepara fleet ending Friday 2026-11-27 14:00 WIB
(``tests/fixtures/api.py``); the job ran as of that time.

Only one test writes: it acknowledges one open alarm and checks that nothing else changed.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from api import apikeys
from pantau.db.migrate import available
from processing import air, tourism
from tests.fixtures.api import ApiData

pytestmark = pytest.mark.integration

WIB = timezone(timedelta(hours=7))
PROBLEM = "application/problem+json"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")
MAX_PAGE = 1000
THRESHOLD_PCT = 80.0  # ProcessSettings.collection_threshold_pct default
COLLECTION_HOUR = 7  # ProcessSettings.collection_hour default (WIB)
CLOSING = "18:00"  # ProcessSettings.closing_time default (WIB)

Get = Callable[..., Any]


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(api_data: ApiData) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """The test database as its owner (not through the API), autocommit, dict rows."""
    with psycopg.connect(api_data.url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def end(api_data: ApiData) -> datetime:
    """The simulated "now": Friday 2026-11-27 14:00 WIB."""
    return datetime.fromtimestamp(api_data.end_ms / 1000, UTC)


@pytest.fixture(scope="module")
def get(api_client: TestClient, api_data: ApiData) -> Get:
    """GET a path as ``role`` (default admin), assert 200 JSON, return the body."""

    def call(path: str, role: str = "admin", **params: Any) -> Any:
        response = api_client.get(
            path, params=_params(params), headers={"X-API-Key": api_data.keys[role]}
        )
        assert response.status_code == 200, (path, params, response.text)
        assert response.headers["content-type"].startswith("application/json")
        return response.json()

    return call


def _params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}


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


# --- meta ----------------------------------------------------------------------------------------


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


# --- latest, anomalies, alarms -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["waste_bin", "air_quality", "footfall"])
def test_latest_by_kind(get: Get, db: psycopg.Connection[Any], kind: str) -> None:
    newest = newest_readings(db, "s.kind = %s", (kind,))
    items = get_all(get, "/v1/latest", kind=kind)
    got = {(i["sensor_id"], i["metric"]): (i["unit"], ts(i["ts"]), i["value"]) for i in items}
    assert len(got) == len(items)
    assert got == {(r["sensor_id"], r["metric"]): (r["unit"], r["ts"], r["value"]) for r in newest}


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
    candidates = [r for r in before if r["state"] == "open"]
    assert candidates, "the simulated data has open alarms"
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


# --- waste ---------------------------------------------------------------------------------------


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
        assert math.isclose(v["collections_per_week"], row["n"] / period * 7)
        assert v["overflow_hours"] >= 0
    assert sum(v["collections"] for v in items) > 0


# --- air -----------------------------------------------------------------------------------------

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


# --- tourism -------------------------------------------------------------------------------------


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


# --- conventions: WIB times, CSV, pages ----------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_every_timestamp_is_wib(get: Get, end: datetime) -> None:
    bodies = [
        get("/v1/sensors", limit=50),
        get("/v1/sensors/WB-W-DMS-07-001"),
        get("/v1/sensors/AQ-CENTRE/readings", metric="pm25_ugm3", start=end - timedelta(hours=3),
            end=end),
        get("/v1/sensors/AQ-CENTRE/readings", metric="pm25_ugm3", start=end - timedelta(days=2),
            end=end),
        get("/v1/latest", kind="footfall"),
        get("/v1/anomalies", limit=50),
        get("/v1/alarms"),
        get("/v1/waste/bins", limit=50),
        get("/v1/air/stations"),
        get("/v1/air/stations/AQ-CENTRE/history"),
        get("/v1/tourism/zones"),
    ]  # fmt: skip
    found = [s for body in bodies for s in _strings(body) if ISO.match(s)]
    assert len(found) > 300
    assert [s for s in found if not s.endswith("+07:00")] == []


CSV_ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/zones", {}),
    ("/v1/sensors", {"kind": "air_quality"}),
    ("/v1/sensors/AQ-CENTRE/readings", {"metric": "pm25_ugm3", "start": "2026-11-27T08:00:00+07:00",
                                        "end": "2026-11-27T14:00:00+07:00"}),
    ("/v1/sensors/AQ-CENTRE/readings", {"metric": "pm25_ugm3", "start": "2026-11-26T14:00:00+07:00",
                                        "end": "2026-11-27T14:00:00+07:00", "bucket": "1h"}),
    ("/v1/latest", {"kind": "footfall"}),
    ("/v1/anomalies", {"limit": 60}),
    ("/v1/alarms", {}),
    ("/v1/rejects", {}),
    ("/v1/waste/bins", {"zone_id": "W-DMS-07"}),
    ("/v1/waste/villages", {}),
    ("/v1/waste/collection-plan", {}),
    ("/v1/air/stations", {}),
    ("/v1/air/stations/AQ-CENTRE/history", {}),
    ("/v1/tourism/zones", {}),
]  # fmt: skip


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


@pytest.mark.parametrize(("path", "params"), CSV_ENDPOINTS, ids=[p for p, _ in CSV_ENDPOINTS])
def test_csv_equals_json(
    api_client: TestClient, api_data: ApiData, path: str, params: dict[str, Any]
) -> None:
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


PAGED = [
    ("/v1/zones", {}, 7),
    ("/v1/sensors", {}, 50),
    ("/v1/latest", {"kind": "air_quality"}, 9),
    ("/v1/anomalies", {"kind": "stuck"}, 40),  # no tied sort keys here (see above)
    ("/v1/alarms", {}, 5),
    ("/v1/waste/bins", {}, 60),
    ("/v1/waste/villages", {}, 8),
    ("/v1/air/stations", {}, 3),
    ("/v1/tourism/zones", {}, 5),
]


@pytest.mark.parametrize(("path", "params", "limit"), PAGED, ids=[p for p, _, _ in PAGED])
def test_pages_concatenate(get: Get, path: str, params: dict[str, Any], limit: int) -> None:
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


@pytest.mark.parametrize("path", [p for p, _, _ in PAGED])
def test_page_above_maximum_is_a_problem(
    api_client: TestClient, api_data: ApiData, path: str
) -> None:
    params = dict(next(q for p, q, _ in PAGED if p == path))
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
