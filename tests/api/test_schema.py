"""The API against its own OpenAPI schema (Schemathesis), and bad input: never a 5xx.

Schemathesis generates requests for every operation of the schema the app publishes, valid
and invalid ones, and checks that no response is a server error, that every status code is
documented and that documented bodies match their schemas. Generation is derandomized (the
same requests on every run) and capped at 25 examples per operation. Requests carry the admin
key; the acknowledge operation may acknowledge a few alarms, which the other API tests allow
for. Then bad input, request by request: each gets its 4xx problem, none a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks

from api.app import create_app
from api.settings import ApiSettings
from tests.fixtures.api import ApiData

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"

# The schema only: building the app opens nothing (the pool opens in the lifespan), so the
# operations are known at collection time; test_served_schema_is_the_tested_one checks that
# the running app serves this very schema at /openapi.json.
SPEC: dict[str, Any] = create_app(
    ApiSettings(database_url="postgresql://schema-only@localhost/none")
).openapi()
schema = schemathesis.openapi.from_dict(SPEC)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def client(api_data: ApiData) -> Iterator[TestClient]:
    """The real app on the test database, admin key, server errors returned as responses."""
    # Rate limit off: Schemathesis sends about 1,400 requests with one key at machine speed;
    # test_api_limits.py tests the limits, the defaults included.
    app = create_app(ApiSettings(database_url=api_data.url, rate_per_s=0))
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["X-API-Key"] = api_data.keys["admin"]
        yield c


def assert_problem(response: Any, status: int | None = None) -> dict[str, Any]:
    if status is not None:
        assert response.status_code == status, response.text
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == response.status_code
    # The path asked for (Starlette's URL goes through urllib.parse, which drops tab, CR, LF).
    path = response.request.url.path
    assert body["instance"] == "".join(c for c in path if c not in "\t\r\n")
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def test_served_schema_is_the_tested_one(client: TestClient) -> None:
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == SPEC
    assert len(SPEC["paths"]) == 17


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: Any, client: TestClient) -> None:
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    if not kwargs.get("cookies"):
        kwargs.pop("cookies", None)
    # The schema declares the X-API-Key scheme, so Schemathesis fills the header with values of
    # its own; the keyed checks are in test_api_roles.py, here every call carries the admin key.
    kwargs["headers"] = {**(kwargs.get("headers") or {}), "X-API-Key": client.headers["X-API-Key"]}
    response = client.request(**kwargs)
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        assert_problem(response)
    if case.method == "POST":
        assert response.status_code in {200, 404, 405, 409, 422}


# --- what the schema says about errors -----------------------------------------------------------


def test_validation_errors_are_documented_as_problems(client: TestClient) -> None:
    response = client.get("/v1/zones", params={"offset": -1})
    assert_problem(response, 422)
    documented = SPEC["paths"]["/v1/zones"]["get"]["responses"]["422"]["content"]
    assert PROBLEM in documented, documented


def test_key_errors_are_documented(client: TestClient) -> None:
    response = client.get("/v1/zones", headers={"X-API-Key": ""})
    assert_problem(response, 401)
    undocumented = [
        (method, path, code)
        for path, operations in SPEC["paths"].items()
        if path not in ("/v1/health", "/v1/ready")
        for method, operation in operations.items()
        for code in (("401",) if path == "/v1/zones" else ("401", "403"))
        if code not in operation["responses"]
    ]  # fmt: skip
    assert undocumented == []


# --- bad input, request by request ---------------------------------------------------------------

R = "/v1/sensors/WB-W-DMS-07-001/readings"
DAY = "start=2026-11-26T14:00:00%2B07:00&end=2026-11-27T14:00:00%2B07:00"
ANY = None  # any 4xx problem, or a 2xx: what matters is no 5xx

BAD_INPUT = [
    # unknown things: 404
    ("GET", "/v1/sensors/NO-SUCH-SENSOR", 404, "no sensor"),
    ("GET", "/v1/sensors/NO-SUCH-SENSOR/readings?metric=fill_pct", 404, "no sensor"),
    ("GET", "/v1/air/stations/NO-SUCH-STATION/history", 404, "no air station"),
    ("GET", "/v1/air/stations/WB-W-DMS-07-001/history", 404, "no air station"),  # a bin
    ("GET", f"{R}?metric=pm25_ugm3&{DAY}", 404, "has no metric"),  # an air metric on a bin
    ("GET", f"{R}?metric=no_such_metric&{DAY}", 404, "has no metric"),
    ("POST", "/v1/alarms/987654321/acknowledge", 404, "no alarm"),
    ("GET", "/v1/no-such-endpoint", 404, None),
    # time ranges
    ("GET", f"{R}?metric=fill_pct&start=2026-11-27T14:00:00%2B07:00"
            "&end=2026-11-27T08:00:00%2B07:00", 422, "must be before"),
    ("GET", f"{R}?metric=fill_pct&start=2026-11-27T14:00:00%2B07:00"
            "&end=2026-11-27T07:00:00Z", 422, "must be before"),  # the same instant
    ("GET", f"{R}?metric=fill_pct&bucket=raw&start=2026-10-28T14:00:00%2B07:00"
            "&end=2026-11-27T14:00:00%2B07:00", 422, "bucket=auto"),
    ("GET", f"{R}?metric=fill_pct&bucket=1m&start=2000-01-01T00:00:00%2B07:00"
            "&end=2026-11-27T14:00:00%2B07:00", 422, "too many"),
    ("GET", f"{R}?metric=fill_pct&start=2026-11-27T08:00:00&end=2026-11-27T14:00:00%2B07:00",
     422, "offset"),
    ("GET", f"{R}?metric=fill_pct&end=2026-11-27T14:00:00", 422, "offset"),
    ("GET", "/v1/anomalies?start=2026-11-27T08:00:00", 422, "offset"),
    ("GET", "/v1/rejects?end=2026-11-27T08:00:00", 422, "offset"),
    ("GET", f"{R}?metric=fill_pct&start=yesterday", 422, "start"),
    ("GET", f"{R}?{DAY}", 422, "metric"),  # metric is required
    # formats and enums
    ("GET", "/v1/zones?format=xml", 422, "format"),
    ("GET", f"{R}?metric=fill_pct&{DAY}&format=pdf", 422, "format"),
    ("GET", "/v1/waste/bins?format=CSV", 422, "format"),
    ("GET", "/v1/sensors?kind=boat", 422, "kind"),
    ("GET", "/v1/sensors?status=sleepy", 422, "status"),
    ("GET", "/v1/latest?kind=boat", 422, "kind"),
    ("GET", "/v1/latest", 422, "kind"),  # kind is required
    ("GET", "/v1/anomalies?kind=wobble", 422, "kind"),
    ("GET", "/v1/alarms?state=closed", 422, "state"),
    ("GET", f"{R}?metric=fill_pct&{DAY}&bucket=2h", 422, "bucket"),
    ("GET", "/v1/waste/bins?needs_collection=maybe", 422, "needs_collection"),
    ("GET", "/v1/air/stations/AQ-CENTRE/history?hours=0", 422, "hours"),
    ("GET", "/v1/air/stations/AQ-CENTRE/history?hours=100000", 422, "hours"),
    # paths and pages
    ("GET", "/v1/sensors/-starts-with-a-dash", 422, "sensor_id"),
    ("POST", "/v1/alarms/0/acknowledge", 422, "alarm_id"),
    ("POST", "/v1/alarms/abc/acknowledge", 422, "alarm_id"),
    ("POST", f"/v1/alarms/{2**63}/acknowledge", 422, "alarm_id"),
    ("GET", "/v1/zones?offset=-1", 422, "offset"),
    ("GET", "/v1/zones?offset=100000000", 422, "offset"),
    ("GET", "/v1/zones?limit=1001", 422, "1000"),
    ("GET", "/v1/zones?limit=0", 422, "limit"),
    ("DELETE", "/v1/zones", 405, None),
    ("GET", "/v1/alarms/1/acknowledge", 405, None),
    # extreme but valid times
    ("GET", "/v1/anomalies?start=0001-01-01T00:00:00%2B07:00", ANY, None),
    ("GET", "/v1/anomalies?end=9999-12-31T23:59:59-07:00", ANY, None),
    ("GET", f"{R}?metric=fill_pct&start=2026-11-27T00:00:00%2B14:00"
            "&end=2026-11-27T01:00:00-12:00", ANY, None),
    ("GET", f"{R}?metric=fill_pct&end=0001-01-01T00:00:00Z", 422, "outside 1970-2200"),
    ("GET", f"{R}?metric=fill_pct&start=2026-11-27T00:00:00Z"
            "&end=9999-12-31T23:59:59Z", 422, "outside 1970-2200"),
    ("GET", f"{R}?metric=fill_pct&start=0001-01-01T00:00:00%2B07:00"
            "&end=0001-01-02T00:00:00%2B07:00", 422, "outside 1970-2200"),
    # NUL in free text
    ("GET", "/v1/zones?kind=%00", 422, "NUL"),
    ("GET", "/v1/sensors?zone_id=W-DMS-07%00", 422, "NUL"),
    ("GET", f"{R}?metric=fill%00pct&{DAY}", 422, "NUL"),
    ("GET", "/v1/anomalies?sensor_id=%00", 422, "NUL"),
    ("GET", "/v1/alarms?rule=%00", 422, "NUL"),
    ("GET", "/v1/rejects?reason=%00", 422, "NUL"),
    ("GET", "/v1/waste/bins?zone_id=%00", 422, "NUL"),
    ("GET", "/v1/waste/collection-plan?zone_id=%00", 422, "NUL"),
]  # fmt: skip


def _id(case: Any) -> str:
    values = case.values if hasattr(case, "values") else case
    return f"{values[0]} {values[1]}"


@pytest.mark.parametrize(("method", "url", "status", "words"), BAD_INPUT, ids=map(_id, BAD_INPUT))
def test_bad_input_is_a_client_error(
    client: TestClient, method: str, url: str, status: int | None, words: str | None
) -> None:
    response = client.request(method, url)
    assert response.status_code < 500, response.text
    if status is None and response.status_code < 300:
        return
    body = assert_problem(response, status)
    if words is not None:
        assert words in body["detail"], body["detail"]
