"""What the API admits before routing: a rate per caller, a URL length and a body size.

An ASGI middleware, outermost in the app, so a refused request costs no routing and no query
(but its key's lookup, once per ``KEY_CACHE_S`` for a key). In order:

1. Rate (429 with Retry-After): one token bucket per caller (:mod:`api.limits`). The caller is
   the API key's id when the request presents a valid key (verified here, through the same
   cache as the routes use, so a key costs one lookup per ``KEY_CACHE_S``), else the client
   address: no key, a malformed, unknown or revoked one. A forged key cannot drain a real
   key's bucket, and a client sending bad keys is held to the rate of its address.
2. URL length (414): path plus query string, in bytes as sent.
3. Body size (413): a Content-Length above the limit is refused before any of the body is read;
   otherwise the body is read here, at most one byte past the limit (chunked bodies included),
   and handed to the app once it is known to fit.

Buckets live in the process: with ``PANTAU_API_WORKERS`` = N each worker has its own, so a
caller spread over the workers gets up to N times the rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import apikeys
from api.deps import Caller, KeyCache, presented_key, verified
from api.limits import Rate, RateLimiter, retry_after_s
from api.problems import problem_response
from api.settings import ApiSettings

logger = logging.getLogger(__name__)
KEY_LOOKUP_TIMEOUT_S = 5.0  # longer (a pool exhausted or a database away): count by address


class Admission:
    """Refuses requests over the rate, URL or body limits of ``settings`` (0: no limit)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: ApiSettings,
        key_cache: KeyCache,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.app = app
        self.keys = key_cache
        self.clock = clock
        self.max_url_bytes = settings.max_url_bytes
        self.max_body_bytes = settings.max_body_bytes
        self.limiter = (
            RateLimiter(Rate(settings.rate_per_s, settings.rate_burst))
            if settings.rate_per_s > 0
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = await self.throttle(request) or self.check_url(request)
        if refusal is None and self.max_body_bytes and _has_body(request):
            refusal = self.check_length(request)
            if refusal is None:
                try:
                    body = await _read_at_most(receive, self.max_body_bytes)
                except _ClientLeft:
                    return  # the client left while sending: nobody to answer
                if body is None:
                    refusal = self.too_large(request)
                else:
                    receive = _replay(body, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def identify(self, request: Request) -> Caller | None:
        """The caller of a request that presents a valid key, else None."""
        presented = presented_key(request)
        if presented is None:
            return None
        cached, who = self.keys.get(presented)
        if cached or apikeys.parse(presented) is None:
            return who
        pool = getattr(request.app.state, "pool", None)
        if pool is None:  # the app has not started (no lifespan): nothing to look keys up in
            return None
        try:
            async with pool.connection(timeout=KEY_LOOKUP_TIMEOUT_S) as conn:
                return await verified(self.keys, conn, presented)
        except psycopg.Error as exc:  # pool timeout or database trouble: the route will tell
            logger.warning("cannot verify an API key for the rate limit: %s", exc)
            return None

    async def throttle(self, request: Request) -> Response | None:
        """429 when the caller's bucket is empty."""
        if self.limiter is None:
            return None
        who = await self.identify(request)
        if who is not None:
            caller, whose = f"key {who.key_id}", "this API key"
        else:
            host = request.client.host if request.client else "unknown"
            caller, whose = f"address {host}", "this client address (without a valid API key)"
        wait_ns = self.limiter.take(caller, self.clock())
        if wait_ns == 0:
            return None
        rate = self.limiter.rate
        after = retry_after_s(wait_ns)
        logger.debug("429 for %s on %s", caller, request.url.path)
        return problem_response(
            request, 429, "Too many requests",
            f"{whose} sent more than {rate.per_s:g} requests a second (bursts of up to "
            f"{rate.burst}); retry after {after} s (the Retry-After header) and send requests "
            "less often; the limit is PANTAU_API_RATE_PER_S and PANTAU_API_RATE_BURST",
            {"Retry-After": str(after)},
        )  # fmt: skip

    def check_url(self, request: Request) -> Response | None:
        """414 when the path and query string are longer than the limit."""
        if not self.max_url_bytes:
            return None
        path = request.scope.get("raw_path") or request.scope["path"].encode()
        query: bytes = request.scope.get("query_string", b"")
        length = len(path) + (len(query) + 1 if query else 0)
        if length <= self.max_url_bytes:
            return None
        return problem_response(
            request, 414, "URL too long",
            f"the path and query string are {length} bytes, more than the limit of "
            f"{self.max_url_bytes}; send fewer or shorter query parameters (no Pantau query "
            "needs more)",
        )  # fmt: skip

    def check_length(self, request: Request) -> Response | None:
        """413 when the announced Content-Length is above the limit (before reading the body)."""
        announced = request.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > self.max_body_bytes:
            return self.too_large(request)
        return None

    def too_large(self, request: Request) -> Response:
        return problem_response(
            request, 413, "Request body too large",
            f"the request body is larger than the limit of {self.max_body_bytes} bytes; no "
            "Pantau endpoint takes a bigger one (acknowledging an alarm takes no body at all)",
            {"Connection": "close"},  # the rest of the body is not read: the connection ends
        )  # fmt: skip


class _ClientLeft(Exception):  # noqa: N818 (an event, not an error)
    """The client disconnected before it had sent the whole body."""


def _has_body(request: Request) -> bool:
    """Whether the request announces a body (HTTP/1.1: Content-Length or Transfer-Encoding)."""
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


async def _read_at_most(receive: Receive, most: int) -> bytes | None:
    """The whole body when it is at most ``most`` bytes; None as soon as it is longer (the rest
    is left unread); raises :class:`_ClientLeft` when the client disconnects first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientLeft
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > most:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` in one message, then what the server sends."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again
