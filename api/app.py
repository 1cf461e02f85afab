"""The FastAPI application: built by :func:`create_app` from settings, nothing at import time.

Every database connection switches to the API's own role (``SET ROLE pantau_api``: read-only,
plus acknowledging alarms), whatever login the URL names, so a bug in a route cannot write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from api import problems
from api.deps import KeyCache
from api.routes import air, meta, sensors, tourism, waste
from pantau.settings import ApiSettings

DESCRIPTION = """\
Read side of Pantau, the sensor backend of Kabupaten Jepara: waste bins and air quality for
DLH, tourist zones for the tourism office, sensors and their health for engineers.

**Keys and roles.** Send an API key in `X-API-Key` (or `Authorization: Bearer <key>`). Keys are
created with `pantau api key create --name NAME --role ROLE`. Roles: `dlh` (waste, air),
`tourism` (tourism), `engineer` (sensors, readings, anomalies, alarms, rejects), `admin`
(everything). Zones are open to every role; `/v1/health` and `/v1/ready` need no key.

**Conventions.** Times are ISO 8601 with their offset, in WIB (UTC+7). Lists are pages
(`limit`, `offset`, at most `PANTAU_API_MAX_PAGE` items) and come as CSV with `?format=csv` or
`Accept: text/csv`. Errors are RFC 9457 problem details (`application/problem+json`).
"""

TAGS = [
    {"name": "meta", "description": "Liveness, readiness, zones."},
    {"name": "sensors", "description": "Engineers: sensors, readings, anomalies, alarms, rejects."},
    {"name": "waste", "description": "DLH: bins, villages, today's collection plan."},
    {"name": "air", "description": "DLH: air stations, ISPU and US AQI."},
    {"name": "tourism", "description": "Tourism office: occupancy, density, crowding."},
]


def create_app(settings: ApiSettings) -> FastAPI:
    role = sql.SQL("SET ROLE {}").format(sql.Identifier(settings.db_role))

    async def configure(conn: AsyncConnection[DictRow]) -> None:
        await conn.set_autocommit(True)
        await conn.execute(role)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            settings.resolved_database_url(),
            min_size=settings.pool_min,
            max_size=max(settings.pool_max, settings.pool_min),
            kwargs={"row_factory": dict_row, "application_name": "pantau-api"},
            configure=configure,
            open=False,
        )
        await pool.open(wait=False)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Pantau API",
        version="1",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keys = KeyCache()
    problems.install(app)
    for module in (meta, sensors, waste, air, tourism):
        app.include_router(module.router, prefix="/v1")
    return app
