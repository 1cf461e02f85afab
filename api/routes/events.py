"""What the pipeline flagged or refused: anomalies and rejects (engineers), and alarms, which
every role sees the share of that is for it (api/audiences.py) and may acknowledge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from api import audiences
from api.deps import AnyRole, Caller, Conn, Engineer, Format, Paging, query_time
from api.models import Page, page_of
from api.problems import Problem
from api.query import ALARM_RULES, REJECT_REASONS, SENSOR_IDS, ZONE_IDS
from api.render import CSV, PROBLEM_RESPONSE, respond, wib_rows

router = APIRouter()


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
    reason: str = Field(examples=["malformed_payload"])
    detail: str
    sensor_id: str | None
    metric: str | None
    payload_len: int
    payload_head: str = Field(description="The first 200 bytes, as text")


@router.get(
    "/anomalies",
    tags=["sensors"],
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
    sensor_id: Annotated[str | None, Query(max_length=64, json_schema_extra=SENSOR_IDS)] = None,
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
  AND (%(visible)s::text[] IS NULL OR a.rule = ANY(%(visible)s))
ORDER BY a.opened_at DESC, a.alarm_id DESC LIMIT %(limit)s OFFSET %(offset)s"""
_TIMES = ("opened_at", "acknowledged_at", "cleared_at")
_NONE = {"state": None, "rule": None, "sensor": None, "zone": None, "id": None, "visible": None}
SCOPED = (
    "Each role sees the alarms that are for it: " + audiences.describe() + " Alarms of other "
    "rules are left out of the list; asking for one by `rule`, or acknowledging one, is 403."
)
OUT_OF_SCOPE: dict[int | str, dict[str, Any]] = {
    403: {**PROBLEM_RESPONSE, "description": "The alarm, or the rule asked for, is not for the "
          "key's role (see the scoping above)"},
}  # fmt: skip


def _out_of_scope(who: Caller, what: str, rule: str) -> Problem:
    audience = audiences.AUDIENCE.get(rule)
    whose = f"for the role {audience!r} (and admin)" if audience else "for admin only"
    return Problem(
        403,
        f"{what} is a {rule!r} alarm, {whose}; the role {who.role!r} sees "
        f"{audiences.scope(who.role)}",
    )


@router.get(
    "/alarms",
    tags=["alarms"],
    summary="Alarms for the key's role, newest first",
    description="Alarms opened by `pantau process`: open → acknowledged → cleared. " + SCOPED,
    response_model=Page[Alarm],
    responses={**CSV, **OUT_OF_SCOPE},
)
async def alarms(
    request: Request,
    conn: Conn,
    page: Paging,
    who: AnyRole,
    fmt: Format = None,
    state: Annotated[Literal["open", "acknowledged", "cleared"] | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=64, json_schema_extra=ALARM_RULES)] = None,
    sensor_id: Annotated[str | None, Query(max_length=64, json_schema_extra=SENSOR_IDS)] = None,
    zone_id: Annotated[str | None, Query(max_length=64, json_schema_extra=ZONE_IDS)] = None,
) -> Any:
    if rule is not None and not audiences.sees(who.role, rule):
        raise _out_of_scope(who, f"rule={rule}", rule)
    cur = await conn.execute(
        _ALARMS,
        {**_NONE, "state": state, "rule": rule, "sensor": sensor_id, "zone": zone_id,
         "visible": audiences.visible_rules(who.role), "limit": page.limit, "offset": page.offset},
    )  # fmt: skip
    rows = wib_rows(await cur.fetchall(), *_TIMES)
    return respond(
        request, fmt, page_of([Alarm(**r) for r in rows], page.limit, page.offset), Alarm, "alarms"
    )


@router.post(
    "/alarms/{alarm_id}/acknowledge",
    tags=["alarms"],
    summary="Acknowledge an open alarm for the key's role",
    description="Marks an open alarm acknowledged by the key's name. It still clears by itself "
    "when its condition has been good long enough. 404 when there is no such alarm, 409 when it "
    "is already acknowledged or cleared. " + SCOPED,
    responses={404: PROBLEM_RESPONSE, 409: PROBLEM_RESPONSE, **OUT_OF_SCOPE},
)
async def acknowledge(
    conn: Conn, who: AnyRole, alarm_id: Annotated[int, Path(ge=1, le=2**62)]
) -> Alarm:
    visible = audiences.visible_rules(who.role)
    # One statement, scoped: an alarm outside the role's scope is never changed.
    cur = await conn.execute(
        "UPDATE alarms SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %s "
        "WHERE alarm_id = %s AND state = 'open' AND (%s::text[] IS NULL OR rule = ANY(%s)) "
        "RETURNING alarm_id",
        (who.name, alarm_id, visible, visible),
    )
    changed = await cur.fetchone()
    cur = await conn.execute(_ALARMS, {**_NONE, "id": alarm_id, "limit": 1, "offset": 0})
    rows = wib_rows(await cur.fetchall(), *_TIMES)
    if not rows:
        raise Problem(404, f"no alarm {alarm_id}; list them at /v1/alarms")
    if not audiences.sees(who.role, rows[0]["rule"]):
        raise _out_of_scope(who, f"alarm {alarm_id}", rows[0]["rule"])
    if changed is None:
        raise Problem(409, f"alarm {alarm_id} is {rows[0]['state']}, not open")
    return Alarm(**rows[0])


@router.get(
    "/rejects",
    tags=["sensors"],
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
    reason: Annotated[str | None, Query(max_length=64, json_schema_extra=REJECT_REASONS)] = None,
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
