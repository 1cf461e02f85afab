"""DLH, waste: bins with fill and predictions, villages compared, today's collection plan."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.deps import Caller, Conn, Format, Paging, Settings, require
from api.models import Page, page_of
from api.problems import Problem
from api.query import ZONE_IDS
from api.render import CSV, PROBLEM_RESPONSE, csv_response, wants_csv, wib
from api.render import respond as render
from processing.route import plan_route

router = APIRouter(prefix="/waste", tags=["waste"])
Dlh = Annotated[Caller, Depends(require("dlh"))]


class Bin(BaseModel):
    sensor_id: str = Field(examples=["WB-W-DMS-01-001"])
    zone_id: str | None = Field(examples=["W-DMS-01"])
    lat: float | None
    lon: float | None
    ts: datetime = Field(description="Time of the newest fill reading")
    fill_pct: float = Field(examples=[83.5])
    fill_rate_pct_per_h: float | None = Field(
        examples=[1.2], description="Least squares since the last emptying"
    )
    predicted_full_at: datetime | None
    last_emptied_at: datetime | None
    needs_collection: bool
    collection_reason: str = Field(
        examples=["over_threshold"], description="none, over_threshold, predicted_full, overflow"
    )
    overflowing: bool
    fire_risk: str = Field(examples=["none"], description="unknown, none, watch, alert")
    temp_c: float | None
    battery_v: float | None


class Village(BaseModel):
    zone_id: str = Field(examples=["W-DMS-01"])
    name: str = Field(examples=["Desa Bandengan"])
    period_days: int = Field(examples=[28])
    days_reported: float | None = Field(
        examples=[6.5],
        description="Days of the period the village's bins have reported for (1 to "
        "period_days); collections_per_week is over these",
    )
    bins: int
    collections: int
    collections_per_week: float
    mean_fill_at_collection_pct: float | None = Field(
        description="Collecting at 40 % is a wasted trip"
    )
    wasted_trips: int = Field(description="Collections below 40 % fill")
    overflow_hours: float


class Stop(BaseModel):
    order: int = Field(description="1 = first bin after the depot")
    sensor_id: str
    zone_id: str | None
    lat: float
    lon: float
    fill_pct: float
    collection_reason: str
    leg_m: float = Field(description="Straight-line distance from the previous stop")


class Plan(BaseModel):
    depot: tuple[float, float] = Field(description="lat, lon where the route starts")
    disposal_site: tuple[float, float] = Field(description="lat, lon where it ends (TPA)")
    stops: list[Stop]
    last_leg_m: float = Field(description="Last bin to the disposal site")
    total_m: float
    nearest_neighbour_m: float = Field(description="Length before 2-opt, for comparison")
    heuristic: str


_BINS = """
SELECT s.sensor_id, s.zone_id, s.lat, s.lon, w.ts, w.fill_pct, w.fill_rate_pct_per_h,
       w.predicted_full_at, w.last_emptied_at, w.needs_collection, w.collection_reason,
       w.overflowing, w.fire_risk, w.temp_c, w.battery_v
FROM waste_status w JOIN sensors s USING (sensor_key)
WHERE s.active AND (%(zone)s::text IS NULL OR s.zone_id = %(zone)s)
  AND (%(needs)s::boolean IS NULL OR w.needs_collection = %(needs)s)
ORDER BY s.sensor_id LIMIT %(limit)s OFFSET %(offset)s"""


def _bin_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        for name in ("ts", "predicted_full_at", "last_emptied_at"):
            row[name] = wib(row[name])
    return rows


@router.get(
    "/bins",
    summary="Bins with fill, fill rate, predicted full time, needs-collection",
    response_model=Page[Bin],
    responses=CSV,
)
async def bins(
    request: Request,
    conn: Conn,
    page: Paging,
    who: Dlh,
    fmt: Format = None,
    zone_id: Annotated[
        str | None,
        Query(max_length=64, description="A village or kecamatan", json_schema_extra=ZONE_IDS),
    ] = None,
    needs_collection: Annotated[bool | None, Query()] = None,
) -> Any:
    """Each bin's state as of the last run of `pantau process`."""
    cur = await conn.execute(
        _BINS,
        {"zone": zone_id, "needs": needs_collection, "limit": page.limit, "offset": page.offset},
    )
    rows = _bin_rows(await cur.fetchall())
    return render(
        request, fmt, page_of([Bin(**r) for r in rows], page.limit, page.offset), Bin, "bins"
    )


@router.get(
    "/villages",
    summary="Villages compared: collections, fill at collection, overflow",
    response_model=Page[Village],
    responses=CSV,
)
async def villages(request: Request, conn: Conn, page: Paging, who: Dlh, fmt: Format = None) -> Any:
    """Per village (the zone of its bins) over the last PANTAU_PROCESS_VILLAGE_PERIOD_DAYS."""
    cur = await conn.execute(
        "SELECT f.zone_id, z.name, f.period_days, f.days_reported, f.bins, f.collections, "
        "f.collections_per_week, "
        "f.mean_fill_at_collection_pct, f.wasted_trips, f.overflow_hours "
        "FROM waste_village_figures f JOIN zones z USING (zone_id) ORDER BY f.zone_id "
        "LIMIT %s OFFSET %s",
        (page.limit, page.offset),
    )
    rows = await cur.fetchall()
    return render(
        request,
        fmt,
        page_of([Village(**r) for r in rows], page.limit, page.offset),
        Village,
        "villages",
    )


LatLon = tuple[float, float]


async def _places(conn: Conn, depot: LatLon | None) -> tuple[LatLon, LatLon]:
    cur = await conn.execute(
        "SELECT lat, lon FROM zones WHERE kind = 'disposal' AND lat IS NOT NULL "
        "ORDER BY zone_id LIMIT 1"
    )
    row = await cur.fetchone()
    if row is None:
        raise Problem(
            409,
            "no disposal site (a zone of kind 'disposal') is registered; add one to the fleet file",
        )
    disposal = (float(row["lat"]), float(row["lon"]))
    return depot or disposal, disposal


@router.get(
    "/collection-plan",
    summary="Today's collection plan: the bins to collect, in route order",
    responses={**CSV, 409: PROBLEM_RESPONSE},
    response_model=Plan,
)
async def collection_plan(
    request: Request,
    conn: Conn,
    settings: Settings,
    who: Dlh,
    fmt: Format = None,
    zone_id: Annotated[
        str | None,
        Query(
            max_length=64, description="Only this village or kecamatan", json_schema_extra=ZONE_IDS
        ),
    ] = None,
) -> Any:
    """The bins that need collection (over the threshold, overflowing, or predicted full before
    the next round), ordered for one truck from the depot (PANTAU_API_DEPOT, default the
    disposal site) to the disposal site: nearest neighbour, then 2-opt, on straight-line
    distances (roads are not modelled). Bins without coordinates are left out."""
    depot, disposal = await _places(conn, settings.depot)
    # The bins' state changes only when `pantau process` runs: plan once per run.
    cur = await conn.execute("SELECT last_run_at FROM job_runs WHERE job = 'process'")
    run = await cur.fetchone()
    key = (zone_id, depot, disposal, run["last_run_at"] if run else None)
    plan = _PLANS.get(key)
    if plan is None:
        plan = await _plan(conn, zone_id, depot, disposal)
        if len(_PLANS) >= 64:
            _PLANS.clear()
        _PLANS[key] = plan
    if wants_csv(request, fmt):
        return csv_response(
            [s.model_dump() for s in plan.stops], list(Stop.model_fields), "collection-plan"
        )
    return plan


_PLANS: dict[tuple[Any, ...], Plan] = {}


async def _plan(conn: Conn, zone_id: str | None, depot: LatLon, disposal: LatLon) -> Plan:
    cur = await conn.execute(_BINS, {"zone": zone_id, "needs": True, "limit": 100_000, "offset": 0})
    rows = [
        r for r in _bin_rows(await cur.fetchall()) if r["lat"] is not None and r["lon"] is not None
    ]
    lat = np.array([r["lat"] for r in rows], dtype=np.float64)
    lon = np.array([r["lon"] for r in rows], dtype=np.float64)
    # Off the event loop: 2-opt on a few hundred bins takes tens of milliseconds.
    route = await asyncio.to_thread(plan_route, depot, lat, lon, disposal)
    stops = [
        Stop(
            order=n + 1, sensor_id=rows[i]["sensor_id"], zone_id=rows[i]["zone_id"],
            lat=rows[i]["lat"], lon=rows[i]["lon"], fill_pct=rows[i]["fill_pct"],
            collection_reason=rows[i]["collection_reason"], leg_m=float(route.leg_m[n]),
        )
        for n, i in enumerate(route.order.tolist())
    ]  # fmt: skip
    return Plan(
        depot=depot, disposal_site=disposal, stops=stops, last_leg_m=float(route.leg_m[-1]),
        total_m=route.total_m, nearest_neighbour_m=route.nn_total_m,
        heuristic="nearest neighbour from the depot, then 2-opt; straight-line distances",
    )  # fmt: skip
