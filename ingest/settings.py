"""Settings of the ingest worker (``PANTAU_INGEST_*``), built by the command line."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pantau.settings import CommonSettings


class IngestSettings(CommonSettings):
    """The ingest worker (``pantau ingest``)."""

    model_config = SettingsConfigDict(env_prefix="PANTAU_INGEST_", env_file=".env", extra="ignore")
    db_service: ClassVar[str] = "ingest"
    mqtt_service: ClassVar[str] = "ingest"

    client_id: str = Field(
        "pantau-ingest", description="Fixed MQTT client id (persistent session)."
    )
    processes: int = Field(
        1, ge=1, le=64, description="Worker processes on one shared subscription (supervised)."
    )
    shared_group: str = Field(
        "", description="Join $share/<group>/... to split load across workers."
    )
    mqtt_version: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT version of the worker's own connection (devices may use either)."
    )
    batch_max_readings: int = Field(5000, ge=1, description="Flush a batch at this many readings.")
    batch_max_age_ms: int = Field(200, ge=1, description="Flush a batch at this age.")
    detect: bool = Field(
        True, description="Run the anomaly detectors on new readings in the ingest transaction."
    )
    receive_maximum: int = Field(
        10000, ge=1, le=65535, description="MQTT v5 receive maximum (unacknowledged in flight)."
    )
    session_expiry_s: int = Field(7 * 86400, ge=0, description="MQTT v5 session expiry interval.")
    max_payload_bytes: int = Field(256 * 1024, ge=64, description="Larger payloads are rejected.")
    max_readings_per_message: int = Field(
        1000, ge=1, description="Readings of a message beyond this are rejected."
    )
    future_tolerance_s: int = Field(300, ge=0, description="Readings further ahead are rejected.")
    summary_every_s: float = Field(10.0, gt=0, description="Period of the one-line log summary.")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Serve Prometheus /metrics on 127.0.0.1:<port>; 0: off."
    )
