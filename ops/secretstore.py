"""Generated secrets of a local stack, kept in one file only root (or the owner) can read.

``<state_dir>/secrets.json`` (mode 0600) holds the passwords ``pantau stack up`` generated: the
database superuser and service logins, the broker's service accounts and the devices' broker
passwords. A secret, once generated, is kept: restarting the stack or regenerating the broker's
files changes no password unless asked to (``pantau registry credentials --rotate``). The file
lives in the state directory, never in the repository (``.pantau/`` is ignored by git).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from pantau.errors import ConfigError

FILE = "secrets.json"


def new_password() -> str:
    """A random password of 32 URL-safe characters (192 bits), safe inside URLs and files."""
    return secrets.token_urlsafe(24)


class SecretStore:
    """Named secrets in groups (``database``, ``mqtt``, ``devices``), persisted on every change."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE
        self._data: dict[str, dict[str, Any]] = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"the secret file {self.path} is corrupt ({exc})",
                "restore it from a backup, or delete it and the local stack's state directory "
                "to start over with new passwords",
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"the secret file {self.path} is not a JSON object", "delete it")
        return data

    def get(self, group: str, name: str) -> str | None:
        value = self._data.get(group, {}).get(name)
        return value if isinstance(value, str) else None

    def group(self, group: str) -> dict[str, Any]:
        return dict(self._data.get(group, {}))

    def ensure(self, group: str, name: str, *, rotate: bool = False) -> str:
        """The secret ``group/name``, generated (and saved) when missing or when rotating."""
        value = self.get(group, name)
        if value is None or rotate:
            value = new_password()
            self._data.setdefault(group, {})[name] = value
            self.save()
        return value

    def put_group(self, group: str, values: dict[str, Any]) -> None:
        self._data[group] = values
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self._data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
