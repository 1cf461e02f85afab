"""How a command builds its settings: the environment, its options, and on a development machine
the local stack's URLs.

Services read their URLs from their settings only. Here, and only here, a command run in
development (PANTAU_ENV unset or ``development``) without PANTAU_DATABASE_URL / PANTAU_MQTT_URL
gets the URLs that `pantau stack up` made for it: its own service's login and broker account
(``db_service``, ``mqtt_service`` of its settings class).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import SecretStr

from ops.stack.local import service_urls
from pantau.settings import CommonSettings

S = TypeVar("S", bound=CommonSettings)


def load(cls: type[S], **overrides: Any) -> S:
    """``cls`` from the environment and ``overrides`` (options given on the command line; ``None``
    values are left out), with the local stack's URLs where none are set, in development."""
    settings = cls(**{name: value for name, value in overrides.items() if value is not None})
    return with_local_stack(settings)


def with_local_stack(settings: S) -> S:
    """``settings`` with the local stack's URLs for what is not set (development only)."""
    if settings.environment != "development" or (settings.database_url and settings.mqtt_url):
        return settings
    urls = service_urls(settings.state_dir, type(settings).db_service, type(settings).mqtt_service)
    if urls is None:
        return settings
    update: dict[str, SecretStr] = {}
    if settings.database_url is None:
        update["database_url"] = SecretStr(urls[0])
    if settings.mqtt_url is None:
        update["mqtt_url"] = SecretStr(urls[1])
    return settings.model_copy(update=update)
