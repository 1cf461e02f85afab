"""What every route depends on: the pool, the caller's key and role, paging, the format."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from api import apikeys
from api.problems import Problem
from api.settings import ApiSettings

KEY_CACHE_S = 10.0  # a revoked key stops working within this long
LAST_USED_EVERY_S = 60.0


@dataclass(frozen=True)
class Caller:
    key_id: str
    name: str
    role: str


class KeyCache:
    """Verified keys for a few seconds, so that a busy client costs no lookup per request."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, Caller | None]] = {}
        self.last_used: dict[str, float] = {}

    def get(self, key: str) -> tuple[bool, Caller | None]:
        hit = self.entries.get(key)
        if hit is None or time.monotonic() - hit[0] > KEY_CACHE_S:
            return False, None
        return True, hit[1]

    def put(self, key: str, caller: Caller | None) -> None:
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[key] = (time.monotonic(), caller)

    def due_last_used(self, key_id: str) -> bool:
        now = time.monotonic()
        if now - self.last_used.get(key_id, -LAST_USED_EVERY_S) < LAST_USED_EVERY_S:
            return False
        self.last_used[key_id] = now
        return True


def settings_of(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def pool_of(request: Request) -> AsyncConnectionPool[AsyncConnection[DictRow]]:
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = request.app.state.pool
    return pool


async def connection(request: Request) -> AsyncIterator[AsyncConnection[DictRow]]:
    async with pool_of(request).connection() as conn:
        yield conn


Conn = Annotated[AsyncConnection[DictRow], Depends(connection)]
Settings = Annotated[ApiSettings, Depends(settings_of)]


def presented_key(request: Request) -> str | None:
    """The key the request presents (X-API-Key, else Authorization: Bearer), unverified."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def verified(
    cache: KeyCache, conn: AsyncConnection[DictRow], presented: str
) -> Caller | None:
    """The caller whose key ``presented`` is, from ``cache`` or else looked up (and cached);
    None when the key is malformed, unknown or revoked."""
    cached, who = cache.get(presented)
    if cached:
        return who
    parsed = apikeys.parse(presented)
    if parsed is not None:
        cur = await conn.execute(
            "SELECT name, role, secret_sha256, revoked_at FROM api_keys WHERE key_id = %s",
            (parsed[0],),
        )
        row = await cur.fetchone()
        if row and row["revoked_at"] is None and apikeys.matches(parsed[1], row["secret_sha256"]):
            who = Caller(parsed[0], row["name"], row["role"])
    cache.put(presented, who)
    return who


async def caller(request: Request, conn: Conn) -> Caller:
    """The caller's key, verified; 401 when missing, malformed, unknown or revoked."""
    challenge = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}
    presented = presented_key(request)
    if presented is None:
        raise Problem(
            401, "send an API key in the X-API-Key header (or Authorization: Bearer <key>); "
            "an administrator creates one with `pantau api key create`", headers=challenge,
        )  # fmt: skip
    cache: KeyCache = request.app.state.keys
    who = await verified(cache, conn, presented)
    if who is None:
        raise Problem(
            401, "the API key is not valid (malformed, unknown or revoked); ask an administrator "
            "for a key (`pantau api key list` shows the active ones)", headers=challenge,
        )  # fmt: skip
    if cache.due_last_used(who.key_id):
        await conn.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE key_id = %s", (who.key_id,)
        )
    return who


def require(*roles: str) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """A dependency admitting ``admin`` and ``roles``; 403 for the others."""
    allowed = {"admin", *roles}

    async def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if who.role not in allowed:
            raise Problem(
                403,
                f"the role {who.role!r} may not use this endpoint; it needs one of "
                f"{', '.join(sorted(allowed))}",
            )
        return who

    return check


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def paging(
    request: Request,
    limit: Annotated[
        int, Query(ge=1, description="Items per page (at most PANTAU_API_MAX_PAGE).")
    ] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")] = 0,
) -> Page:
    most = settings_of(request).max_page
    if limit > most:
        raise Problem(422, f"limit {limit} is above the maximum page of {most}; page with offset")
    return Page(limit, offset)


Paging = Annotated[Page, Depends(paging)]
AnyRole = Annotated[Caller, Depends(caller)]
Engineer = Annotated[Caller, Depends(require("engineer"))]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def query_time(value: datetime | None, name: str) -> datetime | None:
    """A query time: with an offset, and between 1970 and 2200 (so that WIB and the default
    range stay inside what dates can hold)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise Problem(422, f"{name} has no UTC offset; write it like 2026-11-28T08:00:00+07:00")
    if not EARLIEST <= value < LATEST:
        raise Problem(422, f"{name} {value.isoformat()} is outside 1970-2200")
    return value


Format = Annotated[
    Literal["json", "csv"] | None,
    Query(alias="format", description="csv for CSV (or send Accept: text/csv)."),
]
