"""How results leave the API: timestamps in WIB, pages of items, JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON, or CSV"}
}
PROBLEM_RESPONSE: dict[str, Any] = {
    "description": "Problem details (RFC 9457)",
    "content": {"application/problem+json": {"schema": {"type": "object"}}},
}

# Asia/Jakarta: UTC+7 all year (no daylight saving), so a fixed offset needs no tz database.
WIB = timezone(timedelta(hours=7), "WIB")


def wib(value: datetime | None) -> datetime | None:
    """A time in WIB (ISO 8601 with +07:00 when serialised)."""
    return value.astimezone(WIB) if value is not None else None


def wib_rows(rows: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    """The rows with their time columns ``names`` in WIB (in place)."""
    for row in rows:
        for name in names:
            row[name] = wib(row[name])
    return rows


def wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None:
        return ""
    return value


def csv_response(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def respond(
    request: Request,
    fmt: str | None,
    page: BaseModel,
    item_model: type[BaseModel],
    name: str,
) -> BaseModel | Response:
    """The page as JSON (the response model), or its items as CSV."""
    if not wants_csv(request, fmt):
        return page
    items = [i.model_dump() for i in getattr(page, "items", [])]
    return csv_response(items, list(item_model.model_fields), name)
