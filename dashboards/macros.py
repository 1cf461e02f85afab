"""What Grafana does to a panel's SQL before PostgreSQL sees it, as pure functions.

Two steps, in Grafana's order: the browser substitutes template variables (``$zone``,
``${zone}``, ``${zone:csv}``, ``[[zone]]``, and ``$__interval``/``$__interval_ms``), then the
PostgreSQL data source expands its macros (``$__timeFilter(col)``, ``$__timeGroup(col, 5m)``,
...). The rules follow Grafana's ``SqlDatasource.interpolateVariable`` and
``pkg/tsdb/grafana-postgresql-datasource/macros.go`` (with the data source's TimescaleDB
option on, as provisioned). Anything left that looks like a macro or a variable is an error
here, where Grafana would pass it on and PostgreSQL would fail on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_UNIT_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "y": 31_536_000_000,
}
_MACRO = re.compile(r"\$(__\w+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_RELATIVE = re.compile(r"^now(?:-(\d+)([smhdw]))?(?:/([dw]))?$")


class MacroError(ValueError):
    """A query uses a macro, variable or format that Grafana would not expand."""


@dataclass(frozen=True)
class TimeRange:
    """A dashboard time range, Unix milliseconds."""

    from_ms: int
    to_ms: int


def parse_duration_ms(text: str) -> int:
    """Milliseconds of a Grafana duration such as ``500ms``, ``15m``, ``1d``."""
    match = _DURATION.match(text.strip().strip("'"))
    if not match:
        raise MacroError(f"{text!r} is not a duration like 30s, 15m or 1h")
    return int(match[1]) * _UNIT_MS[match[2]]


def relative_ms(expression: str, now_ms: int, tz: str) -> int:
    """A dashboard time like ``now``, ``now-7d`` or ``now/d`` (start of the local day)."""
    match = _RELATIVE.match(expression)
    if not match:
        raise MacroError(f"time {expression!r} is not of the form now, now-7d or now/d")
    ms = now_ms - (int(match[1]) * _UNIT_MS[match[2]] if match[1] else 0)
    if match[3]:
        local = datetime.fromtimestamp(ms / 1000, ZoneInfo(tz))
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if match[3] == "w":
            start -= timedelta(days=start.weekday())  # weeks start on Monday (weekStart)
        ms = int(start.timestamp() * 1000)
    return ms


def round_interval_ms(ms: float) -> int:
    """Grafana's ``rangeutil.roundInterval``: a raw interval rounded to a readable one."""
    limits = (
        (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000),
        (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000),
        (45_000, 30_000), (90_000, 60_000), (210_000, 120_000), (450_000, 300_000),
        (750_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000),
        (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000),
        (16_200_000, 10_800_000), (32_400_000, 21_600_000), (86_400_000, 43_200_000),
        (604_800_000, 86_400_000), (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
    )  # fmt: skip
    for limit, rounded in limits:
        if ms < limit:
            return rounded
    return 31_536_000_000


def interval_ms(time_range: TimeRange, *, min_ms: int, max_data_points: int = 1000) -> int:
    """``$__interval_ms`` for a range drawn with ``max_data_points`` points, at least ``min_ms``."""
    raw = (time_range.to_ms - time_range.from_ms) / max_data_points
    return max(round_interval_ms(raw), min_ms)


def format_interval(ms: int) -> str:
    """``$__interval``: Grafana's ``kbn.secondsToHms``, the largest non-zero unit (``15m``)."""
    rest = ms / 1000
    for unit, size in (("y", 31_536_000), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if int(rest // size):
            return f"{int(rest // size)}{unit}"
        rest %= size
    return f"{ms}ms"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format_values(name: str, values: list[str], fmt: str | None, multi: bool) -> str:
    if fmt is None:
        # Multi-value and "All" variables are quoted for SQL, single-value ones escaped only.
        return ",".join(_quote(v) for v in values) if multi else values[0].replace("'", "''")
    if fmt in ("csv", "raw"):
        return ",".join(values)
    if fmt == "sqlstring":
        return ",".join(_quote(v) for v in values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    raise MacroError(f"variable {name} uses format {fmt!r}, which this check does not know")


def substitute_variables(
    text: str, variables: dict[str, list[str]], *, interval: int, multi: frozenset[str]
) -> str:
    """Template variables and ``$__interval``/``$__interval_ms`` replaced, as the browser does.

    ``variables`` maps a name to its selected values (all of them for "All"); ``multi`` names
    the multi-value or include-All variables, whose values are quoted.
    """

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[4]
        fmt = match[3] or match[5]
        if name == "__interval_ms":
            return str(interval)
        if name == "__interval":
            return format_interval(interval)
        if name.startswith("__"):
            return match[0]  # a data source macro, expanded next
        if name not in variables:
            raise MacroError(f"query uses ${name}, which is not a variable of its dashboard")
        if not variables[name]:
            raise MacroError(f"variable {name} has no value to substitute")
        return _format_values(name, variables[name], fmt, name in multi)

    return _VARIABLE.sub(replace, text)


def _timestamp(ms: int) -> str:
    """Go's RFC3339Nano in UTC, as Grafana writes range bounds (no trailing zeros)."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    fraction = f"{ms % 1000:03d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def _time_group(args: list[str]) -> str:
    if len(args) < 2:
        raise MacroError("$__timeGroup needs a time column and an interval (and a fill value)")
    seconds = parse_duration_ms(args[1]) / 1000
    return f"time_bucket('{seconds:.3f}s',{args[0]})"


def _macro(name: str, args: list[str], time_range: TimeRange) -> str:
    frm, to = time_range.from_ms, time_range.to_ms
    column = args[0] if args and args[0] else None
    needs_column = {"__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter"}
    if name in needs_column and column is None:
        raise MacroError(f"missing time column argument for macro ${name}")
    expansions = {
        "__time": lambda: f'{column} AS "time"',
        "__timeEpoch": lambda: f'extract(epoch from {column}) as "time"',
        "__timeFilter": lambda: f"{column} BETWEEN '{_timestamp(frm)}' AND '{_timestamp(to)}'",
        "__timeFrom": lambda: f"'{_timestamp(frm)}'",
        "__timeTo": lambda: f"'{_timestamp(to)}'",
        "__timeGroup": lambda: _time_group(args),
        "__timeGroupAlias": lambda: _time_group(args) + ' AS "time"',
        "__unixEpochFilter": lambda: f"{column} >= {frm // 1000} AND {column} <= {to // 1000}",
        "__unixEpochNanoFrom": lambda: str(frm * 1_000_000),
        "__unixEpochNanoTo": lambda: str(to * 1_000_000),
    }
    if name not in expansions:
        raise MacroError(f"unknown macro ${name}")
    return expansions[name]()


def expand_macros(text: str, time_range: TimeRange) -> str:
    """The data source's macros expanded; an unknown or malformed one is a :class:`MacroError`."""

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        # Grafana's pre-5.3 compatibility: $__timeGroup(...) followed by a comma gets AS "time".
        if name == "__timeGroup":
            end = text.find(match[0]) + len(match[0])
            if text[end : end + 1] == ",":
                name = "__timeGroupAlias"
        args = [a.strip() for a in match[2].split(",")]
        return _macro(name, args, time_range)

    out = _MACRO.sub(replace, text)
    leftover = re.search(r"\$__\w+", out)
    if leftover:
        raise MacroError(f"{leftover[0]} is not a macro call like $__timeFilter(column)")
    return out


def expand(
    text: str,
    time_range: TimeRange,
    *,
    interval: int,
    variables: dict[str, list[str]] | None = None,
    multi: frozenset[str] = frozenset(),
) -> str:
    """A panel or alert query as PostgreSQL receives it from Grafana."""
    substituted = substitute_variables(text, variables or {}, interval=interval, multi=multi)
    return expand_macros(substituted, time_range)
