"""Settings of the scheduled job (``PANTAU_PROCESS_*``), built by the command line."""

from __future__ import annotations

import re
from datetime import time
from typing import Any, ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from pantau.settings import CommonSettings


class ProcessSettings(CommonSettings):
    """The scheduled processing job (``pantau process``)."""

    model_config = SettingsConfigDict(env_prefix="PANTAU_PROCESS_", env_file=".env", extra="ignore")
    db_service: ClassVar[str] = "process"
    mqtt_service: ClassVar[str] = "process"

    interval_s: float = Field(30.0, gt=0, description="Seconds between two runs of the job.")
    client_id: str = Field(
        "pantau-process", description="MQTT client id of the last-will (status) listener."
    )
    offline_after_intervals: float = Field(
        3.0, gt=1, description="A sensor silent for this many expected intervals is offline."
    )
    collection_threshold_pct: float = Field(
        80.0, gt=0, le=100, description="A bin at or above this fill needs collection."
    )
    collection_hour: int = Field(
        7, ge=0, le=23, description="Local hour (WIB) of the daily collection round."
    )
    battery_low_v: float = Field(3.4, gt=0, description="Battery voltage that raises battery_low.")
    ispu_window_h: int = Field(
        24, ge=1, le=72, description="ISPU averaging window (hours, trailing)."
    )
    ispu_min_hours: int = Field(
        18, ge=1, description="Hours with data needed in the window (default 75 % of 24)."
    )
    ispu_recompute_h: int = Field(
        48, ge=1, description="Hours of ISPU recomputed on each run (late data lands here)."
    )
    closing_time: time = Field(
        time(18, 0),
        description="Default closing time (WIB, HH:MM) of tourist zones: occupancy resets then; "
        "a zone's params.closing overrides it.",
    )
    typical_weeks: int = Field(
        4, ge=1, le=52, description="Weeks of history behind 'typical for this hour of the week'."
    )
    village_period_days: int = Field(
        28, ge=1, description="Period of the per-village waste figures (days)."
    )

    @field_validator("closing_time", mode="before")
    @classmethod
    def _hh_mm(cls, value: Any) -> Any:
        """``HH:MM`` (00:00 to 23:59) as written in PANTAU_PROCESS_CLOSING_TIME, local time
        (WIB): seconds or a UTC offset would be silently dropped, so they are refused."""
        if isinstance(value, str):
            if not _HH_MM.fullmatch(value):
                raise ValueError(f"{value!r} is not a time of day as HH:MM (WIB), e.g. 18:00")
            return value
        if isinstance(value, time) and (value.tzinfo or value.second or value.microsecond):
            raise ValueError(f"{value} is not whole minutes of local time (WIB), e.g. 18:00")
        return value


_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
