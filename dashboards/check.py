"""`pantau dashboards check`: every panel, variable and alert query, run as Grafana would.

Grafana cannot run on the build machines, so this is how the dashboards are proven: each
query is expanded the way Grafana expands it (:mod:`dashboards.macros`) for a time range and
the dashboard's variables (all values, then the first value alone), and run against the
database as the read-only role Grafana uses. A query fails when PostgreSQL rejects it, when
its result has a shape the panel cannot draw (a time series without a ``time`` column, a map
without ``lat``/``lon``, an alert without exactly one number per row), or when it returns no
rows and its panel does not say why that can be normal.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from dashboards import alerts
from dashboards.board import Board
from dashboards.macros import MacroError, TimeRange, expand, interval_ms, parse_duration_ms
from dashboards.macros import relative_ms as relative
from dashboards.panels import DS_UID, TIMEZONE, Json
from pantau.errors import ConfigError, PantauError

MIN_INTERVAL_MS = 60_000  # the data source's timeInterval
Conn = psycopg.Connection[TupleRow]


@dataclass(frozen=True)
class Target:
    """One query to run: where it comes from, its SQL as written, and how to expand it."""

    where: str  # "Sampah / Perlu diangkut [A]" or "alert pantau-crowding [A]"
    text: str
    fmt: str
    time_range: TimeRange
    interval: int
    variables: dict[str, list[str]] = field(default_factory=dict)
    multi: frozenset[str] = frozenset()
    needs_rows: bool = True
    may_be_empty: str = ""
    shape: str = "table"  # table, time_series, map, alert, variable
    echo: bool = True  # report it when it passes (the first-value repeats are reported on failure)


@dataclass(frozen=True)
class Outcome:
    target: Target
    rows: int
    elapsed_ms: float
    error: str = ""
    sql: str = ""
    values: tuple[str, ...] = ()  # a variable's values (its __value column, else the first)

    @property
    def status(self) -> str:
        if self.error:
            return "FAIL"
        if self.rows == 0 and self.target.needs_rows:
            return "empty" if self.target.may_be_empty else "FAIL"
        return "ok"


def board_range(board: Board, to_ms: int, explicit: TimeRange | None) -> TimeRange:
    """The range a board is checked over: the one given, else its default ending at ``to_ms``."""
    if explicit is not None:
        return explicit
    return TimeRange(relative(board.time_from, to_ms, TIMEZONE), to_ms)


def _shape(panel: Json, target: Json) -> str:
    if panel["type"] == "geomap":
        return "map"
    return "time_series" if target["format"] == "time_series" else "table"


def panel_targets(
    board: Board, time_range: TimeRange, values: dict[str, list[str]], *, first_only: bool
) -> Iterator[Target]:
    """The board's panel queries with every variable at all its values, or at its first."""
    model = board.json()
    multi = frozenset(v["name"] for v in model["templating"]["list"])
    chosen = {k: v[:1] for k, v in values.items()} if first_only else values
    empty_ok = board.empty_ok()
    for panel in model["panels"]:
        low = parse_duration_ms(panel["interval"]) if "interval" in panel else MIN_INTERVAL_MS
        step = interval_ms(time_range, min_ms=max(low, MIN_INTERVAL_MS))
        for target in panel["targets"]:
            reason = empty_ok.get((panel["id"], target["refId"]), "")
            yield Target(
                where=f"{board.title} / {panel['title']} [{target['refId']}]"
                + (" (first value of each variable)" if first_only else ""),
                text=target["rawSql"],
                fmt=target["format"],
                time_range=time_range,
                interval=step,
                variables=chosen,
                multi=multi,
                needs_rows=not first_only,
                may_be_empty=reason,
                shape=_shape(panel, target),
                echo=not first_only,
            )


def alert_targets(to_ms: int) -> Iterator[Target]:
    """The data-source queries of every provisioned alert rule, evaluated at ``to_ms``."""
    for group in alerts.provisioning()["groups"]:
        for rule in group["rules"]:
            for data in rule["data"]:
                if data["datasourceUid"] != DS_UID:
                    continue
                window = data["relativeTimeRange"]
                frm, to = to_ms - window["from"] * 1000, to_ms - window["to"] * 1000
                yield Target(
                    where=f"alert {rule['uid']} ({rule['title']}) [{data['refId']}]",
                    text=data["model"]["rawSql"],
                    fmt=data["model"]["format"],
                    time_range=TimeRange(frm, to),
                    interval=int(data["model"]["intervalMs"]),
                    shape="alert",
                )


def shape_problem(shape: str, columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """Why Grafana could not draw or evaluate this result, or "" when it can."""
    if shape == "time_series":
        if "time" not in columns:
            return "a time series needs a column named time"
        times = [row[columns.index("time")] for row in rows]
        if any(b < a for a, b in itertools.pairwise(times)):
            return "a time series must be sorted by time (Grafana cannot pivot it otherwise)"
    if shape == "map" and not {"lat", "lon"} <= set(columns):
        return "a map needs lat and lon columns"
    if shape == "alert":
        for row in rows:
            numbers = [v for v in row if _is_number(v)]
            others = [v for v in row if not _is_number(v)]
            if len(numbers) != 1 or not all(isinstance(v, str) for v in others):
                return f"an alert row needs one number and string labels, got {row!r}"
    return ""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def run(conn: Conn, target: Target) -> Outcome:
    """Expand and run one query in its own read-only transaction; never raises for SQL errors."""
    try:
        text = expand(
            target.text,
            target.time_range,
            interval=target.interval,
            variables=target.variables,
            multi=target.multi,
        )
    except MacroError as exc:
        return Outcome(target, 0, 0.0, error=str(exc))
    started = time.perf_counter()
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(text.encode())  # bytes: psycopg reads no placeholders into a % sign
            rows = cur.fetchall() if cur.description else []
            columns = [c.name for c in cur.description or []]
    except psycopg.Error as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Outcome(target, 0, _ms(started), error=message, sql=text)
    problem = shape_problem(target.shape, columns, rows) if rows else ""
    values: tuple[str, ...] = ()
    if target.shape == "variable" and rows:
        index = columns.index("__value") if "__value" in columns else 0
        values = tuple(str(row[index]) for row in rows)
    return Outcome(
        target, len(rows), _ms(started), error=problem, sql=text if problem else "", values=values
    )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def variable_values(
    conn: Conn, board: Board, time_range: TimeRange
) -> tuple[dict[str, list[str]], list[Outcome]]:
    """Each variable's values from its own query (``__value`` column, else the first)."""
    values: dict[str, list[str]] = {}
    outcomes = []
    for variable in board.json()["templating"]["list"]:
        target = Target(
            where=f"{board.title} / variable ${variable['name']}",
            text=variable["query"],
            fmt="table",
            time_range=time_range,
            interval=MIN_INTERVAL_MS,
            variables=dict(values),
            shape="variable",
        )
        outcome = run(conn, target)
        outcomes.append(outcome)
        values[variable["name"]] = list(outcome.values)
    return values, outcomes


def check_all(
    conn: Conn, boards: list[Board], *, to_ms: int, explicit: TimeRange | None
) -> Iterator[Outcome]:
    """Every variable, panel (all values, then first values) and alert query, in order."""
    for board in boards:
        time_range = board_range(board, to_ms, explicit)
        values, outcomes = variable_values(conn, board, time_range)
        yield from outcomes
        if any(o.status != "ok" for o in outcomes):
            continue  # panels need their variables
        for first_only in (False, True):
            for target in panel_targets(board, time_range, values, first_only=first_only):
                yield run(conn, target)
    alert_to = explicit.to_ms if explicit is not None else to_ms
    for target in alert_targets(alert_to):
        yield run(conn, target)


def describe(outcome: Outcome) -> str:
    """One line for the report (plus the expanded SQL of a failure)."""
    status = outcome.status
    where = outcome.target.where
    if status == "ok":
        rows = f"{outcome.rows} row{'s' if outcome.rows != 1 else ''}"
        return f"ok     {where}: {rows}, {outcome.elapsed_ms:.0f} ms"
    if status == "empty":
        return f"empty  {where}: no rows (allowed: {outcome.target.may_be_empty})"
    reason = outcome.error or "no rows, where the data should give some"
    line = f"FAIL   {where}: {reason}"
    if outcome.sql:
        line += "\n" + "\n".join("         " + s for s in outcome.sql.splitlines())
    return line


def wib(ms: int) -> str:
    """A time as ISO 8601 in WIB, to the minute."""
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(TIMEZONE)).isoformat(timespec="minutes")


def report(
    conn: Conn,
    boards: list[Board],
    *,
    to_ms: int,
    explicit: TimeRange | None,
    write: Callable[[str], None],
) -> None:
    """Check everything, writing one line per query; :class:`PantauError` if any failed."""
    for board in boards:
        time_range = board_range(board, to_ms, explicit)
        write(f"{board.title}: {wib(time_range.from_ms)} .. {wib(time_range.to_ms)}")
    write(f"alert rules: evaluated at {wib(explicit.to_ms if explicit else to_ms)}")
    counts: Counter[str] = Counter()
    for outcome in check_all(conn, boards, to_ms=to_ms, explicit=explicit):
        counts[outcome.status] += 1
        if outcome.status != "ok" or outcome.target.echo:
            write(describe(outcome))
    total = sum(counts.values())
    write(
        f"{total} queries: {counts['ok']} ok, {counts['empty']} empty where that is normal, "
        f"{counts['FAIL']} failed"
    )
    if counts["FAIL"]:
        raise PantauError(
            f"{counts['FAIL']} of {total} dashboard and alert queries failed",
            "see the FAIL lines above: correct the query in dashboards/*.py and run `pantau "
            "dashboards build`; if the data is not there, check a range that has some "
            "(--at, or --from and --to)",
        )


def time_options(
    at_ms: int | None, from_ms: int | None, to_ms: int | None, now_ms: int
) -> tuple[int, TimeRange | None]:
    """(end for default ranges, explicit range) from ``--at`` or ``--from``/``--to``."""
    if at_ms is not None and (from_ms is not None or to_ms is not None):
        raise ConfigError("--at and --from/--to were both given", "give one of them")
    if (from_ms is None) != (to_ms is None):
        raise ConfigError("--from and --to go together", "give both, or --at alone")
    if from_ms is not None and to_ms is not None:
        if from_ms >= to_ms:
            raise ConfigError("--from is not before --to", "swap them")
        return to_ms, TimeRange(from_ms, to_ms)
    return (at_ms if at_ms is not None else now_ms), None


def act_as(conn: Conn, role: str) -> None:
    """Run the rest of the session as ``role`` (none: the login itself), read-only."""
    if role != "none":
        try:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        except psycopg.Error as exc:
            raise ConfigError(
                f"this login cannot act as the role {role}: {str(exc).strip()}",
                "use the database owner's URL, a login granted the role (`pantau dashboards "
                "db-user`), or --role none to check as the login itself",
            ) from exc
    conn.execute("SET default_transaction_read_only = on")
    conn.execute("SET statement_timeout = '30s'")
