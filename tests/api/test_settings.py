"""api.settings: the depot is a place, parsed when the settings are loaded."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.settings import ApiSettings


def test_depot_from_the_environment_is_a_lat_lon_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANTAU_API_DEPOT", "-6.5906, 110.6680")
    assert ApiSettings().depot == (-6.5906, 110.668)
    monkeypatch.setenv("PANTAU_API_DEPOT", "")
    assert ApiSettings().depot is None
    monkeypatch.delenv("PANTAU_API_DEPOT")
    assert ApiSettings().depot is None


@pytest.mark.parametrize(
    ("text", "message"),
    [("-6.59", "not lat,lon"), ("east,west", "not lat,lon"), ("110.67,-6.59", "not a place")],
)
def test_a_depot_that_is_not_a_place_is_refused_when_loaded(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.setenv("PANTAU_API_DEPOT", text)
    with pytest.raises(ValidationError, match=message):
        ApiSettings()
