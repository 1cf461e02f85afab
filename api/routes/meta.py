"""Liveness, readiness and zones."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.deps import Caller, Conn, Format, Paging, caller
from api.models import Page, page_of
from api.problems import problem_response
from api.query import ZONE_KINDS
from api.render import CSV, PROBLEM_RESPONSE, respond
from pantau.db.migrate import available

router = APIRouter(tags=["meta"])


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    status: str = Field(examples=["ready"])
    database: str = Field(examples=["reachable"])
    schema_version: int = Field(examples=[4])


class Zone(BaseModel):
    zone_id: str = Field(examples=["T-KARTINI"])
    name: str = Field(examples=["Pantai Kartini"])
    kind: str = Field(
        examples=["tourism"], description="tourism, village, kecamatan, disposal, air_site"
    )
    kecamatan: str | None = Field(examples=["Jepara"])
    lat: float | None = Field(examples=[-6.589444])
    lon: float | None = Field(examples=[110.646389])
    area_m2: float | None = Field(examples=[35000.0])
    capacity_persons: int | None = Field(examples=[3500])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> Health:
    """Liveness: answers while the process runs, whatever the database does."""
    return Health(status="ok")


@router.get(
    "/ready",
    summary="Readiness: database reachable and schema current",
    response_model=Ready,
    responses={503: PROBLEM_RESPONSE},
)
async def ready(request: Request) -> Any:
    """Ready when the database answers and every migration shipped with Pantau is applied."""
    latest = max(m.version for m in available())
    try:
        async with request.app.state.pool.connection(timeout=2.0) as conn:
            cur = await conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")
            row = await cur.fetchone()
    except Exception as exc:  # noqa: BLE001 (any failure means not ready)
        return problem_response(
            request, 503, "Not ready", f"the database is not reachable: {type(exc).__name__}"
        )
    version = int(row["v"]) if row else 0
    if version < latest:
        return problem_response(
            request, 503, "Not ready",
            f"the schema is at version {version}, Pantau needs {latest}: run `pantau db migrate`",
        )  # fmt: skip
    return Ready(status="ready", database="reachable", schema_version=version)


@router.get(
    "/zones",
    summary="Places: tourist zones, villages, kecamatan, air-station sites",
    response_model=Page[Zone],
    responses=CSV,
)
async def zones(
    request: Request,
    conn: Conn,
    page: Paging,
    who: Annotated[Caller, Depends(caller)],
    fmt: Format = None,
    kind: Annotated[
        str | None, Query(description="Only zones of this kind.", json_schema_extra=ZONE_KINDS)
    ] = None,
) -> Any:
    """Every zone Pantau knows, with its coordinates, area and capacity (any role)."""
    cur = await conn.execute(
        "SELECT zone_id, name, kind, kecamatan, lat, lon, area_m2, capacity_persons FROM zones "
        "WHERE %(kind)s::text IS NULL OR kind = %(kind)s ORDER BY zone_id "
        "LIMIT %(limit)s OFFSET %(offset)s",
        {"kind": kind, "limit": page.limit, "offset": page.offset},
    )
    rows: list[dict[str, Any]] = await cur.fetchall()
    result = page_of([Zone(**r) for r in rows], page.limit, page.offset)
    return respond(request, fmt, result, Zone, "zones")
