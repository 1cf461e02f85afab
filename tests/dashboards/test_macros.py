"""Grafana's query expansion as `pantau dashboards check` does it, and the check's pure parts.

The expected expansions are those of Grafana's own tests of its PostgreSQL macro engine
(pkg/tsdb/grafana-postgresql-datasource/macros_test.go) and of its interval rounding.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboards.check import shape_problem, time_options
from dashboards.macros import (
    MacroError,
    TimeRange,
    expand,
    expand_macros,
    format_interval,
    interval_ms,
    relative_ms,
    substitute_variables,
)
from dashboards.push import contains
from dashboards.rollups import by_interval
from pantau.errors import ConfigError

FROM = int(datetime(2018, 4, 12, 18, 0, tzinfo=UTC).timestamp() * 1000)
RANGE = TimeRange(FROM, FROM + 5 * 60_000)


@pytest.mark.parametrize(
    ("sql", "expanded"),
    [
        ("select $__time(time_column)", 'select time_column AS "time"'),
        ("select $__timeEpoch(t)", 'select extract(epoch from t) as "time"'),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
        ),
        ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
        ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
        ("GROUP BY $__timeGroup(t,'5m')", "GROUP BY time_bucket('300.000s',t)"),
        ("GROUP BY $__timeGroup(t , '5m')", "GROUP BY time_bucket('300.000s',t)"),
        ("GROUP BY $__timeGroup(c, '12d')", "GROUP BY time_bucket('1036800.000s',c)"),
        ("GROUP BY $__timeGroup(c, '20ms')", "GROUP BY time_bucket('0.020s',c)"),
        ("SELECT $__timeGroupAlias(c,'5m')", "SELECT time_bucket('300.000s',c) AS \"time\""),
        # Before Grafana 5.3 $__timeGroup added the alias; a following comma still asks for it.
        ("SELECT $__timeGroup(c,'5m'), v", "SELECT time_bucket('300.000s',c) AS \"time\", v"),
        ("SELECT $__timeGroup(c,'5m') as time, v", "SELECT time_bucket('300.000s',c) as time, v"),
        ("SELECT $__timeGroup(c,'1h', 0)", "SELECT time_bucket('3600.000s',c)"),
        ("$__unixEpochFilter(t)", f"t >= {FROM // 1000} AND t <= {FROM // 1000 + 300}"),
    ],
)  # fmt: skip
def test_macros_expand_like_grafana(sql, expanded):
    assert expand_macros(sql, RANGE) == expanded


def test_fractional_seconds_are_written_like_go():
    half = TimeRange(FROM + 500, FROM + 60_000)
    assert expand_macros("$__timeFrom() $__timeTo()", half) == (
        "'2018-04-12T18:00:00.5Z' '2018-04-12T18:01:00Z'"
    )


@pytest.mark.parametrize(
    "sql",
    ["$__timeFilter()", "$__timeGroup(c)", "$__timeGroup(c, fortnight)", "$__nope(x)", "$__oops"],
)
def test_bad_macros_are_errors(sql):
    with pytest.raises(MacroError):
        expand_macros(sql, RANGE)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(500, "500ms"), (1_000, "1s"), (20_000, "20s"), (60_000, "1m"), (900_000, "15m"),
     (1_200_000, "20m"), (3_600_000, "1h"), (86_400_000, "1d"), (604_800_000, "7d")],
)  # fmt: skip
def test_interval_text(ms, text):
    assert format_interval(ms) == text


def test_interval_is_rounded_and_bounded_below():
    day = TimeRange(0, 86_400_000)
    assert interval_ms(day, min_ms=1) == 60_000  # 86.4 s per point rounds to 1 min
    assert interval_ms(day, min_ms=900_000) == 900_000
    week = TimeRange(0, 7 * 86_400_000)
    assert interval_ms(week, min_ms=60_000) == 600_000


def test_interval_variables():
    sql = "time_bucket('$__interval', t), $__interval_ms, ${__interval}"
    assert substitute_variables(sql, {}, interval=900_000, multi=frozenset()) == (
        "time_bucket('15m', t), 900000, 15m"
    )


def test_multi_value_variables_are_quoted_for_sql():
    values = {"zone": ["T-KARTINI", "Pantai 'Bandengan'"], "kind": ["footfall"]}
    sql = "zone_id IN ($zone) AND kind = '$kind' AND z IN (${zone:csv}) AND [[kind]] = 1"
    out = substitute_variables(sql, values, interval=1, multi=frozenset({"zone"}))
    assert out == (
        "zone_id IN ('T-KARTINI','Pantai ''Bandengan''') AND kind = 'footfall' "
        "AND z IN (T-KARTINI,Pantai 'Bandengan') AND footfall = 1"
    )
    out = substitute_variables("${zone:sqlstring}", values, interval=1, multi=frozenset())
    assert out == "'T-KARTINI','Pantai ''Bandengan'''"


def sql_literals(text: str) -> list[str]:
    """A reference reader of a comma-separated list of SQL string literals."""
    return [m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", text)]


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"])), min_size=1))
def test_quoted_values_read_back_as_the_values(values):
    out = substitute_variables("$v", {"v": values}, interval=1, multi=frozenset({"v"}))
    assert sql_literals(out) == values


@pytest.mark.parametrize(
    ("sql", "problem"),
    [("$zone", "not a variable"), ("${kind:percentencode}", "format"), ("$empty", "no value")],
)
def test_unknown_variables_and_formats_are_errors(sql, problem):
    with pytest.raises(MacroError, match=problem):
        expand(sql, RANGE, interval=1, variables={"empty": [], "kind": ["footfall"]})


def test_relative_times_in_wib():
    friday_14_wib = int(datetime(2026, 11, 27, 7, 0, tzinfo=UTC).timestamp() * 1000)
    assert relative_ms("now", friday_14_wib, "Asia/Jakarta") == friday_14_wib
    assert relative_ms("now-6h", friday_14_wib, "Asia/Jakarta") == friday_14_wib - 6 * 3_600_000
    midnight_wib = int(datetime(2026, 11, 26, 17, 0, tzinfo=UTC).timestamp() * 1000)
    assert relative_ms("now/d", friday_14_wib, "Asia/Jakarta") == midnight_wib
    monday_wib = midnight_wib - 4 * 86_400_000
    assert relative_ms("now/w", friday_14_wib, "Asia/Jakarta") == monday_wib
    with pytest.raises(MacroError):
        relative_ms("yesterday", friday_14_wib, "Asia/Jakarta")


def guards_true(sql: str, interval: int) -> int:
    """How many UNION branches of a rollup query run at this interval."""
    ops = {">=": int.__ge__, "<": int.__lt__}
    holding = 0
    for guard in re.findall(r"WHERE (.*?) AND \$__timeFilter", sql):
        clauses = [c.split() for c in guard.split(" AND ") if c != "true"]
        holding += all(ops[op](interval, int(bound)) for _, op, bound in clauses)
    return holding


@pytest.mark.parametrize("interval", [60_000, 300_000, 900_000, 1_200_000, 3_600_000, 86_400_000])
@pytest.mark.parametrize("finest_s", [60, 900])
def test_exactly_one_rollup_runs_per_interval(interval, finest_s):
    template = "SELECT {step} FROM {rollup} WHERE {guard} AND $__timeFilter(bucket) GROUP BY 1"
    sql = by_interval(template, finest_s=finest_s)
    assert guards_true(sql, interval) == 1
    assert ("rollup_1m" in sql) == (finest_s == 60)


def test_time_options():
    assert time_options(None, None, None, 5) == (5, None)
    assert time_options(3, None, None, 5) == (3, None)
    assert time_options(None, 1, 2, 5) == (2, TimeRange(1, 2))
    for bad in [(3, 1, 2), (None, 1, None), (None, 2, 1)]:
        with pytest.raises(ConfigError):
            time_options(*bad, 5)


def test_result_shapes():
    assert shape_problem("time_series", ["t", "value"], [(1, 2)]) != ""
    assert shape_problem("time_series", ["time", "metric", "value"], [(1, "a", 2)]) == ""
    assert "sorted" in shape_problem("time_series", ["time", "v"], [(2, 1.0), (1, 1.0)])
    assert "lat" in shape_problem("map", ["Zona", "lon"], [("a", 1.0)])
    assert shape_problem("alert", ["zone", "pct"], [("T-KARTINI", 12.5)]) == ""
    assert shape_problem("alert", ["zone", "a", "b"], [("T", 1, 2)]) != ""
    assert shape_problem("alert", ["n"], [(None,)]) != ""


def test_contains():
    assert contains({"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}}, {"b": {"c": [1, {"d": 2}]}})
    assert not contains({"a": [1, 2]}, {"a": [1]})
    assert not contains({"a": 1}, {"a": 1, "b": None})
    assert not contains(None, {"a": 1})
