"""DLH, air: stations with their current ISPU and US AQI, and the last 24 hours."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from api.deps import Caller, Conn, Format, Paging, require
from api.models import Page, page_of
from api.problems import Problem
from api.render import CSV, PROBLEM_RESPONSE, csv_response, wants_csv, wib
from api.render import respond as render

router = APIRouter(prefix="/air", tags=["air"])
Dlh = Annotated[Caller, Depends(require("dlh"))]


class IspuHour(BaseModel):
    hour: datetime = Field(description="End of the averaging window")
    ispu: float = Field(examples=[81.0])
    category: str = Field(
        examples=["Sedang"], description="Baik, Sedang, Tidak Sehat, Sangat Tidak Sehat, Berbahaya"
    )
    dominant: str = Field(examples=["pm25"])
    beyond_index: bool
    pm25_ispu: float | None
    pm10_ispu: float | None
    so2_ispu: float | None
    co_ispu: float | None
    o3_ispu: float | None
    no2_ispu: float | None
    pm25_ugm3: float | None = Field(description="The averaged PM2.5 behind the index")
    us_aqi: float | None = Field(examples=[112.0])
    us_category: str | None = Field(examples=["Unhealthy for Sensitive Groups"])


class Station(BaseModel):
    sensor_id: str = Field(examples=["AQ-A-CENTRE-001"])
    zone_id: str | None
    name: str | None
    lat: float | None
    lon: float | None
    current: IspuHour | None = Field(description="The newest hour with enough data; None: none yet")


class StationHistory(BaseModel):
    sensor_id: str
    hours: list[IspuHour]


_COLUMNS = (
    "hour, ispu, category, dominant, beyond_index, pm25_ispu, pm10_ispu, so2_ispu, co_ispu, "
    "o3_ispu, no2_ispu, pm25_ugm3, us_aqi, us_category"
)


def _hour(row: dict[str, Any]) -> IspuHour:
    row = dict(row)
    row["hour"] = wib(row["hour"])
    return IspuHour(**{k: row[k] for k in IspuHour.model_fields})


@router.get(
    "/stations",
    summary="Air stations with their current ISPU, category and dominant pollutant",
    response_model=Page[Station],
    responses=CSV,
)
async def stations(request: Request, conn: Conn, page: Paging, who: Dlh, fmt: Format = None) -> Any:
    """The newest hourly ISPU of each station (trailing 24 h mean, Permen LHK P.14/2020)."""
    cur = await conn.execute(
        f"SELECT s.sensor_id, s.zone_id, s.name, s.lat, s.lon, h.* FROM sensors s "
        f"LEFT JOIN LATERAL (SELECT {_COLUMNS} FROM air_ispu_hourly a "
        "WHERE a.sensor_key = s.sensor_key "
        "ORDER BY hour DESC LIMIT 1) h ON true WHERE s.kind = 'air_quality' AND s.active "
        "ORDER BY s.sensor_id LIMIT %s OFFSET %s",
        (page.limit, page.offset),
    )
    rows = await cur.fetchall()
    items = [
        Station(
            sensor_id=r["sensor_id"], zone_id=r["zone_id"], name=r["name"],
            lat=r["lat"], lon=r["lon"],
            current=_hour(r) if r["hour"] is not None else None,
        )
        for r in rows
    ]  # fmt: skip
    if wants_csv(request, fmt):
        flat = [
            {"sensor_id": s.sensor_id, "zone_id": s.zone_id, "name": s.name,
             "lat": s.lat, "lon": s.lon,
             **(s.current.model_dump() if s.current else {})}
            for s in items
        ]  # fmt: skip
        return csv_response(
            flat,
            ["sensor_id", "zone_id", "name", "lat", "lon", *IspuHour.model_fields],
            "air-stations",
        )
    return render(request, fmt, page_of(items, page.limit, page.offset), Station, "air-stations")


@router.get(
    "/stations/{sensor_id}/history",
    summary="A station's hourly ISPU over the last hours",
    response_model=StationHistory,
    responses={**CSV, 404: PROBLEM_RESPONSE},
)
async def history(
    request: Request,
    conn: Conn,
    who: Dlh,
    sensor_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")],
    hours: Annotated[int, Query(ge=1, le=24 * 31, description="How many hours back")] = 24,
    fmt: Format = None,
) -> Any:
    """The station's ISPU hour by hour, newest last (default: the last 24 hours)."""
    cur = await conn.execute(
        "SELECT sensor_key FROM sensors WHERE sensor_id = %s AND kind = 'air_quality'", (sensor_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise Problem(404, f"no air station {sensor_id!r}; list them at /v1/air/stations")
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM air_ispu_hourly WHERE sensor_key = %s "
        "AND hour > (SELECT max(hour) FROM air_ispu_hourly WHERE sensor_key = %s) "
        "- make_interval(hours => %s) "
        "ORDER BY hour",
        (row["sensor_key"], row["sensor_key"], hours),
    )
    items = [_hour(r) for r in await cur.fetchall()]
    if wants_csv(request, fmt):
        return csv_response(
            [h.model_dump() for h in items], list(IspuHour.model_fields), f"{sensor_id}-ispu"
        )
    return StationHistory(sensor_id=sensor_id, hours=items)
