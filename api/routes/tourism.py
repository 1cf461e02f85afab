"""Tourism office: occupancy, density, crowding and visitors today against a typical day."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.deps import Caller, Conn, Format, Paging, require
from api.models import Page, page_of
from api.render import CSV, wib
from api.render import respond as render

router = APIRouter(prefix="/tourism", tags=["tourism"])
Tourism = Annotated[Caller, Depends(require("tourism"))]


class TouristZone(BaseModel):
    zone_id: str = Field(examples=["T-KARTINI"])
    name: str = Field(examples=["Pantai Kartini"])
    ts: datetime = Field(description="Time of the newest count")
    occupancy: float = Field(
        examples=[1240.0], description="People inside: in - out since opening, never below 0"
    )
    capacity_persons: int | None = Field(examples=[3500])
    capacity_ratio: float | None = Field(examples=[0.35])
    crowding: str = Field(
        examples=["normal"], description="normal, busy, crowded, over capacity, unknown"
    )
    area_m2: float | None
    density_ppm2: float | None = Field(examples=[0.035], description="Persons per square metre")
    fruin_level: str | None = Field(
        examples=["A"], description="Fruin walkway level of service A-F"
    )
    visitors_today: float = Field(examples=[2310.0])
    typical_to_date: float | None = Field(
        examples=[1980.0],
        description="Median visitors by this hour on the same weekday, previous weeks",
    )
    vs_typical: float | None = Field(
        examples=[1.17], description="visitors_today / typical_to_date"
    )


@router.get(
    "/zones",
    summary="Tourist zones now: occupancy, density, crowding, today vs typical",
    response_model=Page[TouristZone],
    responses=CSV,
)
async def zones(
    request: Request, conn: Conn, page: Paging, who: Tourism, fmt: Format = None
) -> Any:
    """Each zone's state as of the last run of `pantau process`."""
    cur = await conn.execute(
        "SELECT t.zone_id, z.name, t.ts, t.occupancy, z.capacity_persons, "
        "t.capacity_ratio, t.crowding, z.area_m2, t.density_ppm2, t.fruin_level, "
        "t.visitors_today, t.typical_to_date, "
        "CASE WHEN t.typical_to_date > 0 THEN t.visitors_today / t.typical_to_date END "
        "AS vs_typical FROM tourism_status t JOIN zones z USING (zone_id) ORDER BY t.zone_id "
        "LIMIT %s OFFSET %s",
        (page.limit, page.offset),
    )
    rows = await cur.fetchall()
    for row in rows:
        row["ts"] = wib(row["ts"])
    return render(
        request,
        fmt,
        page_of([TouristZone(**r) for r in rows], page.limit, page.offset),
        TouristZone,
        "tourist-zones",
    )
