"""Payload decoding: bytes in, readings and per-reading problems out. Pure, no I/O.

Accepted payloads (DESIGN.md section 4):

- a JSON object of metrics with ``ts``: ``{"ts": "2026-11-28T09:00:00+07:00", "fill_pct": 42.5}``;
- a JSON array of such objects (gateways batch several readings in one message);
- a SenML pack (RFC 8428 section 5, decoded by :mod:`ingest.senml`): a JSON array whose first
  element is an object with a SenML label (``bn``, ``bt``, ``n``, ``v``, ...) and no ``ts``.

``ts`` is read by :func:`pantau.timestamps.parse_ts`: ISO 8601 with an offset, or epoch seconds
or milliseconds; a timestamp without an offset is rejected.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from ingest.decoded import Decoded, Problem
from ingest.senml import decode_senml
from pantau.timestamps import parse_ts
from processing.reasons import (
    BAD_STRUCTURE,
    BAD_TS,
    DUPLICATE_KEY,
    MALFORMED,
    MISSING_TS,
    TOO_LARGE,
    TOO_MANY,
    WRONG_TYPE,
)

_KEY = re.compile(rb'"\s*:')
_QUOTE_SPACE = re.compile(rb'"\s')

# Any of these in the first element of an array, with no "ts", makes the array a SenML pack.
SENML_KEYS = frozenset({"bn", "bt", "n", "v", "bu", "bver", "vs", "vb", "vd", "ut"})


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


def _count_keys(doc: Any) -> int:
    """Keys of the objects that are decoded: the payload's, or its array items' (not nested)."""
    if isinstance(doc, dict):
        return len(doc)
    if isinstance(doc, list):
        return sum(len(item) for item in doc if isinstance(item, dict))
    return 0


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


def duplicate_key(payload: bytes, doc: Any) -> str | None:
    """A key that appears twice in one JSON object of ``payload``, or None.

    RFC 8259 section 4 leaves duplicate names undefined and parsers keep one of the values
    silently, so such a payload is rejected rather than guessed at. The fast parser does not
    report them: when the payload has more ``"key":`` patterns than the parsed objects have keys,
    the slower standard parser checks precisely (a ``":`` inside a string value, or a nested
    object, also triggers it: both are rare, and the check then finds nothing).
    """
    keys = _count_keys(doc)
    patterns = payload.count(b'":')
    if patterns <= keys and _QUOTE_SPACE.search(payload):
        patterns = len(_KEY.findall(payload))  # "key" : value, with white space before the colon
    if patterns <= keys:
        return None
    try:
        json.loads(payload, object_pairs_hook=_reject_duplicates)
    except ValueError as exc:
        return str(exc)[:100]
    return None


def _duplicate_key_problem(payload: bytes, doc: Any) -> Problem | None:
    try:
        key = duplicate_key(payload, doc)
    except RecursionError:
        # orjson parses up to 1,024 levels, Python's parser fewer: a payload nested that deep is
        # no sensor's (SenML needs two levels), so it is refused rather than checked.
        return Problem(BAD_STRUCTURE, "nested too deeply (sensor payloads need 2 levels)")
    if key is None:
        return None
    return Problem(DUPLICATE_KEY, f"key {key!r} appears twice in one object")


def is_senml(doc: list[Any]) -> bool:
    """Whether a JSON array is a SenML pack rather than a gateway's array of objects."""
    first = doc[0] if doc else None
    return isinstance(first, dict) and "ts" not in first and not SENML_KEYS.isdisjoint(first)


def decode(payload: bytes, *, max_bytes: int, max_readings: int, now_ms: int) -> Decoded:
    """Decode one message payload.

    ``now_ms`` is when the message was received (Unix ms). SenML times relative to "now" are
    resolved against it.
    """
    out = Decoded()
    if len(payload) > max_bytes:
        out.problems.append(Problem(TOO_LARGE, f"{len(payload)} bytes > limit {max_bytes}"))
        return out
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        out.problems.append(Problem(MALFORMED, f"not JSON: {exc}"[:200]))
        return out
    if (problem := _duplicate_key_problem(payload, doc)) is not None:
        out.problems.append(problem)
        return out
    if isinstance(doc, dict):
        _decode_object(doc, out, max_readings)
    elif isinstance(doc, list) and is_senml(doc):
        decode_senml(doc, out, now_ms=now_ms, max_readings=max_readings)
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
    if any(p.reason == TOO_MANY for p in out.problems):
        # Over the limit, the message is refused whole: half a gateway batch is worse than none.
        out.metrics.clear()
        out.ts_ms.clear()
        out.values.clear()
    elif not out.metrics and not out.problems:
        # A message that says nothing is a broken device, not an empty success.
        out.problems.append(Problem(BAD_STRUCTURE, "no readings in the payload"))
    return out
