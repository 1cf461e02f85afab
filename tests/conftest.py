"""Test configuration: the real-service fixtures are a plugin (tests/services.py)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.services"]

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci")
