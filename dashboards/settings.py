"""Settings of `pantau dashboards` (``PANTAU_GRAFANA_*``), built by the command line."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pantau.errors import ConfigError
from pantau.settings import CommonSettings


class GrafanaSettings(CommonSettings):
    """Where Grafana is, and how its data source reaches the database.

    The ``db_*`` settings are those of Grafana's read-only login: `pantau dashboards db-user`
    creates it, ``push`` puts it in the data source, and the provisioned data source file reads
    the same variables inside the Grafana container.
    """

    model_config = SettingsConfigDict(env_prefix="PANTAU_GRAFANA_", env_file=".env", extra="ignore")
    # On the local stack, `check` runs as Grafana's own login (made by the stack's bootstrap).
    db_service: ClassVar[str] = "grafana"

    url: str = Field("http://127.0.0.1:3000", description="Grafana's base URL, for push.")
    token: SecretStr = Field(
        SecretStr(""), description="Service account token (role Admin), for push."
    )
    db_host: str = Field(
        "", description="host:port Grafana reaches the database at; default: the database URL's."
    )
    db_name: str = Field("", description="Database name; default: the database URL's.")
    db_user: str = Field("pantau_grafana_user", description="Grafana's read-only database login.")
    db_password: SecretStr = Field(
        SecretStr(""), description="Its password (db-user sets it; push sends it to Grafana)."
    )
    db_sslmode: str = Field("disable", description="libpq sslmode of the data source.")
    role: str = Field(
        "pantau_grafana", description="Group role the login gets and `check` runs as."
    )

    def db_host_and_name(self) -> tuple[str, str]:
        """The data source's host:port and database, defaulting to the database URL's."""
        if self.db_host and self.db_name:
            return self.db_host, self.db_name
        parts = urlsplit(self.resolved_database_url())
        host = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        name = parts.path.lstrip("/") or "pantau"
        return self.db_host or host, self.db_name or name

    def password(self) -> str:
        """The login's password; a :class:`ConfigError` when it is not set."""
        value = self.db_password.get_secret_value()
        if not value:
            raise ConfigError(
                "PANTAU_GRAFANA_DB_PASSWORD is not set",
                "set it to the password of Grafana's database login (GRAFANA_DB_PASSWORD in "
                "docker-compose's .env)",
            )
        return value

    def masked(self) -> dict[str, str]:
        out = super().masked()
        for name in ("token", "db_password"):
            out[name] = "***" if getattr(self, name).get_secret_value() else ""
        return out
