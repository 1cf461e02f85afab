"""simulators.settings: the fault kinds are a checked tuple when the settings are loaded."""

from __future__ import annotations

import pytest

from pantau.errors import ConfigError
from simulators.metrics import FAULT_KINDS
from simulators.settings import SimulateSettings


def test_fault_kinds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PANTAU_SIM_FAULT_KINDS", raising=False)
    assert SimulateSettings().fault_kinds == FAULT_KINDS
    monkeypatch.setenv("PANTAU_SIM_FAULT_KINDS", " spike, offline ")
    assert SimulateSettings().fault_kinds == ("spike", "offline")
    monkeypatch.setenv("PANTAU_SIM_FAULT_KINDS", "all")
    assert SimulateSettings().fault_kinds == FAULT_KINDS


def test_an_unknown_fault_kind_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANTAU_SIM_FAULT_KINDS", "spike,gremlin")
    with pytest.raises(ConfigError, match="gremlin") as info:
        SimulateSettings()
    assert "stuck" in info.value.fix
