"""MQTT endpoints (the ``mqtt://`` and ``mqtts://`` URLs every Pantau client connects with) and
the one failure policy of every Pantau MQTT client: what to retry and what to stop with."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from pantau.errors import ConfigError
from pantau.masking import mask_url

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt
    from paho.mqtt.reasoncodes import ReasonCode

logger = logging.getLogger(__name__)


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


# -- the failure policy of every Pantau MQTT client -------------------------------------------
#
# A network error (connection refused, connection lost) or a refusal that may pass (the broker
# unavailable or busy) is retried: paho reconnects after RECONNECT_MIN_S, doubling the wait up to
# RECONNECT_MAX_S. A refusal that will not pass (a bad login, an account the broker does not
# authorise, a subscription it refuses) ends the client with a ConfigError that says what to
# check: retrying it forever would only hide the problem.

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30

# MQTT 3.1.1 CONNACK return codes (section 3.2.2.3) as their MQTT 5 reason codes (3.2.2.2);
# both numberings reach :func:`connack_refusal` (failures are 1-5 in one, 0x80 and up in the
# other), though paho 2 hands its callbacks MQTT 5 codes either way.
_V311_CONNACK = {1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}

_CONNACK_NAMES = {
    0x84: "Unsupported protocol version",
    0x85: "Client identifier not valid",
    0x86: "Bad user name or password",
    0x87: "Not authorized",
    0x8A: "Banned",
    0x8C: "Bad authentication method",
}

_SUBACK_NAMES = {
    0x80: "Unspecified error",  # MQTT 3.1.1's only failure code (section 3.9.3)
    0x83: "Implementation specific error",
    0x87: "Not authorized",
    0x8F: "Topic filter invalid",
    0x91: "Packet identifier in use",
    0x97: "Quota exceeded",
    0x9E: "Shared subscriptions not supported",
    0xA1: "Subscription identifiers not supported",
    0xA2: "Wildcard subscriptions not supported",
}


def _account(endpoint: MqttEndpoint, username: str | None) -> str:
    user = username or endpoint.username
    return f"the account {user!r}" if user else "an anonymous client"


def connack_refusal(
    code: int, endpoint: MqttEndpoint, where: str, username: str | None = None
) -> ConfigError | None:
    """What a CONNACK with ``code`` means: ``None`` when it is a success or a refusal that may
    pass (reconnect with backoff), else the error to stop with.

    ``code`` is an MQTT 5 reason code (section 3.2.2.2) or an MQTT 3.1.1 return code (3.2.2.3);
    ``where`` names the setting that holds the login (e.g. ``PANTAU_MQTT_URL``), ``username``
    the login when it is not the endpoint's own.
    """
    code = _V311_CONNACK.get(code, code)
    if code not in _CONNACK_NAMES:
        return None  # success, or unspecified, server unavailable, busy, quota, rate, moved
    user = username or endpoint.username
    account = _account(endpoint, username)
    if code in (0x86, 0x87) and not user:
        fix = f"give a user name and password in {where}: the broker admits no anonymous client"
    elif code == 0x86:
        fix = f"check the user name {user!r} and its password in {where}"
    elif code == 0x87:
        # Mosquitto answers a wrong password with Not authorized too.
        fix = (
            f"check the account {user!r}, its password in {where}, and the broker's ACL for "
            "that account"
        )
    elif code == 0x8C:
        fix = f"check the login in {where} against the authentication the broker expects"
    elif code == 0x8A:
        fix = f"the broker bans {account}: ask its operator, or use another account in {where}"
    elif code == 0x84:
        fix = "use an MQTT version the broker supports (5 or 3.1.1)"
    else:
        fix = "use another client id (letters, digits and '-', one per client)"
    return ConfigError(
        f"the broker at {endpoint.url()} refused the connection of {account}: "
        f"{_CONNACK_NAMES[code]}",
        fix,
    )


def suback_refusal(
    codes: Sequence[int],
    topic_filter: str,
    endpoint: MqttEndpoint,
    where: str,
    username: str | None = None,
) -> ConfigError | None:
    """What a SUBACK with ``codes`` (one per topic filter, MQTT 5 section 3.9.3) means: ``None``
    when every subscription was granted, else the error to stop with. A refused subscription
    is refused again on every reconnect, so none is worth retrying."""
    failed = [code for code in codes if code >= 0x80]
    if not failed:
        return None
    code = failed[0]
    account = _account(endpoint, username)
    if code in (0x80, 0x87):
        fix = (
            f"check the broker's ACL for {account} (the login in {where}): it must allow "
            f"reading {topic_filter}; and check the topic root PANTAU_TOPIC_ROOT"
        )
    elif code == 0x8F:
        fix = "check the topic root PANTAU_TOPIC_ROOT and the shared group"
    elif code == 0x9E:
        fix = "use a broker with shared subscriptions (MQTT 5), or one worker without a group"
    else:
        fix = "check the broker's log and its limits for this account"
    name = _SUBACK_NAMES.get(code, f"reason code 0x{code:02X}")
    return ConfigError(
        f"the broker at {endpoint.url()} refused the subscription of {account} to "
        f"{topic_filter}: {name}",
        fix,
    )


class FailurePolicy:
    """The failure policy above, for one paho client, applied from its callbacks.

    The callbacks run on paho's network thread and cannot raise to the thread that owns the
    client: a refusal that will not pass is kept in :attr:`error`, :attr:`refused` is set, and
    the client is disconnected so that paho stops reconnecting. The owner calls
    :meth:`raise_if_refused` (or waits on :attr:`answered`) and raises it.
    """

    def __init__(self, endpoint: MqttEndpoint, where: str, username: str | None = None) -> None:
        self.endpoint = endpoint
        self.where = where
        self.username = username
        self.error: ConfigError | None = None
        self.refused = threading.Event()
        self.answered = threading.Event()  # a CONNACK arrived, or connecting failed

    def apply(self, client: mqtt.Client) -> None:
        """Give ``client`` the reconnect backoff and the connection-failure log."""
        client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
        client.on_connect_fail = self.on_connect_fail

    def on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        """paho's ``on_connect_fail``: the broker could not be reached; paho tries again."""
        logger.warning(
            "cannot reach the broker at %s; retrying (every %d s at most)",
            self.endpoint.url(),
            RECONNECT_MAX_S,
        )
        self.answered.set()

    def connected(self, client: mqtt.Client, reason_code: ReasonCode) -> bool:
        """For ``on_connect``: whether the broker accepted the connection. A refusal is logged
        and retried, or, if it will not pass, kept and the client stopped."""
        self.answered.set()
        if not reason_code.is_failure:
            return True
        error = connack_refusal(int(reason_code.value), self.endpoint, self.where, self.username)
        if error is None:
            logger.warning(
                "the broker at %s refused the connection (%s); retrying",
                self.endpoint.url(),
                reason_code,
            )
        else:
            self._stop(client, error)
        return False

    def subscribed(
        self, client: mqtt.Client, reason_codes: Sequence[ReasonCode], topic_filter: str
    ) -> bool:
        """For ``on_subscribe``: whether the broker granted the subscription to ``topic_filter``;
        if not, the error is kept and the client stopped."""
        error = suback_refusal(
            [int(rc.value) for rc in reason_codes],
            topic_filter,
            self.endpoint,
            self.where,
            self.username,
        )
        if error is None:
            return True
        self._stop(client, error)
        return False

    def raise_if_refused(self) -> None:
        """Raise the refusal that stopped the client, if one did."""
        if self.error is not None:
            raise self.error

    def _stop(self, client: mqtt.Client, error: ConfigError) -> None:
        if self.error is None:
            self.error = error
        self.refused.set()
        client.disconnect()  # from a callback: paho's loop returns instead of reconnecting
