"""SenML JSON packs (RFC 8428) to Pantau readings. Pure: no I/O, no clock, no logging.

A pack is a JSON array of records (RFC 8428 section 5). Each record is resolved as in section 4.6,
then becomes one reading or one problem. The accepted subset:

- **Base fields** ``bn``, ``bt``, ``bu``, ``bv``, ``bs``, ``bver`` (section 4.1) apply to their
  record and to every later record, up to the next record carrying the same base field (section 4).
  A record holding only base fields (the first record of example 5.1.7) sets context and is fine.
- **Name** ``bn + n`` (section 4.5.1) must be non-empty, use only ``A-Z a-z 0-9 - : . / _`` and
  start with a letter or a digit. The Pantau metric is the part after the *last* ``:`` or ``/``.
  So ``bn`` can be a sensor URN ending in ``:`` (``urn:dev:ow:10e2073a01080063:``) or a path
  ending in ``/`` (``bin-0042/``). The part before that names the device, which Pantau already
  knows from the MQTT topic.
- **Time** ``bt + t`` in seconds (section 4.5.3). A missing field counts as 0. From 2**28 up, the
  time is Unix time. Below that, it is relative to "now": the ``now_ms`` argument, meaning when the
  message was received. A record with neither field was therefore measured now. Times are rounded to
  whole milliseconds.
- **Value** ``bv + v`` (section 4.5.4). Only numeric values become readings. Records with ``vs``,
  ``vb`` or ``vd`` are rejected as ``wrong_type``. A record must have exactly one value field
  (section 4.2), so each of these is ``bad_structure``:
  - a record with no value field, even if ``bv`` would make the value 0 + ``bv``;
  - a record with a sum ``s`` but no ``v``. Section 4.2 allows it, but an integral over time is not
    a reading.
  Sums (``s``, ``bs``) are otherwise ignored, and so is ``ut``.
- **Unit** ``u``, else ``bu`` (section 4.5.2), is checked against the metric name through
  :data:`SENML_UNITS` (see :func:`unit_metric`). A record without a unit keeps its name.
- **Version** ``bver`` (section 4.4): every record of the pack must carry the same version. Versions
  up to 10 are accepted. So is 26, which is 10 plus the feature "Secondary Units" (RFC 9100
  section 4). ``ug/m3`` and ``cm`` are secondary units (RFC 8798), so a strictly conforming sender
  of them sends ``"bver": 26``. They are accepted without it too.
- **Extensions** (sections 4.4 and 12.3.1): unknown labels are ignored. A label ending in ``_``
  must be understood, so it rejects the whole pack.

Whole-pack problems are a bad version, a malformed base field, or a must-understand label. A
base field applies to all the records after it, so one that cannot be trusted makes each of them
suspect. These give one ``bad_structure`` problem and no readings. Every other problem concerns
one record, and the other records are still decoded.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

from ingest.decoded import Decoded, Problem
from processing.reasons import BAD_STRUCTURE, BAD_TS, BAD_UNIT, TOO_MANY, WRONG_TYPE

RELATIVE_TIME_LIMIT_S = 2**28  # section 4.5.3: smaller resolved times are relative to "now"
DEFAULT_VERSION = 10  # section 4.4
SECONDARY_UNITS_FEATURE = 1 << 4  # RFC 9100 section 4: feature code 4
I64_LIMIT = 2**63  # a ts_ms must fit the batch's int64 column; plausibility is validate's job

BASE_LABELS = frozenset({"bn", "bt", "bu", "bv", "bs", "bver"})
REGULAR_LABELS = frozenset({"n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"})
VALUE_LABELS = ("v", "vs", "vb", "vd")

# Section 4.5.1: the characters of a resolved name, and what it must start with.
_NAME = re.compile(r"[A-Za-z0-9][-:./_A-Za-z0-9]*")


class SenmlUnit(NamedTuple):
    suffix: str  # the unit's suffix in Pantau metric names
    scale: float  # Pantau value = SenML value * scale


# SenML units (RFC 8428 section 12.1; RFC 8798 secondary units) that map onto a Pantau unit.
SENML_UNITS: dict[str, SenmlUnit] = {
    "Cel": SenmlUnit("_c", 1.0),
    "V": SenmlUnit("_v", 1.0),
    "%RH": SenmlUnit("_pct", 1.0),  # a percentage (section 12.1)
    "/100": SenmlUnit("_pct", 1.0),  # percent (RFC 8798)
    # Section 12.1 note 2: "/" is a ratio, 0.5 meaning half, and "%" is the same unit, "NOT a
    # percentage but the absolute ratio". A fill of "%" 0.425 is therefore 42.5 fill_pct.
    "/": SenmlUnit("_pct", 100.0),
    "%": SenmlUnit("_pct", 100.0),
    "ug/m3": SenmlUnit("_ugm3", 1.0),  # RFC 8798
    "cm": SenmlUnit("_cm", 1.0),  # RFC 8798
    "count": SenmlUnit("", 1.0),  # section 12.1: a counter value (count_in, count_out)
}
_SUFFIXES = frozenset(unit.suffix for unit in SENML_UNITS.values())


def unit_metric(name: str, unit: str) -> str | None:
    """The Pantau metric name of SenML metric ``name`` measured in SenML ``unit``.

    ``temp`` in ``Cel`` is ``temp_c``, and ``temp_c`` in ``Cel`` stays ``temp_c``. The result is
    None when the unit is not in :data:`SENML_UNITS`. It is also None when the name already ends
    with the suffix of another unit: ``temp_c`` in ``V`` is a contradiction.
    """
    known = SENML_UNITS.get(unit)
    if known is None:
        return None
    if known.suffix and name.endswith(known.suffix):
        return name
    if any(name.endswith(suffix) for suffix in _SUFFIXES if suffix):
        return None
    return name + known.suffix


class _Base(NamedTuple):
    """The base fields in effect for a record (section 4.6)."""

    name: str = ""
    time_s: float = 0.0
    unit: str | None = None
    value: float = 0.0


class _RecordError(Exception):
    """One record is rejected. It is caught in :func:`decode_senml` and recorded as a Problem."""

    def __init__(self, reason: str, detail: str, metric: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.metric = metric


def decode_senml(records: list[Any], out: Decoded, *, now_ms: int, max_readings: int) -> None:
    """Append the readings of the SenML pack ``records`` to ``out``, in record order.

    Every rejected record adds one problem, and the other records are still decoded. A problem
    with the whole pack adds one problem and no readings. ``now_ms`` (Unix milliseconds) resolves
    relative times. Once ``out`` holds ``max_readings`` readings, the next reading is reported as
    ``too_many_readings`` (once) and decoding stops.
    """
    if not records:
        out.problems.append(Problem(BAD_STRUCTURE, "SenML pack has no records"))
        return
    pack_problem = _pack_problem(records)
    if pack_problem is not None:
        out.problems.append(Problem(BAD_STRUCTURE, pack_problem))
        return
    base = _Base()
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            detail = f"record {i} is {type(record).__name__}, not an object"
            out.problems.append(Problem(BAD_STRUCTURE, detail))
            continue
        base = _apply_base(base, record)
        if REGULAR_LABELS.isdisjoint(record) and not BASE_LABELS.isdisjoint(record):
            continue  # a record of base fields only
        try:
            metric, ts_ms, value = _reading(record, base, now_ms)
        except _RecordError as exc:
            out.problems.append(Problem(exc.reason, f"record {i}: {exc.detail}", exc.metric))
            continue
        if len(out.metrics) >= max_readings:
            out.problems.append(Problem(TOO_MANY, f"more than {max_readings} readings", metric))
            return
        out.add(metric, ts_ms, value)


def _pack_problem(records: list[Any]) -> str | None:
    """Why the whole pack must not be used, or None.

    Checks the version and must-understand labels (section 4.4), and the types of the base
    fields. A base field carries forward, so a bad one spoils every later record.
    """
    versions: set[int] = set()
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            continue
        for label, raw in record.items():
            problem = _pack_field_problem(label, raw)
            if problem is not None:
                return f"record {i}: {problem}"
        if "bver" in record:
            versions.add(record["bver"])
    if len(versions) > 1:
        return f"records carry different versions {sorted(versions)}"
    for version in versions:
        if version > DEFAULT_VERSION and version != DEFAULT_VERSION | SECONDARY_UNITS_FEATURE:
            return f"SenML version {version} is not supported (10, or 26 with secondary units)"
    return None


def _pack_field_problem(label: Any, raw: Any) -> str | None:
    """What is wrong with a field that matters beyond its own record, or None."""
    if isinstance(label, str) and label.endswith("_"):
        return f"must-understand field {label!r} is not supported"
    if label in {"bn", "bu"} and not isinstance(raw, str):
        return f"{label} is {type(raw).__name__}, not a string"
    if label in {"bt", "bv", "bs"} and _number(raw) is None:
        return f"{label} is not a finite number"
    if label == "bver" and (isinstance(raw, bool) or not isinstance(raw, int) or raw < 1):
        return f"bver {raw!r} is not a positive integer"
    return None


def _apply_base(base: _Base, record: dict[Any, Any]) -> _Base:
    """``base`` updated by the base fields of ``record`` (their types are already checked)."""
    return _Base(
        name=record.get("bn", base.name),
        time_s=float(record["bt"]) if "bt" in record else base.time_s,
        unit=record.get("bu", base.unit),
        value=float(record["bv"]) if "bv" in record else base.value,
    )


def _reading(record: dict[Any, Any], base: _Base, now_ms: int) -> tuple[str, int, float]:
    """The resolved ``(metric, ts_ms, value)`` of one record. Raises :class:`_RecordError`."""
    metric = _metric(record, base)
    raw = _value(record, metric)
    metric, scale = _unit(record, base, metric)
    ts_ms = _ts_ms(record, base, now_ms, metric)
    value = (base.value + raw) * scale
    if not math.isfinite(value):
        raise _RecordError(WRONG_TYPE, "resolved value is not finite", metric)
    return metric, ts_ms, value


def _metric(record: dict[Any, Any], base: _Base) -> str:
    """Section 4.5.1: ``bn + n``, then the part after its last ``:`` or ``/``."""
    n = record.get("n", "")
    if not isinstance(n, str):
        raise _RecordError(BAD_STRUCTURE, f"n is {type(n).__name__}, not a string")
    name = base.name + n
    if not _NAME.fullmatch(name):
        raise _RecordError(BAD_STRUCTURE, f"name {name[:80]!r} is not a valid SenML name")
    metric = name[max(name.rfind(":"), name.rfind("/")) + 1 :]
    if not metric:
        raise _RecordError(BAD_STRUCTURE, f"name {name[:80]!r} has no metric after ':' or '/'")
    return metric


def _value(record: dict[Any, Any], metric: str) -> float:
    """The record's own numeric value ``v``. Section 4.2: exactly one value field."""
    present = [label for label in VALUE_LABELS if label in record]
    if len(present) > 1:
        raise _RecordError(BAD_STRUCTURE, f"more than one value field {present}", metric)
    if not present:
        detail = "a sum (s) without a value (v)" if "s" in record else "no value field"
        raise _RecordError(BAD_STRUCTURE, detail, metric)
    if present[0] != "v":
        detail = f"{present[0]} values are not stored, only numbers (v)"
        raise _RecordError(WRONG_TYPE, detail, metric)
    raw = record["v"]
    value = _number(raw)
    if value is None:
        raise _RecordError(WRONG_TYPE, f"v is {type(raw).__name__}, not a finite number", metric)
    return value


def _unit(record: dict[Any, Any], base: _Base, metric: str) -> tuple[str, float]:
    """Section 4.5.2: the Pantau metric name and the value scale given ``u``, else ``bu``."""
    if "u" in record:
        unit = record["u"]
    elif base.unit is None:
        return metric, 1.0
    else:
        unit = base.unit
    if not isinstance(unit, str):
        raise _RecordError(BAD_UNIT, f"u is {type(unit).__name__}, not a string", metric)
    mapped = unit_metric(metric, unit)
    if mapped is None:
        why = "contradicts the name" if unit in SENML_UNITS else "is not supported"
        raise _RecordError(BAD_UNIT, f"unit {unit[:40]!r} {why}", metric)
    return mapped, SENML_UNITS[unit].scale


def _ts_ms(record: dict[Any, Any], base: _Base, now_ms: int, metric: str) -> int:
    """Section 4.5.3: ``bt + t``, absolute from 2**28 seconds on, else relative to ``now_ms``."""
    raw = record.get("t", 0.0)
    t = _number(raw)
    if t is None:
        raise _RecordError(BAD_TS, f"t is {type(raw).__name__}, not a finite number", metric)
    time_s = base.time_s + t
    if not math.isfinite(time_s * 1000):
        raise _RecordError(BAD_TS, "bt + t is out of range", metric)
    ms = round(time_s * 1000)
    ts_ms = ms if time_s >= RELATIVE_TIME_LIMIT_S else now_ms + ms
    if not -I64_LIMIT <= ts_ms < I64_LIMIT:
        raise _RecordError(BAD_TS, f"time {time_s:.6g} s is out of range", metric)
    return ts_ms


def _number(raw: Any) -> float | None:
    """``raw`` as a finite float, or None. A JSON boolean is not a number."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    try:
        value = float(raw)
    except OverflowError:  # an int beyond the float range
        return None
    return value if math.isfinite(value) else None
