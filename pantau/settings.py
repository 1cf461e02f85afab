"""Settings of each Pantau service, read from the environment (and `.env`) by pydantic-settings.

Every service has one settings class with its own prefix (``PANTAU_INGEST_``, ``PANTAU_SIM_``,
``PANTAU_STACK_``); the connection settings every service shares have fixed names
(``PANTAU_DATABASE_URL``, ``PANTAU_MQTT_URL``, ``PANTAU_STATE_DIR``,
``PANTAU_TOPIC_ROOT``).
When the URLs are not set, they are taken from the local stack's state file written by
``pantau stack up``, so that a developer can run ``pantau ingest`` right after ``stack up``.
Settings objects are built in entry points, never at import time.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pantau.errors import ConfigError

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

STATE_FILE = "stack.json"


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
        """The database URL from the environment, else from the running local stack."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        state = _stack_state(self.state_dir, "PANTAU_DATABASE_URL")
        return str(state.get("database_urls", {}).get(self.db_service) or state["database_url"])

    def resolved_mqtt_url(self) -> str:
        """The broker URL from the environment, else from the running local stack."""
        if self.mqtt_url is not None:
            return self.mqtt_url.get_secret_value()
        state = _stack_state(self.state_dir, "PANTAU_MQTT_URL")
        return str(state.get("mqtt_urls", {}).get(self.mqtt_service) or state["mqtt_url"])

    def resolved_mqtt(self) -> MqttEndpoint:
        """The broker endpoint from the environment, else from the running local stack."""
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
    fault_kinds: str = Field(
        "all", description="Comma-separated fault kinds to inject (stuck, spike, ...), or all."
    )
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
    closing_time: str = Field(
        "18:00",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Default closing time (WIB) of tourist zones: occupancy resets then; a "
        "zone's params.closing overrides it.",
    )
    typical_weeks: int = Field(
        4, ge=1, le=52, description="Weeks of history behind 'typical for this hour of the week'."
    )
    village_period_days: int = Field(
        28, ge=1, description="Period of the per-village waste figures (days)."
    )


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
    depot: str = Field(
        "",
        pattern=r"^$|^-?[0-9.]+,-?[0-9.]+$",
        description="lat,lon where collection trucks start; default: the disposal site.",
    )


@dataclass(frozen=True)
class MqttEndpoint:
    """A parsed ``mqtt://`` (or ``mqtts://``, MQTT over TLS) URL.

    ``mqtts://user:password@host:8883?cafile=/path/ca.pem`` verifies the broker's certificate
    against that CA (default: the system's CAs) and its host name.
    """

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not parts.hostname:
            raise ConfigError(
                f"invalid MQTT URL {mask_url(url)!r}",
                "write it as mqtt://[user:password@]host:port, e.g. mqtt://127.0.0.1:1883, or "
                "mqtts://user:password@host:8883?cafile=/path/ca.pem for TLS",
            )
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ConfigError(f"invalid port in MQTT URL {mask_url(url)!r}", "use 1-65535") from exc
        query = parse_qs(parts.query)
        ca_file = query.get("cafile", [None])[0]
        if ca_file is not None and not tls:
            raise ConfigError(f"cafile in the MQTT URL {mask_url(url)!r} needs TLS", "use mqtts://")
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            ca_file=ca_file,
        )

    def configure(
        self, client: mqtt.Client, username: str | None = None, password: str | None = None
    ) -> None:
        """Give a paho client this endpoint's login (or ``username``'s) and TLS settings."""
        user = username or self.username
        if user:
            client.username_pw_set(user, password or self.password)
        if self.tls:
            client.tls_set(ca_certs=self.ca_file)

    def url(self) -> str:
        auth = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{self.host}:{self.port}"


PLACEHOLDERS = ("change-me", "changeme", "change_me", "placeholder", "example", "xxx")


def is_placeholder(secret: str) -> bool:
    """Whether ``secret`` is empty or still a placeholder such as ``.env.example``'s."""
    lowered = secret.strip().lower()
    return not lowered or any(p in lowered for p in PLACEHOLDERS)


_PASSWORD_IN_URL = re.compile(r"(://[^:/@]+:)[^@]*(@)")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return _PASSWORD_IN_URL.sub(r"\1***\2", url)


def _stack_state(state_dir: Path, variable: str) -> dict[str, Any]:
    path = state_dir / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{variable} is not set and there is no local stack state at {path}",
            f"run `pantau stack up` (it prints the URLs), or set {variable}",
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"the local stack state {path} is corrupt ({exc})",
            "run `pantau stack down` and `pantau stack up` again",
        ) from exc
    return state
