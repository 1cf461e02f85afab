"""monitor.settings: the job's settings as read from PANTAU_PROCESS_* variables."""

from __future__ import annotations

from datetime import UTC, time

import pytest
from pydantic import ValidationError

from monitor.settings import ProcessSettings


@pytest.fixture(autouse=True)
def _no_env_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env file of the working tree
    monkeypatch.delenv("PANTAU_PROCESS_CLOSING_TIME", raising=False)


def test_closing_time_is_a_time_of_day(monkeypatch):
    assert ProcessSettings().closing_time == time(18, 0)
    monkeypatch.setenv("PANTAU_PROCESS_CLOSING_TIME", "21:30")
    assert ProcessSettings().closing_time == time(21, 30)
    monkeypatch.setenv("PANTAU_PROCESS_CLOSING_TIME", "00:00")
    assert ProcessSettings().closing_time == time(0, 0)
    assert ProcessSettings(closing_time=time(17, 45)).closing_time == time(17, 45)


@pytest.mark.parametrize(
    "text",
    ["7:30", "24:00", "18:60", "18:00:30", "18:00+07:00", "18:00Z", "six", "1800", "", " 18:00"],
)
def test_closing_time_not_hh_mm_is_refused_with_the_value_and_an_example(monkeypatch, text):
    monkeypatch.setenv("PANTAU_PROCESS_CLOSING_TIME", text)
    with pytest.raises(ValidationError) as caught:
        ProcessSettings()
    (error,) = caught.value.errors()
    assert error["loc"] == ("closing_time",)
    assert f"{text!r} is not a time of day as HH:MM (WIB), e.g. 18:00" in error["msg"]


@pytest.mark.parametrize("value", [time(18, 0, 30), time(18, 0, 0, 1), time(18, 0, tzinfo=UTC)])
def test_closing_time_object_with_seconds_or_an_offset_is_refused(value):
    with pytest.raises(ValidationError, match="is not whole minutes of local time"):
        ProcessSettings(closing_time=value)
