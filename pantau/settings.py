"""The settings base every service's settings class derives from (pydantic-settings).

Every service has one settings class, in its own package, with its own prefix
(``PANTAU_INGEST_`` in ingest/settings.py, ``PANTAU_SIM_`` in simulators/settings.py, ...); the
connection settings every service shares have fixed names (``PANTAU_DATABASE_URL``,
``PANTAU_MQTT_URL``, ``PANTAU_TOPIC_ROOT``, ``PANTAU_ENV``) and live here.
A service reads its URLs from its settings only. On a development machine the command line
(cli/settings.py) fills in the URLs that are not set from the local stack started by
``pantau stack up``; production services never look there.
Settings objects are built in entry points, never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pantau.errors import ConfigError
from pantau.masking import is_placeholder, mask_url
from pantau.mqtt import MqttEndpoint

__all__ = ["CommonSettings", "SecretFiles"]

_URL_FIX = (
    "set it (see the configuration table in README.md); on a development machine, "
    "`pantau stack up` starts a local stack whose URLs the commands then use"
)


class SecretFiles(PydanticBaseSettingsSource):
    """Secrets from files: ``<VARIABLE>_FILE`` names a file holding ``<VARIABLE>``'s value, as
    Docker and Kubernetes secrets are mounted (read when ``<VARIABLE>`` itself is not set; one
    trailing newline is dropped)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is done in __call__

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix", ""))
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if field.annotation is not SecretStr and SecretStr not in get_args(field.annotation):
                continue
            alias = field.validation_alias
            variable = alias if isinstance(alias, str) else (prefix + name).upper()
            path = os.environ.get(variable + "_FILE")
            if not path or variable in os.environ:
                continue
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"{variable}_FILE names {path}, which cannot be read ({exc.strerror})",
                    f"point {variable}_FILE at the secret's file, or set {variable} instead",
                ) from None
            values[variable if isinstance(alias, str) else name] = text.removesuffix("\n")
        return values


class CommonSettings(BaseSettings):
    """Where the broker, the database and the local stack's state are.

    Each service connects as itself: without PANTAU_DATABASE_URL / PANTAU_MQTT_URL, a command
    takes its own service's URL from the local stack (``db_service``, ``mqtt_service``): the
    ingest login for ``pantau ingest``, the owner for migrations, and so on.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)
    db_service: ClassVar[str] = "owner"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            SecretFiles(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    mqtt_service: ClassVar[str] = "admin"

    state_dir: Path = Field(
        Path(".pantau"),
        validation_alias="PANTAU_STATE_DIR",
        description="Directory of the local stack (processes, data, logs, stack.json).",
    )
    database_url: SecretStr | None = Field(
        None,
        validation_alias="PANTAU_DATABASE_URL",
        description="postgresql:// URL; default: the local stack's.",
    )
    mqtt_url: SecretStr | None = Field(
        None,
        validation_alias="PANTAU_MQTT_URL",
        description="mqtt://[user:password@]host:port; default: the local stack's.",
    )
    topic_root: str = Field(
        "pantau/v1",
        validation_alias="PANTAU_TOPIC_ROOT",
        description="Topic prefix: telemetry is <root>/<kind>/<sensor_id>.",
    )
    environment: Literal["development", "production"] = Field(
        "development",
        validation_alias="PANTAU_ENV",
        description="production: refuse placeholder secrets and superuser database logins.",
    )

    def resolved_database_url(self) -> str:
        """The database URL (PANTAU_DATABASE_URL, or what the command line filled in)."""
        if self.database_url is None:
            raise ConfigError("PANTAU_DATABASE_URL is not set", _URL_FIX)
        return self.database_url.get_secret_value()

    def resolved_mqtt_url(self) -> str:
        """The broker URL (PANTAU_MQTT_URL, or what the command line filled in)."""
        if self.mqtt_url is None:
            raise ConfigError("PANTAU_MQTT_URL is not set", _URL_FIX)
        return self.mqtt_url.get_secret_value()

    def resolved_mqtt(self) -> MqttEndpoint:
        """The broker endpoint of :meth:`resolved_mqtt_url`."""
        return MqttEndpoint.parse(self.resolved_mqtt_url())

    def refuse_placeholders(self) -> None:
        """Outside development, refuse to start with a secret still at its placeholder value
        (``.env.example``'s ``change-me``), an empty password in a URL, or none at all."""
        if self.environment == "development":
            return
        for name in type(self).model_fields:
            value = getattr(self, name)
            if not isinstance(value, SecretStr):
                continue
            secret = value.get_secret_value()
            if "://" in secret:
                parts = urlsplit(secret)
                secret = unquote(parts.password) if parts.password else ""
            if is_placeholder(secret):
                raise ConfigError(
                    f"{name} has a placeholder or empty password and PANTAU_ENV is production",
                    "set a real secret (e.g. `openssl rand -hex 24`) in the environment or .env",
                )

    def masked(self) -> dict[str, str]:
        """The effective settings as strings, with passwords masked, for the start-up log line."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                value = mask_url(secret) if "://" in secret else ("***" if secret else "")
            out[name] = str(value)
        return out
