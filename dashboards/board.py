"""A dashboard: variables, panels laid out on Grafana's grid, and the dashboard JSON.

A :class:`Board` collects panels, lays them out left to right on Grafana's 24-column grid and
numbers them, and remembers which queries may legitimately return no rows (for
``pantau dashboards check``). The JSON follows Grafana's dashboard model (schemaVersion 39;
Grafana 11 and later migrate it on load).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboards.panels import DATASOURCE, GRID_WIDTH, SCHEMA_VERSION, TIMEZONE, Json, Panel


def variable(
    name: str, label: str, query: str, description: str, *, default: list[str] | None = None
) -> Json:
    """A multi-value query variable with "All", refreshed when the dashboard loads.

    The query returns ``__value`` and ``__text`` columns. Grafana quotes each value of a
    multi-value variable for SQL, so panels filter with ``column IN ($name)``. ``default``:
    the values selected at first (else All).
    """
    current = (
        {"selected": True, "text": default, "value": default}
        if default
        else {"selected": True, "text": ["All"], "value": ["$__all"]}
    )
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": DATASOURCE,
        "definition": query,
        "query": query,
        "refresh": 1,
        "multi": True,
        "includeAll": True,
        "current": current,
        "options": [],
        "sort": 0,
        "hide": 0,
    }


@dataclass
class Board:
    """A dashboard being built: panels are laid out in the order they are added."""

    uid: str
    title: str
    description: str
    tags: list[str]
    time_from: str
    variables: list[Json] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    refresh: str = "1m"

    def add(self, *panels: Panel) -> None:
        self.panels.extend(panels)

    def empty_ok(self) -> dict[tuple[int, str], str]:
        """(panel id, refId) -> why no rows can be normal, for the queries that say so."""
        out = {}
        for panel_id, p in enumerate(self.panels, start=1):
            for i, q in enumerate(p.queries):
                if q.may_be_empty:
                    out[(panel_id, chr(ord("A") + i))] = q.may_be_empty
        return out

    def json(self) -> Json:
        """The dashboard model Grafana reads: panels numbered from 1 and placed on the grid."""
        placed = []
        x = y = row_h = 0
        for panel_id, p in enumerate(self.panels, start=1):
            if x + p.w > GRID_WIDTH:
                x, y, row_h = 0, y + row_h, 0
            position = {"h": p.h, "w": p.w, "x": x, "y": y}
            placed.append({"id": panel_id, "gridPos": position, **p.body})
            x += p.w
            row_h = max(row_h, p.h)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "timezone": TIMEZONE,
            "weekStart": "monday",
            "editable": False,
            "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "time": {"from": self.time_from, "to": "now"},
            "refresh": self.refresh,
            "links": [
                {
                    "type": "dashboards",
                    "title": "Pantau",
                    "tags": ["pantau"],
                    "asDropdown": True,
                    "includeVars": False,
                    "keepTime": True,
                }
            ],
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "type": "dashboard",
                        "name": "Annotations & Alerts",
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                    }
                ]
            },
            "templating": {"list": self.variables},
            "panels": placed,
        }
