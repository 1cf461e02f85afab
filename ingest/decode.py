"""Payload decoding: bytes in, readings and per-reading problems out. Pure, no I/O.

Accepted payloads (DESIGN.md section 4):

- a JSON object of metrics with ``ts``: ``{"ts": "2026-11-28T09:00:00+07:00", "fill_pct": 42.5}``;
- a JSON array of such objects (gateways batch several readings in one message).

``ts`` is ISO 8601 with an offset (``Z`` or ``+07:00``), or epoch seconds, or epoch
milliseconds (a number of magnitude 1e11 or more is taken as milliseconds: 1e11 s is the year
5138, 1e11 ms is 1973). A timestamp without an offset is rejected: a device clock of unknown zone
would shift every reading by hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

MS_THRESHOLD = 1e11

# Reason codes of problems found while decoding (stored in rejects.reason).
MALFORMED = "malformed_payload"
BAD_STRUCTURE = "bad_structure"
MISSING_TS = "missing_ts"
BAD_TS = "bad_ts"
WRONG_TYPE = "wrong_type"
TOO_LARGE = "payload_too_large"
TOO_MANY = "too_many_readings"


@dataclass(frozen=True)
class Problem:
    """A rejected message (``metric`` None) or a rejected reading of a message."""

    reason: str
    detail: str
    metric: str | None = None


@dataclass
class Decoded:
    """Readings of one message, in payload order, plus what was rejected while decoding."""

    metrics: list[str] = field(default_factory=list)
    ts_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def add(self, metric: str, ts_ms: int, value: float) -> None:
        self.metrics.append(metric)
        self.ts_ms.append(ts_ms)
        self.values.append(value)


def parse_ts(raw: Any) -> int:
    """Unix milliseconds from an ISO 8601 string with offset or an epoch number.

    Raises ``ValueError`` with the reason.
    """
    if isinstance(raw, bool):
        raise ValueError("ts must be a string or a number, not a boolean")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError("ts is not finite")
        ms = raw if abs(raw) >= MS_THRESHOLD else raw * 1000
        return round(ms)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"ts {raw[:40]!r} is not ISO 8601") from None
        if parsed.tzinfo is None:
            raise ValueError(f"ts {raw[:40]!r} has no UTC offset")
        return round(parsed.timestamp() * 1000)
    raise ValueError(f"ts must be a string or a number, not {type(raw).__name__}")


def _decode_object(obj: dict[str, Any], out: Decoded, max_readings: int) -> None:
    if "ts" not in obj:
        out.problems.append(Problem(MISSING_TS, "object has no ts"))
        return
    try:
        ts_ms = parse_ts(obj["ts"])
    except ValueError as exc:
        out.problems.append(Problem(BAD_TS, str(exc)))
        return
    for key, value in obj.items():
        if key == "ts":
            continue
        if len(out.metrics) >= max_readings:
            out.problems.append(Problem(TOO_MANY, f"more than {max_readings} readings", key))
            return
        # bool is an int in Python; a sensor sending true/false has broken its contract.
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.problems.append(
                Problem(WRONG_TYPE, f"value is {type(value).__name__}, not a number", key)
            )
            continue
        out.add(key, ts_ms, float(value))


def decode(payload: bytes, *, max_bytes: int, max_readings: int) -> Decoded:
    """Decode one message payload."""
    out = Decoded()
    if len(payload) > max_bytes:
        out.problems.append(Problem(TOO_LARGE, f"{len(payload)} bytes > limit {max_bytes}"))
        return out
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        out.problems.append(Problem(MALFORMED, f"not JSON: {exc}"[:200]))
        return out
    if isinstance(doc, dict):
        _decode_object(doc, out, max_readings)
    elif isinstance(doc, list):
        if not doc:
            out.problems.append(Problem(BAD_STRUCTURE, "empty array"))
        for i, item in enumerate(doc):
            if not isinstance(item, dict):
                out.problems.append(
                    Problem(
                        BAD_STRUCTURE, f"array item {i} is {type(item).__name__}, not an object"
                    )
                )
                continue
            _decode_object(item, out, max_readings)
    else:
        out.problems.append(
            Problem(BAD_STRUCTURE, f"payload is {type(doc).__name__}, not an object")
        )
    return out
