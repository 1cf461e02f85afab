"""Errors as RFC 9457 problem details (``application/problem+json``), never a bare 500 page."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
SHOWN_CHARS = 80  # a value sent back in a problem: at most this long


class Problem(Exception):  # noqa: N818 (named for what it is: an RFC 9457 problem)
    """An error a client can act on: HTTP status, a short title and what to do."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.headers = headers
        self.extra = extra


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.scope.get("path", request.url.path),  # decoded, as asked for
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def shown(value: Any) -> Any:
    """A value the client sent, to quote in a problem: text past SHOWN_CHARS is cut."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return f"{value[:SHOWN_CHARS]}... ({len(value)} characters)"
    return value


def _named(error: Mapping[str, Any]) -> bool:
    """Whether a validation error's input is a value the client sent (not a missing one)."""
    return error.get("type") != "missing" and isinstance(error.get("input"), str | int | float)


def install(app: FastAPI) -> None:
    """Route every error through :func:`problem_response`."""

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.title, exc.detail, exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            | ({"value": shown(e["input"])} if _named(e) else {})
            for e in exc.errors()
        ]
        detail = "; ".join(
            f"{e['where']}: {e['problem']}" + (f", not {e['value']!r}" if "value" in e else "")
            for e in errors
        )
        return problem_response(request, 422, "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(request, exc.status_code, title, detail, exc.headers)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(
            request, 500, "Internal Server Error", "an unexpected error; it has been logged"
        )
