"""Values of the commands' options: positive numbers, times."""

from __future__ import annotations

import argparse
from datetime import datetime

from pantau.errors import ConfigError


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def parse_time(text: str, option: str) -> int:
    """Unix seconds of an ISO 8601 time with an offset given to ``option``."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time", "write it like 2026-11-28T08:00:00+07:00"
        ) from None
    if parsed.tzinfo is None:
        raise ConfigError(f"{option} {text!r} has no UTC offset", "add one, e.g. +07:00 for WIB")
    return int(parsed.timestamp())
