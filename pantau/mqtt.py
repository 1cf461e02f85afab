"""MQTT endpoints: the ``mqtt://`` and ``mqtts://`` URLs every Pantau client connects with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from pantau.errors import ConfigError
from pantau.masking import mask_url

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt


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
