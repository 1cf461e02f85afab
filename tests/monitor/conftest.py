"""Fixtures of the scheduled job's tests: a scenario on a fresh database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.monitor.scenario import Scenario


@pytest.fixture
def scenario(db_url: str) -> Iterator[Scenario]:
    s = Scenario(db_url)
    yield s
    s.close()
