"""Test configuration: the real-service fixtures are plugins, one module per service
(tests/fixtures/)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# A plugin is listed after the plugins it imports: pytest rewrites the asserts of a plugin only
# if it imports the module itself, and warns otherwise (an error, with filterwarnings = error).
pytest_plugins = [
    "tests.fixtures.polling",
    "tests.fixtures.stack",
    "tests.fixtures.broker",
    "tests.fixtures.ingest",
    "tests.fixtures.commands",
    "tests.fixtures.api",
    "tests.fixtures.journeys",
]
# The checks the route tests share assert outside a test module: rewrite those asserts too.
pytest.register_assert_rewrite("tests.api.routes.helpers")

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """In CI a skipped test is a failure: integration tests must run, never skip."""
    report: pytest.TestReport = yield
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which is not allowed: {report.longrepr}"
    return report
