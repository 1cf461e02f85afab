"""Engineers: sensors and their health, readings, latest values, anomalies, alarms, rejects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import Conn, Engineer, Format, Paging, Settings, query_time
from api.models import Page, page_of
from api.problems import Problem
from api.query import ZONE_IDS
from api.render import CSV, PROBLEM_RESPONSE, csv_response, respond, wants_csv, wib, wib_rows
from processing.rollup import ROLLUPS

router = APIRouter(tags=["sensors"])
SensorId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", examples=["WB-W-DMS-01-001"])
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: PROBLEM_RESPONSE}

# Rollup widths, finest first: (name, table, width).
WIDTHS = tuple((r.name, r.table, timedelta(milliseconds=r.width_ms)) for r in ROLLUPS)
AUTO_RAW = timedelta(hours=6)  # bucket=auto serves raw readings up to this range
AUTO_POINTS = 1000  # ... and otherwise the finest width giving at most this many buckets
MAX_BUCKETS = 20_000


class Sensor(BaseModel):
    sensor_id: str = Field(examples=["WB-W-DMS-01-001"])
    kind: str = Field(examples=["waste_bin"])
    zone_id: str | None = Field(examples=["W-DMS-01"])
    name: str | None = None
    lat: float | None = Field(examples=[-6.6])
    lon: float | None = Field(examples=[110.7])
    expected_interval_s: int = Field(examples=[900])
    active: bool = True
    online: bool | None = Field(None, description="None: not yet judged by `pantau process`")
    health: str | None = Field(
        None, examples=["reporting"], description="reporting, silent, last_will, never_seen"
    )
    last_seen: datetime | None = None


class LatestValue(BaseModel):
    sensor_id: str = Field(examples=["WB-W-DMS-01-001"])
    metric: str = Field(examples=["fill_pct"])
    unit: str = Field(examples=["%"])
    ts: datetime
    value: float = Field(examples=[42.5])


class OpenAlarm(BaseModel):
    alarm_id: int
    rule: str = Field(examples=["bin_overflow"])
    severity: str
    state: str
    message: str
    opened_at: datetime


class SensorDetail(Sensor):
    latest: list[LatestValue]
    alarms: list[OpenAlarm] = Field(description="Alarms not yet cleared")


class Point(BaseModel):
    ts: datetime = Field(description="Reading time, or bucket start")
    value: float = Field(description="The reading, or the bucket's mean")
    n: int = Field(1, description="Readings in the bucket")
    min: float | None = None
    max: float | None = None
    stddev: float | None = None


class Series(BaseModel):
    sensor_id: str
    metric: str
    unit: str
    bucket: Literal["raw", "1m", "15m", "1h", "1d"]
    start: datetime
    end: datetime
    points: list[Point]


_SENSORS = """
SELECT s.sensor_id, s.kind, s.zone_id, s.name, s.lat, s.lon, s.expected_interval_s, s.active,
       st.online, st.reason AS health, st.last_seen
FROM sensors s LEFT JOIN sensor_status st USING (sensor_key)
WHERE (%(kind)s::text IS NULL OR s.kind = %(kind)s)
  AND (%(zone)s::text IS NULL OR s.zone_id = %(zone)s)
  AND (%(status)s::text IS NULL
       OR (%(status)s = 'online' AND s.active AND st.online)
       OR (%(status)s = 'offline' AND s.active AND NOT coalesce(st.online, false))
       OR (%(status)s = 'inactive' AND NOT s.active))
  AND (%(sensor)s::text IS NULL OR s.sensor_id = %(sensor)s)
ORDER BY s.sensor_id LIMIT %(limit)s OFFSET %(offset)s"""


@router.get(
    "/sensors",
    summary="Sensors, by kind, zone and status",
    response_model=Page[Sensor],
    responses=CSV,
)
async def sensors(
    request: Request,
    conn: Conn,
    page: Paging,
    who: Engineer,
    fmt: Format = None,
    kind: Annotated[Literal["waste_bin", "air_quality", "footfall"] | None, Query()] = None,
    zone_id: Annotated[str | None, Query(max_length=64, json_schema_extra=ZONE_IDS)] = None,
    status: Annotated[Literal["online", "offline", "inactive"] | None, Query()] = None,
) -> Any:
    """Registered sensors with their health as `pantau process` last judged it."""
    cur = await conn.execute(
        _SENSORS,
        {"kind": kind, "zone": zone_id, "status": status, "sensor": None,
         "limit": page.limit, "offset": page.offset},
    )  # fmt: skip
    rows = wib_rows(await cur.fetchall(), "last_seen")
    return respond(
        request,
        fmt,
        page_of([Sensor(**r) for r in rows], page.limit, page.offset),
        Sensor,
        "sensors",
    )


async def _sensor_key(conn: Conn, sensor_id: str) -> tuple[int, str]:
    cur = await conn.execute(
        "SELECT sensor_key, kind FROM sensors WHERE sensor_id = %s", (sensor_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise Problem(404, f"no sensor {sensor_id!r}; list them at /v1/sensors")
    return int(row["sensor_key"]), str(row["kind"])


@router.get(
    "/sensors/{sensor_id}",
    summary="One sensor: latest values, health, open alarms",
    responses=NOT_FOUND,
)
async def sensor(conn: Conn, who: Engineer, sensor_id: SensorId) -> SensorDetail:
    """A sensor's registry entry, its newest value of every metric, its health and alarms."""
    key, _ = await _sensor_key(conn, sensor_id)
    cur = await conn.execute(
        _SENSORS,
        {"kind": None, "zone": None, "status": None, "sensor": sensor_id, "limit": 1, "offset": 0},
    )
    base = wib_rows(await cur.fetchall(), "last_seen")[0]
    cur = await conn.execute(
        "SELECT %(id)s AS sensor_id, m.name AS metric, m.unit, l.ts, l.value FROM latest l "
        "JOIN metrics m USING (metric_id) WHERE l.sensor_key = %(key)s ORDER BY m.metric_id",
        {"id": sensor_id, "key": key},
    )
    latest = wib_rows(await cur.fetchall(), "ts")
    cur = await conn.execute(
        "SELECT alarm_id, rule, severity, state, message, opened_at FROM alarms "
        "WHERE sensor_key = %s AND state <> 'cleared' ORDER BY opened_at DESC",
        (key,),
    )
    alarms = wib_rows(await cur.fetchall(), "opened_at")
    return SensorDetail(
        **base, latest=[LatestValue(**r) for r in latest], alarms=[OpenAlarm(**r) for r in alarms]
    )


def choose_bucket(bucket: str, span: timedelta, raw_max: timedelta) -> str:
    """The width to serve: raw only for short ranges, else the finest with few buckets."""
    if bucket == "raw":
        if span > raw_max:
            raise Problem(
                422,
                f"a range of {span} is too long for raw readings (at most {raw_max}); "
                "ask for bucket=auto or a width (1m, 15m, 1h, 1d)",
            )
        return "raw"
    if bucket == "auto":
        if span <= AUTO_RAW:
            return "raw"
        for name, _, width in WIDTHS:
            if span / width <= AUTO_POINTS:
                return name
        return "1d"
    width = {n: w for n, _, w in WIDTHS}[bucket]
    if span / width > MAX_BUCKETS:
        raise Problem(
            422,
            f"{span / width:.0f} buckets of {bucket} is too many (at most {MAX_BUCKETS}); "
            "choose a wider bucket",
        )
    return bucket


@router.get(
    "/sensors/{sensor_id}/readings",
    summary="A sensor's readings of one metric over a time range, bucketed from the rollups",
    response_model=Series,
    responses={**CSV, **NOT_FOUND},
)
async def readings(
    request: Request,
    conn: Conn,
    settings: Settings,
    who: Engineer,
    sensor_id: SensorId,
    metric: Annotated[str, Query(max_length=64, examples=["fill_pct"])],
    start: Annotated[datetime | None, Query(description="Default: 24 h before end")] = None,
    end: Annotated[datetime | None, Query(description="Default: now")] = None,
    bucket: Annotated[Literal["auto", "raw", "1m", "15m", "1h", "1d"], Query()] = "auto",
    fmt: Format = None,
) -> Any:
    """Raw readings for ranges up to PANTAU_API_RAW_MAX_HOURS; otherwise (or with a width) the
    rollups: per bucket the mean, min, max, standard deviation and count. `auto` serves raw
    readings up to 6 hours and otherwise the finest width giving at most 1,000 buckets."""
    end = query_time(end, "end") or datetime.now(UTC)
    start = query_time(start, "start") or end - timedelta(hours=24)
    if start >= end:
        raise Problem(422, f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    key, kind = await _sensor_key(conn, sensor_id)
    cur = await conn.execute(
        "SELECT m.metric_id, m.unit FROM metrics m JOIN kind_metrics k USING (metric_id) "
        "WHERE m.name = %s AND k.kind = %s",
        (metric, kind),
    )
    row = await cur.fetchone()
    if row is None:
        raise Problem(404, f"a {kind} sensor has no metric {metric!r}; see /v1/sensors/{sensor_id}")
    width = choose_bucket(bucket, end - start, timedelta(hours=settings.raw_max_hours))
    args = {"key": key, "metric": row["metric_id"], "start": start, "end": end}
    if width == "raw":
        cur = await conn.execute(
            "SELECT ts, value FROM readings WHERE sensor_key = %(key)s AND metric_id = %(metric)s "
            "AND ts >= %(start)s AND ts < %(end)s ORDER BY ts",
            args,
        )
    else:
        table = {n: t for n, t, _ in WIDTHS}[width]
        cur = await conn.execute(
            f"SELECT bucket AS ts, sum / n AS value, n, min, max, "
            f"sqrt(greatest(sum_sq / n - (sum / n) ^ 2, 0)) AS stddev FROM {table} "
            "WHERE sensor_key = %(key)s AND metric_id = %(metric)s "
            "AND bucket >= %(start)s AND bucket < %(end)s ORDER BY bucket",
            args,
        )
    points = [Point(**r) for r in wib_rows(await cur.fetchall(), "ts")]
    series = Series(
        sensor_id=sensor_id, metric=metric, unit=row["unit"], bucket=width,
        start=wib(start), end=wib(end), points=points,
    )  # fmt: skip
    if wants_csv(request, fmt):
        return csv_response(
            [p.model_dump() for p in points], list(Point.model_fields), f"{sensor_id}-{metric}"
        )
    return series


@router.get(
    "/latest",
    summary="The newest value of every metric of every sensor of a kind",
    response_model=Page[LatestValue],
    responses=CSV,
)
async def latest(
    request: Request,
    conn: Conn,
    page: Paging,
    who: Engineer,
    kind: Annotated[Literal["waste_bin", "air_quality", "footfall"], Query()],
    fmt: Format = None,
) -> Any:
    """Latest values (never older than a value already shown: late readings do not move them)."""
    if not wants_csv(request, fmt):
        # The dashboards' largest list: PostgreSQL writes the JSON page itself, the same text
        # the models would give, for a fifth of the server's CPU.
        cur = await conn.execute(
            _LATEST_JSON, (page.limit, page.offset, kind, page.limit, page.offset)
        )
        row = await cur.fetchone()
        return Response(row["body"] if row else "{}", media_type="application/json")
    cur = await conn.execute(_LATEST + " LIMIT %s OFFSET %s", (kind, page.limit, page.offset))
    rows = wib_rows(await cur.fetchall(), "ts")
    return csv_response(rows, list(LatestValue.model_fields), f"latest-{kind}")


_LATEST = (
    "SELECT s.sensor_id, m.name AS metric, m.unit, l.ts, l.value, m.metric_id FROM latest l "
    "JOIN sensors s USING (sensor_key) JOIN metrics m USING (metric_id) WHERE s.kind = %s "
    "ORDER BY s.sensor_id, m.metric_id"
)
# As Python renders them: times in WIB, ISO 8601, microseconds only when there are some
# (datetime.isoformat); floats in their shortest form with ".0" on whole numbers (repr).
_WIB_TS = "(ts AT TIME ZONE 'UTC' + interval '7 hours')"
_LATEST_JSON = f"""
SELECT json_build_object(
    'items', coalesce(json_agg(json_build_object(
        'sensor_id', sensor_id, 'metric', metric, 'unit', unit,
        'ts', CASE WHEN extract(microseconds FROM ts)::bigint %% 1000000 = 0
                   THEN to_char({_WIB_TS}, 'YYYY-MM-DD"T"HH24:MI:SS"+07:00"')
                   ELSE to_char({_WIB_TS}, 'YYYY-MM-DD"T"HH24:MI:SS.US"+07:00"') END,
        'value', (CASE WHEN value::text ~ '^-?[0-9]+$' THEN value::text || '.0'
                       ELSE value::text END)::json
    ) ORDER BY sensor_id, metric_id), '[]'::json),
    'limit', %s::int, 'offset', %s::int, 'count', count(*))::text AS body
FROM ({_LATEST} LIMIT %s OFFSET %s) page"""
