"""Request limits of the API against the real app and database: the rate per caller (429 with
Retry-After), the body size (413) and the URL length (414), each a problem detail; 0 turns a
limit off.

The rate limiter's clock is a hand-moved one (``Clock``): buckets refill only when a test moves
it, so the counts below are exact whatever the machine's speed. Body and chunked bodies are also
sent to a real uvicorn server over a socket, where the body arrives in pieces: there the 413 must
come before the body ends (it never does).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.limits import NS
from api.settings import ApiSettings
from ops.stack.processes import free_port
from tests.fixtures.api import ApiData

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
UNKNOWN_ALARM = 9_000_000_000  # acknowledging it is a 404 past every check: nothing changes
ACK = f"/v1/alarms/{UNKNOWN_ALARM}/acknowledge"


class Clock:
    """The rate limiter's clock (monotonic nanoseconds), moved only by the test."""

    def __init__(self) -> None:
        self.now_ns = 1000 * NS

    def __call__(self) -> int:
        return self.now_ns


@contextmanager
def serving(api_data: ApiData, clock: Clock | None = None, **limits: Any) -> Iterator[TestClient]:
    """The real app on the test database with ``limits`` (ApiSettings fields) and ``clock``."""
    settings = ApiSettings(database_url=api_data.url, **limits)
    with TestClient(create_app(settings, clock=clock or Clock())) as client:
        yield client


def assert_problem(response: Any, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    for word in words:
        assert word in body["detail"], body["detail"]
    return body


def key(api_data: ApiData, role: str) -> dict[str, str]:
    return {"X-API-Key": api_data.keys[role]}


# --- rate ----------------------------------------------------------------------------------------


def test_a_key_gets_its_burst_then_429_with_retry_after(api_data: ApiData) -> None:
    clock = Clock()
    with serving(api_data, clock, rate_per_s=0.5, rate_burst=3) as client:
        engineer = key(api_data, "engineer")
        for _ in range(3):
            assert client.get("/v1/zones?limit=1", headers=engineer).status_code == 200
        refused = client.get("/v1/zones?limit=1", headers=engineer)
        assert_problem(refused, 429, "API key", "Retry-After", "PANTAU_API_RATE_PER_S", "0.5")
        assert refused.headers["retry-after"] == "2"  # one token at 0.5 a second
        clock.now_ns += 3 * NS // 2  # three quarters of a token back: refused, 0.5 s to go
        refused = client.get("/v1/sensors", headers=engineer)
        assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "1"
        clock.now_ns = 1002 * NS  # the Retry-After of the first refusal has passed
        assert client.get("/v1/sensors", headers=engineer).status_code == 200
        assert client.get("/v1/sensors", headers=engineer).status_code == 429


def test_buckets_are_per_key(api_data: ApiData) -> None:
    with serving(api_data, rate_per_s=0.5, rate_burst=3) as client:
        engineer, admin = key(api_data, "engineer"), key(api_data, "admin")
        for _ in range(3):
            assert client.get("/v1/alarms", headers=engineer).status_code == 200
        assert_problem(client.get("/v1/alarms", headers=engineer), 429)
        # Another key, and requests without one (the client address), are not affected ...
        for _ in range(3):
            assert client.get("/v1/alarms", headers=admin).status_code == 200
        assert client.get("/v1/health").status_code == 200
        assert_problem(client.get("/v1/alarms", headers=admin), 429)
        # ... and the bucket belongs to the key, however it is sent.
        bearer = {"Authorization": f"Bearer {api_data.keys['engineer']}"}
        assert_problem(client.get("/v1/anomalies", headers=bearer), 429, "API key")


def test_requests_without_a_valid_key_count_per_client_address(api_data: ApiData) -> None:
    """No key, a malformed or unknown one: the client address's bucket. A 401 costs a token,
    and once the address is out of tokens bad keys get 429; a valid key from the same address
    has its own bucket, and another address is not affected."""
    with serving(api_data, rate_per_s=0.5, rate_burst=4) as client:
        assert client.get("/v1/health").status_code == 200
        assert client.get("/v1/ready").status_code == 200
        assert_problem(client.get("/v1/zones", headers={"X-API-Key": "nonsense"}), 401)
        unknown = "pantau_000000000000_" + "A" * 43
        assert_problem(client.get("/v1/zones", headers={"X-API-Key": unknown}), 401)
        refused = client.get("/v1/health")
        assert_problem(refused, 429, "client address", "Retry-After")
        assert refused.headers["retry-after"] == "2"
        assert_problem(client.get("/v1/zones", headers={"X-API-Key": unknown}), 429)
        assert_problem(client.get("/v1/no-such-endpoint"), 429)
        assert client.get("/v1/waste/bins", headers=key(api_data, "dlh")).status_code == 200
        # Another address: a second client of the same app (no lifespan: health needs none).
        other = TestClient(client.app, client=("192.0.2.7", 40000))
        assert other.get("/v1/health").status_code == 200
        other.close()


def test_default_rate_lets_a_burst_through_then_holds_to_the_rate(api_data: ApiData) -> None:
    """The limits as shipped (nothing overridden): the documented burst and rate."""
    fields = ApiSettings.model_fields
    assert (fields["rate_per_s"].default, fields["rate_burst"].default) == (50.0, 200)
    settings = ApiSettings(database_url=api_data.url)
    clock = Clock()
    with TestClient(create_app(settings, clock=clock)) as client:
        statuses = [client.get("/v1/health").status_code for _ in range(settings.rate_burst)]
        assert statuses == [200] * settings.rate_burst
        refused = client.get("/v1/health")
        assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "1"
        clock.now_ns += NS
        per_s = int(settings.rate_per_s)
        statuses = [client.get("/v1/health").status_code for _ in range(per_s + 1)]
        assert statuses == [200] * per_s + [429]


# --- body size -----------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413(api_data: ApiData) -> None:
    with serving(api_data) as client:  # the default limit
        engineer = key(api_data, "engineer")
        most = ApiSettings(database_url=api_data.url).max_body_bytes
        assert most == ApiSettings.model_fields["max_body_bytes"].default
        body = assert_problem(
            client.post(ACK, headers=engineer, content=b"x" * (most + 1)), 413, f"{most} bytes"
        )
        assert "no body" in body["detail"]
        # At the limit: past the check (and acknowledging an unknown alarm is a 404).
        assert_problem(client.post(ACK, headers=engineer, content=b"x" * most), 404)
        # Chunked (no Content-Length): the bytes are counted as they come.
        chunks = [b"y" * 1000] * (most // 1000 + 1)
        response = client.post(ACK, headers=engineer, content=iter(chunks))
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.request.headers
        assert_problem(response, 413)
        assert_problem(client.post(ACK, headers=engineer, content=iter([b"{}"])), 404)
        # Any method: a GET with a body over the limit as well.
        assert_problem(client.request("GET", "/v1/health", content=b"x" * (most + 1)), 413)


@contextmanager
def real_server(app: FastAPI) -> Iterator[int]:
    """``app`` under uvicorn on a free port of 127.0.0.1, in a thread; yields the port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


def _problem_of(response: http.client.HTTPResponse) -> tuple[int, str, bytes]:
    return response.status, response.getheader("content-type", ""), response.read()


def test_a_real_server_refuses_big_bodies_before_they_end(api_data: ApiData) -> None:
    """Over a socket: a Content-Length over the limit is refused with no byte of the body sent,
    and a chunked body as soon as it passes the limit, though it never ends."""
    settings = ApiSettings(database_url=api_data.url, max_body_bytes=4096)
    with real_server(create_app(settings)) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.putrequest("POST", ACK)
        conn.putheader("X-API-Key", api_data.keys["engineer"])
        conn.putheader("Content-Length", str(1 << 30))
        conn.endheaders()  # and no body
        status, kind, body = _problem_of(conn.getresponse())
        assert (status, kind) == (413, PROBLEM), body
        assert b"4096 bytes" in body
        conn.close()

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.putrequest("POST", ACK)
        conn.putheader("X-API-Key", api_data.keys["engineer"])
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for _ in range(5):  # 5,000 bytes, and no last chunk: the body has not ended
            conn.send(b"3e8\r\n" + b"z" * 1000 + b"\r\n")
        status, kind, body = _problem_of(conn.getresponse())
        assert (status, kind) == (413, PROBLEM), body
        conn.close()

        # Within the limit, a chunked body reaches the route.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request(
            "POST", ACK, body=iter([b"{}"]), headers={"X-API-Key": api_data.keys["engineer"]}
        )
        status, kind, body = _problem_of(conn.getresponse())
        assert (status, kind) == (404, PROBLEM), body
        assert str(UNKNOWN_ALARM).encode() in body
        # A long URL through the real server's parser: our 414.
        conn.request("GET", "/v1/zones?kind=" + "k" * 3000)
        status, kind, body = _problem_of(conn.getresponse())
        assert (status, kind) == (414, PROBLEM), body
        conn.close()


# --- URL length ----------------------------------------------------------------------------------


def test_a_url_over_the_limit_is_414(api_data: ApiData) -> None:
    with serving(api_data) as client:  # the default limit
        most = ApiSettings(database_url=api_data.url).max_url_bytes
        assert most == ApiSettings.model_fields["max_url_bytes"].default
        admin = key(api_data, "admin")
        # An offset padded with zeros: a URL of any length that is otherwise answered (200).
        prefix = "/v1/zones?offset="
        fits = client.get(prefix + "9999".rjust(most - len(prefix), "0"), headers=admin)
        assert fits.status_code == 200, fits.text
        assert fits.json()["count"] == 0
        over = client.get(prefix + "9999".rjust(most - len(prefix) + 1, "0"), headers=admin)
        assert_problem(over, 414, f"{most + 1} bytes", str(most), "query")
        # Counted as sent (percent-encoded), the path as well as the query.
        assert_problem(client.get("/v1/zones?kind=" + "é" * (most // 4), headers=admin), 414)
        assert_problem(client.get("/v1/sensors/" + "S" * most, headers=admin), 414)


# --- off -----------------------------------------------------------------------------------------


def test_limits_are_off_with_0(api_data: ApiData) -> None:
    with serving(api_data, rate_per_s=0, rate_burst=1, max_body_bytes=0, max_url_bytes=0) as c:
        admin = key(api_data, "admin")
        # The clock never moves, so with any rate a burst of 1 would refuse the second request.
        assert [c.get("/v1/zones?limit=1", headers=admin).status_code for _ in range(20)] == [
            200
        ] * 20
        assert [c.get("/v1/health").status_code for _ in range(20)] == [200] * 20
        assert_problem(c.post(ACK, headers=admin, content=b"x" * 1_000_000), 404)
        long = c.get("/v1/zones?offset=" + "9999".rjust(20_000, "0"), headers=admin)
        assert long.status_code == 200
        assert long.json()["count"] == 0


# --- the OpenAPI document ------------------------------------------------------------------------


def test_limits_are_documented_on_every_operation(api_client: TestClient) -> None:
    paths = api_client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            for code in ("413", "414", "429"):
                response = operation["responses"].get(code)
                assert response is not None, (method, path, code)
                assert PROBLEM in response["content"], (method, path, code)
            assert "Retry-After" in operation["responses"]["429"]["headers"]
