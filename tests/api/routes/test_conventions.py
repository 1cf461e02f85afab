"""A convention checked across the route modules at once: every timestamp the API answers
carries the WIB offset."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.api.routes.helpers import Get

pytestmark = pytest.mark.integration

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_every_timestamp_is_wib(get: Get, end: datetime) -> None:
    bodies = [
        get("/v1/sensors", limit=50),
        get("/v1/sensors/WB-W-DMS-07-001"),
        get("/v1/sensors/AQ-CENTRE/readings", metric="pm25_ugm3", start=end - timedelta(hours=3),
            end=end),
        get("/v1/sensors/AQ-CENTRE/readings", metric="pm25_ugm3", start=end - timedelta(days=2),
            end=end),
        get("/v1/latest", kind="footfall"),
        get("/v1/anomalies", limit=50),
        get("/v1/alarms"),
        get("/v1/waste/bins", limit=50),
        get("/v1/air/stations"),
        get("/v1/air/stations/AQ-CENTRE/history"),
        get("/v1/tourism/zones"),
    ]  # fmt: skip
    found = [s for body in bodies for s in _strings(body) if ISO.match(s)]
    assert len(found) > 300
    assert [s for s in found if not s.endswith("+07:00")] == []
