"""Settings of the operations commands: the local stack (``PANTAU_STACK_*``), the database
bootstrap (``PANTAU_DB_*``) and the broker's service accounts (``PANTAU_MQTT_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pantau.settings import CommonSettings


class StackSettings(CommonSettings):
    """The local development stack (``pantau stack``)."""

    model_config = SettingsConfigDict(env_prefix="PANTAU_STACK_", env_file=".env", extra="ignore")

    mqtt_port: int = Field(18830, ge=1, le=65535, description="Port of the private Mosquitto.")
    pg_port: int = Field(54330, ge=1, le=65535, description="Port of the private PostgreSQL.")
    install: bool = Field(True, description="Install missing servers with apt when root.")
    fsync: bool = Field(True, description="PostgreSQL fsync; tests turn it off for speed.")
    max_inflight: int = Field(10000, ge=1, description="Mosquitto max_inflight_messages.")
    tls_port: int = Field(
        0, ge=0, le=65535, description="Also listen for MQTT over TLS on this port; 0: no TLS."
    )
    tls_certfile: Path | None = Field(None, description="TLS listener's certificate (PEM).")
    tls_keyfile: Path | None = Field(None, description="TLS listener's private key (PEM).")
    tls_cafile: Path | None = Field(None, description="CA that signed it (clients verify).")


class BootstrapSettings(CommonSettings):
    """``pantau db bootstrap``: the roles and logins, made once with the superuser's URL."""

    model_config = SettingsConfigDict(env_prefix="PANTAU_DB_", env_file=".env", extra="ignore")

    admin_url: SecretStr | None = Field(
        None, description="A superuser's postgresql:// URL (used by bootstrap only)."
    )
    name: str = Field(
        "pantau", pattern=r"^[a-z_][a-z0-9_]*$", description="The database to bootstrap."
    )
    owner_password: SecretStr = Field(SecretStr(""), description="pantau_owner's password.")
    ingest_password: SecretStr = Field(
        SecretStr(""), description="pantau_ingest_user's password (ingest and process)."
    )
    api_password: SecretStr = Field(SecretStr(""), description="pantau_api_user's password.")
    grafana_password: SecretStr = Field(
        SecretStr(""), description="pantau_grafana_user's password."
    )


class BrokerAccountSettings(CommonSettings):
    """The broker's service accounts' passwords, for ``registry credentials --out``."""

    model_config = SettingsConfigDict(env_prefix="PANTAU_MQTT_", env_file=".env", extra="ignore")

    ingest_password: SecretStr = Field(SecretStr(""), description="pantau-ingest's password.")
    process_password: SecretStr = Field(SecretStr(""), description="pantau-process's password.")
    simulator_password: SecretStr = Field(
        SecretStr(""), description="pantau-simulator's password (empty: no simulator account)."
    )
