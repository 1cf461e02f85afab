"""The FastAPI application: built by :func:`create_app` from settings, nothing at import time.

Every database connection switches to the API's own role (``SET ROLE pantau_api``: read-only,
plus acknowledging alarms), whatever login the URL names, so a bug in a route cannot write.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from api import problems, query
from api.admission import Admission
from api.deps import KeyCache
from api.routes import air, events, meta, sensors, tourism, waste
from api.settings import ApiSettings

DESCRIPTION = """\
Read side of Pantau, the sensor backend of Kabupaten Jepara: waste bins and air quality for
DLH, tourist zones for the tourism office, sensors and their health for engineers.

**Keys and roles.** Send an API key in `X-API-Key` (or `Authorization: Bearer <key>`). Keys are
created with `pantau api key create --name NAME --role ROLE`. Roles: `dlh` (waste, air),
`tourism` (tourism), `engineer` (sensors, readings, anomalies, rejects), `admin`
(everything). Zones and alarms are open to every role, and alarms are scoped: each role sees,
and may acknowledge, the alarms that are for it (`dlh` waste and air alarms, `tourism`
crowding alarms, `engineer` sensor alarms, `admin` all; an alarm of another role's is 403).
`/v1/health` and `/v1/ready` need no key.

**Conventions.** Times are ISO 8601 with their offset, in WIB (UTC+7). Lists are pages
(`limit`, `offset`, at most `PANTAU_API_MAX_PAGE` items) and come as CSV with `?format=csv` or
`Accept: text/csv`. Errors are RFC 9457 problem details (`application/problem+json`). A query
parameter the endpoint does not take (`/v1/alarms?kinnd=x`), or a filter value that names
nothing Pantau knows (a zone id not in `/v1/zones`, a sensor id, a sensor, zone or anomaly
kind, an alarm rule, a reject reason), is 422: a problem naming the parameter or the value
(under `errors`, too), so a typo is never answered with an empty list. The query string is
checked before the key.

**Limits.** Each caller (an API key; without a valid key, the client address) has a token
bucket: `PANTAU_API_RATE_PER_S` requests a second on average, bursts of `PANTAU_API_RATE_BURST`,
per server process; over it: 429 with `Retry-After` (seconds). A URL (path and query) longer
than `PANTAU_API_MAX_URL_BYTES`: 414. A request body larger than `PANTAU_API_MAX_BODY_BYTES`:
413 (no endpoint takes a body). A setting of 0 turns its limit off.
"""

TAGS = [
    {"name": "meta", "description": "Liveness, readiness, zones."},
    {"name": "sensors", "description": "Engineers: sensors, readings, anomalies, rejects."},
    {"name": "alarms", "description": "Every role: the alarms that are for it; acknowledging."},
    {"name": "waste", "description": "DLH: bins, villages, today's collection plan."},
    {"name": "air", "description": "DLH: air stations, ISPU and US AQI."},
    {"name": "tourism", "description": "Tourism office: occupancy, density, crowding."},
]


def create_app(settings: ApiSettings, clock: Callable[[], int] = time.monotonic_ns) -> FastAPI:
    """The app; ``clock`` (monotonic nanoseconds) times the rate limit's buckets."""
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

    check = query.QueryCheck()
    app = FastAPI(
        title="Pantau API",
        version="1",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # On every route, before its own dependencies: unknown parameters and values are 422.
        dependencies=[Depends(check)],
    )
    app.state.settings = settings
    app.state.query_check = check
    app.state.keys = KeyCache()
    problems.install(app)
    for module in (meta, sensors, events, waste, air, tourism):
        app.include_router(module.router, prefix="/v1")

    @app.middleware("http")
    async def refuse_nul(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
        if any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()):
            return problems.problem_response(
                request, 422, "Invalid request", "a query parameter holds a NUL character"
            )
        return await call_next(request)

    # Added last, so outermost: a refused request costs no routing and no query (but its key's
    # lookup, cached).
    app.add_middleware(Admission, settings=settings, key_cache=app.state.keys, clock=clock)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(
                get_openapi(
                    title=app.title, version=app.version, description=app.description,
                    routes=app.routes, tags=TAGS,
                )
            )  # fmt: skip
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_environment() -> FastAPI:
    """The app with settings from the environment: what each uvicorn worker process builds."""
    return create_app(ApiSettings())


PUBLIC = frozenset({"/v1/health", "/v1/ready"})
EVERY_ROLE = frozenset({"/v1/zones"})


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document as the API behaves: errors as problem details, keys, 401 and 403,
    and the limits every request is held to (429, 414, 413)."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail", "instance"],
        "properties": {
            "type": {"type": "string", "example": "about:blank"},
            "title": {"type": "string", "example": "Unprocessable Entity"},
            "status": {"type": "integer", "example": 422},
            "detail": {"type": "string", "example": "limit 5000 is above the maximum page of 1000"},
            "instance": {"type": "string", "example": "/v1/zones"},
        },
        "additionalProperties": True,
    }
    for name in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(name, None)
    components["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    }
    content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = content
            if "422" in responses:
                responses["422"]["description"] = "Invalid request"
            responses.update(limit_responses(content))
            if path in PUBLIC:
                continue
            operation["security"] = [{"ApiKey": []}]
            responses["401"] = {"description": "No valid API key", "content": content}
            if path not in EVERY_ROLE:  # a route may say why its 403 comes (alarms: scope)
                responses.setdefault("403", {"description": "The key's role may not use this"})
                responses["403"]["content"] = content
    return schema


def limit_responses(content: dict[str, Any]) -> dict[str, Any]:
    """What the request limits answer (``api/admission.py``), on every operation."""
    return {
        "413": {"description": "Request body over PANTAU_API_MAX_BODY_BYTES", "content": content},
        "414": {"description": "URL over PANTAU_API_MAX_URL_BYTES", "content": content},
        "429": {
            "description": "Over the caller's rate (PANTAU_API_RATE_PER_S, PANTAU_API_RATE_BURST)",
            "headers": {
                "Retry-After": {
                    "description": "Seconds until the caller may send again",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
            "content": content,
        },
    }
