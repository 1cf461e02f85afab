"""Secrets kept out of logs and refused when still placeholders."""

from __future__ import annotations

import re

PLACEHOLDERS = ("change-me", "changeme", "change_me", "placeholder", "example", "xxx")


def is_placeholder(secret: str) -> bool:
    """Whether ``secret`` is empty or still a placeholder such as ``.env.example``'s."""
    lowered = secret.strip().lower()
    return not lowered or any(p in lowered for p in PLACEHOLDERS)


_PASSWORD_IN_URL = re.compile(r"(://[^:/@]+:)[^@]*(@)")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return _PASSWORD_IN_URL.sub(r"\1***\2", url)
