"""Settings of the read API (``PANTAU_API_*``), built by the command line."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from pantau.settings import CommonSettings


class ApiSettings(CommonSettings):
    """The read API (``pantau api``)."""

    model_config = SettingsConfigDict(env_prefix="PANTAU_API_", env_file=".env", extra="ignore")
    db_service: ClassVar[str] = "api"

    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port the API listens on.")
    db_role: str = Field(
        "pantau_api",
        pattern=r"^[a-z_][a-z0-9_]*$",
        description="Database role the API switches to on every connection (read-only plus "
        "acknowledging alarms).",
    )
    workers: int = Field(
        1, ge=1, le=64, description="Server processes (each with its own connection pool)."
    )
    pool_min: int = Field(2, ge=1, description="Database connections kept open.")
    pool_max: int = Field(10, ge=1, description="Database connections at most.")
    max_page: int = Field(1000, ge=1, description="Largest page a list endpoint returns.")
    rate_per_s: float = Field(
        50.0,
        ge=0,
        allow_inf_nan=False,
        description="Requests a second each caller (an API key; without a valid key, a client "
        "address) may make on average, per server process; more: 429. 0: no rate limit.",
    )
    rate_burst: int = Field(
        200, ge=1, description="Requests a caller may make at once before the rate applies."
    )
    max_body_bytes: int = Field(
        16_384, ge=0, description="Largest request body; larger: 413. 0: no limit."
    )
    max_url_bytes: int = Field(
        2048, ge=0, description="Longest path plus query string; longer: 414. 0: no limit."
    )
    raw_max_hours: float = Field(
        48.0, gt=0, description="Longest time range served as raw readings; longer: bucketed."
    )
    depot: Annotated[tuple[float, float] | None, NoDecode] = Field(
        None, description="lat,lon where collection trucks start; default: the disposal site."
    )

    @field_validator("depot", mode="before")
    @classmethod
    def _lat_lon(cls, value: Any) -> Any:
        """``lat,lon`` (decimal degrees, WGS 84) as written in PANTAU_API_DEPOT; empty: none."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        parts = value.split(",")
        try:
            lat, lon = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"{value!r} is not lat,lon (e.g. -6.59,110.67)") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"{value!r} is not a place: latitude -90..90, longitude -180..180")
        return lat, lon


class ApiKeySettings(CommonSettings):
    """``pantau api key``: writes ``api_keys``, which only the database owner may (the API's
    own login reads keys and notes when they were last used). On the local stack the commands
    connect as the owner; elsewhere PANTAU_DATABASE_URL must be the owner's."""

    db_service: ClassVar[str] = "owner"
