"""Engineers: what the pipeline flagged or refused: anomalies, alarms (and acknowledging them),
rejects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from api.deps import Conn, Engineer, Format, Paging, query_time
from api.models import Page, page_of
from api.problems import Problem
from api.render import CSV, PROBLEM_RESPONSE, respond, wib_rows

router = APIRouter(tags=["sensors"])


class Anomaly(BaseModel):
    sensor_id: str
    metric: str
    ts: datetime
    kind: str = Field(examples=["spike"])
    score: float = Field(examples=[0.93], ge=0, le=1)
    observed: float | None
    expected: float | None


class Alarm(BaseModel):
    alarm_id: int
    sensor_id: str | None
    zone_id: str | None
    rule: str = Field(examples=["sensor_offline"])
    severity: str = Field(examples=["warning"])
    state: str = Field(examples=["open"], description="open, acknowledged, cleared")
    message: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    last_value: float | None


class Reject(BaseModel):
    received_at: datetime
    topic: str
    reason: str = Field(examples=["bad_json"])
    detail: str
    sensor_id: str | None
    metric: str | None
    payload_len: int
    payload_head: str = Field(description="The first 200 bytes, as text")


@router.get(
    "/anomalies",
    summary="Anomalies found by the detectors, newest first",
    response_model=Page[Anomaly],
    responses=CSV,
)
async def anomalies(
    request: Request,
    conn: Conn,
    page: Paging,
    who: Engineer,
    fmt: Format = None,
    sensor_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[
        Literal["out_of_range", "impossible", "spike", "level_shift", "stuck", "drift"] | None,
        Query(),
    ] = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Any:
    """Each anomaly with its score in [0.5, 1], observed and expected value."""
    start, end = query_time(start, "start"), query_time(end, "end")
    cur = await conn.execute(
        "SELECT s.sensor_id, m.name AS metric, a.ts, a.kind, a.score, a.observed, a.expected "
        "FROM anomalies a JOIN sensors s USING (sensor_key) JOIN metrics m USING (metric_id) "
        "WHERE (%(sensor)s::text IS NULL OR s.sensor_id = %(sensor)s) "
        "AND (%(kind)s::text IS NULL OR a.kind = %(kind)s) "
        "AND (%(start)s::timestamptz IS NULL OR a.ts >= %(start)s) "
        "AND (%(end)s::timestamptz IS NULL OR a.ts < %(end)s) "
        "ORDER BY a.ts DESC, s.sensor_id, m.name, a.kind LIMIT %(limit)s OFFSET %(offset)s",
        {
            "sensor": sensor_id,
            "kind": kind,
            "start": start,
            "end": end,
            "limit": page.limit,
            "offset": page.offset,
        },
    )
    rows = wib_rows(await cur.fetchall(), "ts")
    return respond(
        request,
        fmt,
        page_of([Anomaly(**r) for r in rows], page.limit, page.offset),
        Anomaly,
        "anomalies",
    )


_ALARMS = """
SELECT a.alarm_id, s.sensor_id, a.zone_id, a.rule, a.severity, a.state, a.message, a.opened_at,
       a.acknowledged_at, a.acknowledged_by, a.cleared_at, a.last_value
FROM alarms a LEFT JOIN sensors s USING (sensor_key)
WHERE (%(state)s::text IS NULL OR a.state = %(state)s)
  AND (%(rule)s::text IS NULL OR a.rule = %(rule)s)
  AND (%(sensor)s::text IS NULL OR s.sensor_id = %(sensor)s)
  AND (%(zone)s::text IS NULL OR a.zone_id = %(zone)s)
  AND (%(id)s::bigint IS NULL OR a.alarm_id = %(id)s)
ORDER BY a.opened_at DESC, a.alarm_id DESC LIMIT %(limit)s OFFSET %(offset)s"""
_TIMES = ("opened_at", "acknowledged_at", "cleared_at")


@router.get("/alarms", summary="Alarms, newest first", response_model=Page[Alarm], responses=CSV)
async def alarms(
    request: Request,
    conn: Conn,
    page: Paging,
    who: Engineer,
    fmt: Format = None,
    state: Annotated[Literal["open", "acknowledged", "cleared"] | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    sensor_id: Annotated[str | None, Query(max_length=64)] = None,
    zone_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    """Alarms opened by `pantau process`: open → acknowledged → cleared."""
    cur = await conn.execute(
        _ALARMS,
        {"state": state, "rule": rule, "sensor": sensor_id, "zone": zone_id, "id": None,
         "limit": page.limit, "offset": page.offset},
    )  # fmt: skip
    rows = wib_rows(await cur.fetchall(), *_TIMES)
    return respond(
        request, fmt, page_of([Alarm(**r) for r in rows], page.limit, page.offset), Alarm, "alarms"
    )


@router.post(
    "/alarms/{alarm_id}/acknowledge",
    summary="Acknowledge an open alarm",
    responses={404: PROBLEM_RESPONSE, 409: PROBLEM_RESPONSE},
)
async def acknowledge(
    conn: Conn, who: Engineer, alarm_id: Annotated[int, Path(ge=1, le=2**62)]
) -> Alarm:
    """Marks an open alarm acknowledged by the key's name. It still clears by itself when its
    condition has been good long enough. 409 when it is already acknowledged or cleared."""
    cur = await conn.execute(
        "UPDATE alarms SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %s "
        "WHERE alarm_id = %s AND state = 'open' RETURNING alarm_id",
        (who.name, alarm_id),
    )
    changed = await cur.fetchone()
    cur = await conn.execute(
        _ALARMS,
        {
            "state": None,
            "rule": None,
            "sensor": None,
            "zone": None,
            "id": alarm_id,
            "limit": 1,
            "offset": 0,
        },
    )
    rows = wib_rows(await cur.fetchall(), *_TIMES)
    if not rows:
        raise Problem(404, f"no alarm {alarm_id}; list them at /v1/alarms")
    if changed is None:
        raise Problem(409, f"alarm {alarm_id} is {rows[0]['state']}, not open")
    return Alarm(**rows[0])


@router.get(
    "/rejects",
    summary="Rejected messages and readings, newest first",
    response_model=Page[Reject],
    responses=CSV,
)
async def rejects(
    request: Request,
    conn: Conn,
    page: Paging,
    who: Engineer,
    fmt: Format = None,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Any:
    """Every message or reading the ingest refused, with its reason and the payload's start."""
    start, end = query_time(start, "start"), query_time(end, "end")
    cur = await conn.execute(
        "SELECT received_at, topic, reason, detail, sensor_id, metric, payload_len, "
        "substring(payload FROM 1 FOR 200) AS payload_head FROM rejects "
        "WHERE (%(reason)s::text IS NULL OR reason = %(reason)s) "
        "AND (%(start)s::timestamptz IS NULL OR received_at >= %(start)s) "
        "AND (%(end)s::timestamptz IS NULL OR received_at < %(end)s) "
        "ORDER BY received_at DESC, tableoid, ctid LIMIT %(limit)s OFFSET %(offset)s",
        {"reason": reason, "start": start, "end": end, "limit": page.limit, "offset": page.offset},
    )
    rows = wib_rows(await cur.fetchall(), "received_at")
    for row in rows:
        row["payload_head"] = bytes(row["payload_head"]).decode("utf-8", "replace")
    return respond(
        request,
        fmt,
        page_of([Reject(**r) for r in rows], page.limit, page.offset),
        Reject,
        "rejects",
    )
