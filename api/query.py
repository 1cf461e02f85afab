"""What a query string may hold: the route's own parameters, and for filters, known values.

:class:`QueryCheck` is a dependency of the whole app, so it runs on every route before the
route's own dependencies (the key included). It answers 422, as a problem that names them,

- for a query parameter the route does not declare (``/v1/alarms?kinnd=x``): a misspelt filter
  would otherwise be ignored and the answer look like a real one;
- for a value of a filter marked with a :class:`Vocabulary` that is not one of its values
  (``?zone_id=does-not-exist``): otherwise an empty list, as if the zone had nothing.

Each route's parameters are read once from FastAPI's dependency tree (sub-dependencies such as
paging included). Vocabularies held in the database (zone ids, sensor ids) are cached per app:
a known value costs no query; an unknown one reloads the list, at most once per
``RELOAD_AFTER_S``, so that a zone registered a moment ago is known at once and a client sending
bad values costs at most one small query a second.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api import audiences
from api.problems import SHOWN_CHARS, Problem, shown
from pantau.registry import fleet
from processing import reasons

logger = logging.getLogger(__name__)

KEEP_S = 300.0  # a loaded list serves known values this long
RELOAD_AFTER_S = 1.0  # an unknown value reloads a list older than this
LOAD_TIMEOUT_S = 5.0
SUGGEST_AMONG_AT_MOST = 5000  # "did you mean": difflib is linear in the choices


@dataclass(frozen=True)
class Vocabulary:
    """The values a filter may take: fixed (``values``) or a database column (``sql``, one
    column named ``value``).

    Give one as a query parameter's ``json_schema_extra``
    (``Query(json_schema_extra=ZONE_IDS)``): :class:`QueryCheck` then refuses other values, and
    the OpenAPI schema lists fixed values as the parameter's ``enum``. ``what`` names a value in
    the problem ("a zone"), ``hint`` says where to find the right ones.
    """

    name: str
    what: str
    hint: str
    values: frozenset[str] | None = None
    sql: str | None = None

    def __post_init__(self) -> None:
        if (self.values is None) == (self.sql is None):
            raise ValueError(f"vocabulary {self.name}: give either values or sql")

    def __call__(self, schema: dict[str, Any]) -> None:
        """Pydantic's hook for the parameter's JSON schema: fixed values are its enum."""
        if self.values is not None:
            schema["enum"] = sorted(self.values)


@dataclass(frozen=True)
class _Spec:
    """What one route's query string may hold."""

    names: frozenset[str]  # declared parameters (aliases, as sent)
    vocabularies: tuple[tuple[str, Vocabulary], ...]  # (parameter, its vocabulary)


@dataclass
class _Loaded:
    values: frozenset[str] = frozenset()
    at: float = -float("inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class QueryCheck:
    """The app's query-string check (see the module's docstring); one per app."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.specs: dict[int, _Spec] = {}  # by id(route): routes are not hashable
        self.loaded: dict[str, _Loaded] = {}

    async def __call__(self, request: Request) -> None:
        route = request.scope.get("route")
        if not isinstance(route, APIRoute):
            return
        spec = self.specs.get(id(route))
        if spec is None:
            spec = self.specs[id(route)] = _spec_of(route)
        query = request.query_params
        unknown = [name for name in dict.fromkeys(query.keys()) if name not in spec.names]
        if unknown:
            raise _unknown_parameters(request.method, request.url.path, unknown, spec.names)
        bad = [
            (name, value, vocabulary)
            for name, vocabulary in spec.vocabularies
            for value in query.getlist(name)
            if not await self.knows(request, vocabulary, value)
        ]
        if bad:
            raise self._unknown_values(bad)

    async def knows(self, request: Request, vocabulary: Vocabulary, value: str) -> bool:
        """Whether ``value`` is one of ``vocabulary``'s (a database one: cached, see above)."""
        if vocabulary.values is not None:
            return value in vocabulary.values
        loaded = self.loaded.get(vocabulary.name)
        if loaded is None:
            loaded = self.loaded[vocabulary.name] = _Loaded()
        if value in loaded.values and self.clock() - loaded.at < KEEP_S:
            return True
        if self.clock() - loaded.at >= RELOAD_AFTER_S:
            async with loaded.lock:  # one reload at a time; the others wait and reuse it
                due = self.clock() - loaded.at >= RELOAD_AFTER_S
                if due and not await self._load(request, vocabulary, loaded):
                    return True  # the database is away: the route will say so
        return value in loaded.values

    async def _load(self, request: Request, vocabulary: Vocabulary, loaded: _Loaded) -> bool:
        assert vocabulary.sql is not None
        pool = getattr(request.app.state, "pool", None)
        if pool is None:  # the app has not started (no lifespan): nothing to look in
            return False
        try:
            async with pool.connection(timeout=LOAD_TIMEOUT_S) as conn:
                cur = await conn.execute(vocabulary.sql)
                rows = await cur.fetchall()
        except psycopg.Error as exc:
            logger.warning("cannot load the %s to check a filter: %s", vocabulary.name, exc)
            return False
        loaded.values = frozenset(str(row["value"]) for row in rows)
        loaded.at = self.clock()
        return True

    def _unknown_values(self, bad: list[tuple[str, str, Vocabulary]]) -> Problem:
        errors, details = [], []
        for name, value, vocabulary in bad:
            choices = vocabulary.values
            if choices is None:
                choices = self.loaded[vocabulary.name].values
            problem = f"{shown(value)!r} is not {vocabulary.what}"
            errors.append({"where": f"query.{name}", "problem": problem, "value": shown(value)})
            details.append(f"{name}: {problem}{_suggestion(value, choices)}; {vocabulary.hint}")
        return Problem(422, "; ".join(details), title="Invalid request", errors=errors)


def _spec_of(route: APIRoute) -> _Spec:
    names: dict[str, None] = {}
    vocabularies: list[tuple[str, Vocabulary]] = []
    for param in _query_params(route.dependant):
        names[param.alias] = None
        if isinstance(param.field_info.json_schema_extra, Vocabulary):
            vocabularies.append((param.alias, param.field_info.json_schema_extra))
    return _Spec(frozenset(names), tuple(vocabularies))


def _query_params(dependant: Dependant) -> Iterator[Any]:
    yield from dependant.query_params
    for sub in dependant.dependencies:
        yield from _query_params(sub)


def _unknown_parameters(
    method: str, path: str, unknown: list[str], declared: Collection[str]
) -> Problem:
    takes = ", ".join(sorted(declared)) if declared else "no query parameters"
    names = ", ".join(f"{shown(n)!r}{_suggestion(n, declared)}" for n in unknown)
    plural = "s" if len(unknown) > 1 else ""
    return Problem(
        422,
        f"unknown query parameter{plural} {names}; {method} {path} takes {takes} (see /docs)",
        title="Invalid request",
        errors=[{"where": f"query.{shown(n)}", "problem": "unknown parameter"} for n in unknown],
    )


def _suggestion(value: str, choices: Collection[str]) -> str:
    if len(choices) > SUGGEST_AMONG_AT_MOST or len(value) > SHOWN_CHARS:
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- the vocabularies ----------------------------------------------------------------------------

ZONE_IDS = Vocabulary(
    "zone ids", "a zone", "list them at /v1/zones", sql="SELECT zone_id AS value FROM zones"
)
SENSOR_IDS = Vocabulary(
    "sensor ids", "a sensor", "see /v1/sensors, /v1/waste/bins or /v1/air/stations",
    sql="SELECT sensor_id AS value FROM sensors",
)  # fmt: skip
ZONE_KINDS = Vocabulary(
    "zone kinds", "a zone kind", f"one of {', '.join(fleet.ZONE_KINDS)}",
    values=frozenset(fleet.ZONE_KINDS),
)  # fmt: skip
ALARM_RULES = Vocabulary(
    "alarm rules", "an alarm rule", f"one of {', '.join(audiences.RULES)}",
    values=frozenset(audiences.RULES),
)  # fmt: skip
REJECT_REASONS = Vocabulary(
    "reject reasons", "a reject reason", f"one of {', '.join(sorted(reasons.CODES))}",
    values=reasons.CODES,
)  # fmt: skip
