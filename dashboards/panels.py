"""Grafana panels and their targets as plain dicts: the few kinds Pantau's dashboards use.

Every panel queries the one provisioned data source (:data:`DATASOURCE`) with raw SQL; a panel
is built without its id and position, which :class:`dashboards.board.Board` assigns.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

DS_TYPE = "grafana-postgresql-datasource"
DS_UID = "pantau-timescaledb"
DS_NAME = "Pantau TimescaleDB"
DATASOURCE: Json = {"type": DS_TYPE, "uid": DS_UID}
FOLDER_UID = "pantau"
FOLDER_TITLE = "Pantau"
SCHEMA_VERSION = 39
TIMEZONE = "Asia/Jakarta"
GRID_WIDTH = 24


def sql(text: str) -> str:
    """A query as written in the source, without its common indentation."""
    return textwrap.dedent(text).strip()


@dataclass(frozen=True)
class Query:
    """One panel target: raw SQL and Grafana's result format.

    ``may_be_empty`` says why no rows can be the normal answer (e.g. no rejected message);
    empty, a query must return rows wherever the simulator has put data.
    """

    text: str
    fmt: str = "table"  # "table" or "time_series"
    may_be_empty: str = ""


def steps(*pairs: tuple[float | None, str]) -> Json:
    """Absolute thresholds: (lower bound, colour) pairs; the first bound is None (base)."""
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in pairs]}


def value_colours(colours: dict[str, str], texts: dict[str, str] | None = None) -> list[Json]:
    """Value mappings giving each exact value a colour (and, optionally, a display text)."""
    options: Json = {}
    for index, (value, colour) in enumerate(colours.items()):
        result: Json = {"color": colour, "index": index}
        if texts and value in texts:
            result["text"] = texts[value]
        options[value] = result
    return [{"type": "value", "options": options}]


def override(column: str, **properties: Any) -> Json:
    """A field override by column name; keyword names use ``__`` for dots (custom__width)."""
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [{"id": k.replace("__", "."), "value": v} for k, v in properties.items()],
    }


def coloured_cells(mode: str = "color-background") -> Json:
    return {"type": mode}


def _targets(queries: list[Query]) -> list[Json]:
    return [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "editorMode": "code",
            "format": q.fmt,
            "rawQuery": True,
            "rawSql": q.text,
        }
        for i, q in enumerate(queries)
    ]


@dataclass
class Panel:
    """A panel before layout: its JSON without id and position, its size and its queries."""

    body: Json
    queries: list[Query]
    w: int
    h: int


def panel(
    kind: str,
    title: str,
    description: str,
    queries: list[Query],
    *,
    w: int,
    h: int,
    defaults: Json | None = None,
    overrides: list[Json] | None = None,
    options: Json | None = None,
    interval: str | None = None,
) -> Panel:
    """A panel of type ``kind`` (timeseries, stat, table, geomap, bargauge, state-timeline)."""
    body: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults or {}, "overrides": overrides or []},
        "options": options or {},
        "targets": _targets(queries),
    }
    if interval:
        body["interval"] = interval  # the lowest $__interval this panel asks for
    return Panel(body, queries, w, h)


def timeseries(
    title: str,
    description: str,
    queries: list[Query],
    *,
    unit: str,
    w: int = 12,
    h: int = 9,
    interval: str | None = None,
    thresholds: Json | None = None,
    threshold_style: str = "off",
    bars: bool = False,
    overrides: list[Json] | None = None,
) -> Panel:
    defaults: Json = {
        "unit": unit,
        "custom": {
            "drawStyle": "bars" if bars else "line",
            "lineWidth": 1,
            "fillOpacity": 60 if bars else 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if bars else "none", "group": "A"},
            "thresholdsStyle": {"mode": threshold_style},
        },
        "color": {"mode": "palette-classic"},
    }
    if thresholds:
        defaults["thresholds"] = thresholds
    options = {
        "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel(
        "timeseries", title, description, queries, w=w, h=h, defaults=defaults,
        overrides=overrides, options=options, interval=interval,
    )  # fmt: skip


def stat(
    title: str,
    description: str,
    query: Query,
    *,
    unit: str = "none",
    thresholds: Json | None = None,
    w: int = 24,
    h: int = 4,
    per_row: str | None = None,
    fields: str = "",
    colour_mode: str = "background",
    overrides: list[Json] | None = None,
    mappings: list[Json] | None = None,
) -> Panel:
    """Stat tiles: one per numeric column, or with ``per_row`` one per row, named by that column."""
    defaults: Json = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": thresholds or steps((None, "green")),
        "mappings": mappings or [],
    }
    if per_row:
        defaults["displayName"] = "${__data.fields." + per_row + "}"
    options = {
        "reduceOptions": {
            "values": per_row is not None,
            "calcs": ["lastNotNull"],
            "fields": fields,
        },
        "orientation": "auto",
        "textMode": "value_and_name",
        "colorMode": colour_mode,
        "graphMode": "none",
        "justifyMode": "center",
    }
    return panel(
        "stat", title, description, [query], w=w, h=h, defaults=defaults, overrides=overrides,
        options=options,
    )  # fmt: skip


def table(
    title: str,
    description: str,
    query: Query,
    *,
    w: int = 12,
    h: int = 9,
    overrides: list[Json] | None = None,
) -> Panel:
    defaults: Json = {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}}
    options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    return panel(
        "table", title, description, [query], w=w, h=h, defaults=defaults, overrides=overrides,
        options=options,
    )  # fmt: skip


def bargauge(
    title: str,
    description: str,
    query: Query,
    *,
    name: str,
    value: str,
    unit: str,
    thresholds: Json,
    max_value: float,
    w: int = 12,
    h: int = 9,
) -> Panel:
    """Horizontal bars, one per row: ``value`` named by the ``name`` column."""
    defaults: Json = {
        "unit": unit,
        "min": 0,
        "max": max_value,
        "color": {"mode": "thresholds"},
        "thresholds": thresholds,
        "displayName": "${__data.fields." + name + "}",
    }
    options = {
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
        "valueMode": "color",
        "reduceOptions": {"values": True, "calcs": [], "fields": f"/^{value}$/"},
    }
    return panel(
        "bargauge", title, description, [query], w=w, h=h, defaults=defaults, options=options
    )


def state_timeline(
    title: str,
    description: str,
    query: Query,
    *,
    unit: str,
    thresholds: Json,
    w: int = 24,
    h: int = 9,
) -> Panel:
    defaults: Json = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": thresholds,
        "custom": {"fillOpacity": 80, "lineWidth": 0},
    }
    options = {
        "mergeValues": False,
        "showValue": "never",
        "alignValue": "left",
        "rowHeight": 0.85,
        "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
        "tooltip": {"mode": "single", "sort": "none"},
    }
    return panel(
        "state-timeline", title, description, [query], w=w, h=h, defaults=defaults,
        options=options,
    )  # fmt: skip


def geomap(
    title: str,
    description: str,
    query: Query,
    *,
    layer: str,
    colour_by: str,
    unit: str,
    thresholds: Json,
    w: int = 12,
    h: int = 12,
    size: int = 6,
) -> Panel:
    """Markers at the query's ``lat``/``lon`` columns, coloured by ``colour_by``'s thresholds."""
    defaults: Json = {"unit": unit, "color": {"mode": "thresholds"}, "thresholds": thresholds}
    options = {
        "view": {"id": "fit", "allLayers": True, "padding": 5, "lat": -6.59, "lon": 110.67},
        "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
        "basemap": {"type": "default", "name": "Peta dasar", "config": {}},
        "layers": [
            {
                "type": "markers",
                "name": layer,
                "config": {
                    "showLegend": True,
                    "style": {
                        "color": {"field": colour_by, "fixed": "dark-green"},
                        "size": {"fixed": size},
                        "opacity": 0.8,
                        "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                    },
                },
                "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                "tooltip": True,
            }
        ],
        "tooltip": {"mode": "details"},
    }
    return panel(
        "geomap", title, description, [query], w=w, h=h, defaults=defaults, options=options
    )
