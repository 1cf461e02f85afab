"""Settings of the sensor simulator (``PANTAU_SIM_*``), built by the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from pantau.settings import CommonSettings
from simulators.metrics import FAULT_KINDS, parse_fault_kinds


class SimulateSettings(CommonSettings):
    """The sensor simulator (``pantau simulate``)."""

    model_config = SettingsConfigDict(env_prefix="PANTAU_SIM_", env_file=".env", extra="ignore")
    mqtt_service: ClassVar[str] = "simulator"

    client_id: str = Field(
        "pantau-sim", description="MQTT client id (with --per-device: <id>-<sensor_id>)."
    )
    seed: int = Field(20261128, ge=0, description="Seed: same seed and fleet, same byte stream.")
    # paho 2.2 publishes fastest with about 100 in flight (measured against Mosquitto 2.0.11:
    # 15,400 msg/s at 100, 7,500 at 1,000, 1,900 at 10,000): its acknowledgement handling
    # grows with the window, so a larger one slows the publisher rather than unblocking it.
    max_inflight: int = Field(
        100, ge=1, description="QoS 1 messages awaiting a PUBACK before publishing waits."
    )
    fault_rate: float = Field(
        0.05, ge=0, description="Injected faults per sensor per simulated day (0: none)."
    )
    fault_kinds: Annotated[tuple[str, ...], NoDecode] = Field(
        FAULT_KINDS,
        description="Comma-separated fault kinds to inject (stuck, spike, ...), or all.",
    )

    @field_validator("fault_kinds", mode="before")
    @classmethod
    def _fault_kinds(cls, value: Any) -> Any:
        """``all`` or a comma-separated list, as written in PANTAU_SIM_FAULT_KINDS."""
        return parse_fault_kinds(value) if isinstance(value, str) else value

    payload: Literal["json", "batch", "senml"] = Field(
        "json", description="JSON objects, gateway batches (JSON arrays) or SenML packs."
    )
    batch_s: int = Field(0, ge=0, description="Gateway batch window (s) for batch and senml.")
    username: str = Field(
        "", description="MQTT username, else the URL's; {sensor_id} is replaced per device."
    )
    password: SecretStr = Field(
        SecretStr(""), description="MQTT password, else the URL's; {sensor_id} is replaced."
    )
    credentials_file: Path | None = Field(
        None,
        description="devices.csv of `pantau registry credentials --out`: with --per-device, each "
        "device connects with its own account (default: the local stack's device accounts).",
    )
