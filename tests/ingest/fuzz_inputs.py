"""Hypothesis strategies for the ingest fuzz test (test_fuzz.py): MQTT topics and payloads.

Payloads are written as JSON *text*, token by token, so that they can hold what no JSON library
writes: NaN, 1e400, duplicate keys, deep nesting, numbers and timestamps of every spelling, the
SenML labels of RFC 8428 in every combination. Every topic drawn is publishable (MQTT 5 section
4.7: no wildcard, no NUL, at most 65,535 bytes of UTF-8; Mosquitto also refuses control
characters and non-characters); whether the ingest worker receives it depends on the topic only.

Times are drawn relative to ``now_ms`` (when the strategies are built): valid ones at least an
hour in the past, future ones at least an hour ahead, so that no reading sits on the border of
the worker's future tolerance, whose outcome would depend on when the message arrives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache

from hypothesis import strategies as st

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time decode accepts
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KINDS = ("waste_bin", "air_quality", "footfall")

# What devices send (DESIGN.md section 4) and the catalog's ranges (0001_schema.sql), used only
# to aim the draws: the test's reference reads the catalog from the database.
RANGES = {
    "fill_pct": (-5.0, 150.0),
    "distance_cm": (0.0, 500.0),
    "battery_v": (0.0, 15.0),
    "temp_c": (-20.0, 120.0),
    "tilt": (0.0, 180.0),
    "pm25_ugm3": (0.0, 2000.0),
    "pm10_ugm3": (0.0, 3000.0),
    "no2_ugm3": (0.0, 10000.0),
    "so2_ugm3": (0.0, 10000.0),
    "o3_ugm3": (0.0, 5000.0),
    "co_ugm3": (0.0, 200000.0),
    "rh_pct": (0.0, 100.0),
    "count_in": (0.0, 100000.0),
    "count_out": (0.0, 100000.0),
}
KIND_METRICS = {
    "waste_bin": ("fill_pct", "distance_cm", "battery_v", "temp_c", "tilt"),
    "air_quality": (
        "pm25_ugm3", "pm10_ugm3", "no2_ugm3", "so2_ugm3", "o3_ugm3", "co_ugm3", "temp_c", "rh_pct",
    ),
    "footfall": ("count_in", "count_out"),
}  # fmt: skip
# SenML names and units that resolve to a Pantau metric (ingest/senml.py), and some that do not.
SENML_NAMES = {
    "waste_bin": ("fill", "fill_pct", "distance", "distance_cm", "battery", "battery_v", "temp",
                  "temp_c", "tilt"),
    "air_quality": ("pm25", "pm25_ugm3", "pm10", "no2", "so2", "o3", "co", "temp", "rh", "rh_pct"),
    "footfall": ("count_in", "count_out"),
}  # fmt: skip
SENML_UNITS = ("Cel", "V", "%RH", "/100", "/", "%", "ug/m3", "cm", "count", "m", "degC", "", "K")
SENML_BASE_NAMES = ("", "urn:dev:ow:10e2073a01080063:", "bin-0042/", "dev:", "a/b:", "x", ":", "/")

# Characters of one topic level: what a broker relays, minus the level separator and wildcards.
LEVEL_CHARS = st.characters(exclude_categories=("Cs", "Cc", "Cn"), exclude_characters="+#/")
level_text = st.text(LEVEL_CHARS, max_size=12)
# Long levels are made of one repeated character, so that Hypothesis's buffer stays small.
# At most 20,000 bytes each: three of them still fit a topic.
long_level = st.builds(lambda c, n: c * n, st.sampled_from("xé漢😀"), st.integers(65, 5_000))
MAX_TOPIC_BYTES = 65_535


CHANCE = st.integers(0, 9)  # draw(CHANCE) < n: a chance of n in 10


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes


@dataclass(frozen=True)
class Limits:
    now_ms: int
    installed_ms: tuple[int, ...]
    max_payload_bytes: int
    max_readings: int


# -- numbers and times -----------------------------------------------------------------------

BAD_NUMBERS = (
    "NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "-0.0", "0e0",
    "123456789012345678901234567890", "-9223372036854775809", "18446744073709551616", "1E2",
    "01", "1.", ".5", "+1", "0x10", "1_000", "\u0661",
)  # fmt: skip
NOT_NUMBERS = (
    "true", "false", "null", "[]", "{}", '"50"', '""', "[1, 2]", '{"v": 1}', '{"a": {"b": 1}}',
    '"\\":"', '"\\u0000"', '"\\ud800"', '"caf\\u00e9"',
)  # fmt: skip


def number_text(x: float) -> str:
    """A finite float as JSON text (``repr`` is JSON for finite floats)."""
    return repr(x) if x != int(x) or abs(x) >= 1e16 else str(int(x))


@cache
def nested() -> st.SearchStrategy[str]:
    """Arrays in arrays around a value, sometimes as deep as the parsers' limits: CPython's
    recursion limit (1000 frames, which its json module counts) and orjson's (1024 levels)."""
    depth = st.integers(0, 40) | st.integers(960, 1030) | st.sampled_from([999, 1000, 1023, 1024])
    inner = st.sampled_from(["", "1", '"x"', '{"a": 1}'])
    return st.builds(lambda d, v: "[" * d + v + "]" * d, depth, inner)


@cache
def values_for(metric: str | None) -> st.SearchStrategy[str]:
    """JSON text of a value for ``metric``: mostly in its range, then anything."""
    lo, hi = RANGES.get(metric or "", (-1e6, 1e6))
    return st.one_of(
        st.floats(lo, hi).map(number_text),
        st.floats(lo, hi).map(number_text),
        st.integers(int(lo), int(hi)).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(number_text),
        st.integers().map(str),
        st.sampled_from(BAD_NUMBERS),
        st.sampled_from(NOT_NUMBERS),
        st.text(max_size=6).map(json.dumps),
        nested(),
    )


@cache
def instants(limits: Limits) -> st.SearchStrategy[int]:
    """Unix milliseconds: mostly valid for every sensor, then every border and beyond."""
    now, latest_install = limits.now_ms, max(limits.installed_ms)
    borders = [0, -1, -1000, MAX_TS_MS, MAX_TS_MS + 1, 99_999_999_999, 100_000_000_000]
    for installed in limits.installed_ms:
        borders += [installed - 1, installed, installed + 1]
    recent = now - 30 * DAY_MS
    return st.one_of(
        st.integers(latest_install, now - HOUR_MS),
        # A coarse grid, so that messages repeat keys (sensor, metric, ts): duplicates are normal.
        st.integers(0, 40).map(lambda i: recent + i * 60_000),
        st.integers(0, 40).map(lambda i: recent + i * 60_000),
        st.integers(min(limits.installed_ms), now - HOUR_MS),
        st.sampled_from(borders),
        st.integers(now + HOUR_MS, now + 100 * 365 * DAY_MS),
        st.integers(now + HOUR_MS, MAX_TS_MS + DAY_MS),
        st.integers(-62_135_596_800_000, min(limits.installed_ms)),
    )


def iso(ms: int, offset_min: int | None, sep: str = "T") -> str | None:
    """ISO 8601 text of ``ms`` with a UTC offset (None: no offset), or None beyond year 1..9999."""
    tz = timezone(timedelta(minutes=offset_min or 0))
    try:
        local = (EPOCH + timedelta(milliseconds=ms)).astimezone(tz)
    except OverflowError:
        return None
    text = local.isoformat(sep=sep, timespec="milliseconds")
    if offset_min is None:
        return text[:-6]
    return text[:-6] + "Z" if offset_min == 0 and text.endswith("+00:00") else text


GARBAGE_TIMES = (
    "yesterday", "", "now", "2026-13-45T00:00:00Z", "2026-11-28T25:00:00+07:00", "2026-11-28",
    "T12:00:00Z", "2026-11-28T09:00:00+24:00", "0001-01-01T00:00Z", "2026-W48-6T09:00Z",
)  # fmt: skip


@cache
def ts_texts(limits: Limits) -> st.SearchStrategy[str]:
    """JSON text of a ``ts`` field: every form of the contract, and what devices get wrong."""
    ms = instants(limits)
    offsets = st.sampled_from([0, 0, 420, -210, 840, -720, 1439])
    seps = st.sampled_from(["T", " "])
    aware = st.builds(iso, ms, offsets, seps)
    return st.one_of(
        ms.map(lambda t: str(t // 1000)),  # epoch seconds
        ms.map(lambda t: number_text(t / 1000)),  # epoch seconds with milliseconds
        ms.map(str),  # epoch milliseconds
        aware.filter(bool).map(json.dumps),
        aware.filter(bool).map(json.dumps),
        # No offset: a device clock of unknown zone.
        st.builds(iso, ms, st.none()).filter(bool).map(json.dumps),
        ms.map(lambda t: json.dumps(str(t // 1000))),  # a number in a string
        st.floats(allow_nan=False, allow_infinity=False).map(number_text),
        st.sampled_from(BAD_NUMBERS + NOT_NUMBERS),
        (st.sampled_from(GARBAGE_TIMES) | st.text(max_size=30)).map(json.dumps),
        nested(),
    )


# -- JSON objects and gateway arrays ---------------------------------------------------------


@st.composite
def entries(draw: st.DrawFn, kind: str) -> tuple[str, str]:
    """One ``"key": value`` pair as (key text, value text)."""
    key = draw(keys(kind))
    ascii_only = draw(st.booleans())
    return json.dumps(key, ensure_ascii=ascii_only), draw(values_for(key))


@cache
def keys(kind: str) -> st.SearchStrategy[str]:
    own = st.sampled_from(KIND_METRICS[kind])
    return st.one_of(
        own,
        own,
        own,
        st.sampled_from(sorted(RANGES)),
        st.sampled_from(["ts", "Fill_pct", "fill_pct ", "fill", "v", "bn", "\u0000", "é"]),
        st.text(max_size=10),
    )


SEPARATORS = ((", ", ": "), (",", ":"), (" , ", " : "), ("\n,", "\t:\r\n"))


@st.composite
def objects(draw: st.DrawFn, kind: str, limits: Limits) -> str:
    """A JSON object of metrics, usually with a ``ts`` somewhere among them."""
    # Mostly distinct keys: a repeated key rejects the whole object (duplicate_key).
    distinct = draw(CHANCE) < 8
    pairs = draw(
        st.lists(entries(kind), max_size=6, unique_by=(lambda e: e[0]) if distinct else None)
    )
    if draw(st.integers(0, 5)):
        at = draw(st.integers(0, len(pairs)))
        pairs.insert(at, ('"ts"', draw(ts_texts(limits))))
    comma, colon = draw(st.sampled_from(SEPARATORS))
    return "{" + comma.join(k + colon + v for k, v in pairs) + "}"


@st.composite
def gateway_arrays(draw: st.DrawFn, kind: str, limits: Limits) -> str:
    items = draw(
        st.lists(
            objects(kind, limits) | st.sampled_from(["1", "null", "[]", '"x"', "{}"]),
            max_size=5,
        )
    )
    return "[" + ", ".join(items) + "]"


@st.composite
def too_many(draw: st.DrawFn, kind: str, limits: Limits) -> str:
    """More readings than a message may hold: in one object, or across a gateway array."""
    extra = draw(st.integers(-1, 3))
    n = limits.max_readings + extra
    ts = limits.now_ms // 1000 - 2 * 3600 - draw(st.integers(0, 10_000))
    metric = KIND_METRICS[kind][0]
    if draw(st.booleans()):
        fields = ", ".join(f'"k{i}": {i}' for i in range(n))
        return f'{{"ts": {ts}, {fields}}}'
    items = ", ".join(f'{{"ts": {ts - i}, "{metric}": 1}}' for i in range(n))
    return f"[{items}]"


# -- SenML packs (RFC 8428) ------------------------------------------------------------------


@cache
def senml_times(limits: Limits) -> st.SearchStrategy[str]:
    """``bt`` / ``t`` values: absolute (from 2**28 s), relative to the receipt, or broken.

    Relative times keep clear of the future tolerance (300 s) and of the installation dates, so
    that the outcome does not depend on the exact instant the worker received the message.
    """
    relative = st.one_of(
        st.sampled_from([0, -1, -0.5, -60, -3600, -86400, 1000, 86400, 1e6]),
        st.floats(-1e7, -1e-3),
        st.floats(1e3, 1e8),
    )
    broken = ["1e300", "-1e300", str(2**28 - 0.001), str(2**28), str(-(2**28)), "9.3e15",
              "-9.3e15", "1e19", '"0"', "true", "null", "NaN", "1e400", "[]"]  # fmt: skip
    return st.one_of(
        instants(limits).map(lambda ms: number_text(ms / 1000)),
        instants(limits).map(lambda ms: str(ms // 1000)),
        relative.map(number_text),
        st.sampled_from(broken),
    )


NOT_STRINGS = st.sampled_from(["1", "true", "null", "[]", '{"a": 1}'])
UNITS = st.sampled_from(SENML_UNITS).map(json.dumps) | NOT_STRINGS
BASE_NAMES = st.sampled_from(SENML_BASE_NAMES).map(json.dumps) | NOT_STRINGS
VERSIONS = st.sampled_from(["10", "26", "5", "99", "0", "-1", '"10"', "true"])
BASE_VALUES = st.sampled_from(["0", "1.5", "-3", '"x"', "1e308"])
OTHER_VALUES = st.sampled_from(['"on"', "true", "1", '"AAE="'])


@cache
def senml_names(kind: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(SENML_NAMES[kind]),
        st.sampled_from(SENML_NAMES[kind]),
        st.sampled_from(SENML_NAMES["air_quality"]),
        st.text(max_size=8),
    )


def senml_metric(name: str) -> str | None:
    """The Pantau metric a SenML name most likely stands for, to aim its value at the range."""
    return next((m for m in sorted(RANGES) if m.startswith(name)), None) if name else None


@st.composite
def senml_records(draw: st.DrawFn, kind: str, limits: Limits, first: bool) -> str:
    """One SenML record; the first of a pack usually carries base fields."""
    fields: list[tuple[str, str]] = []

    def maybe(label: str, value: st.SearchStrategy[str], chance: int) -> None:
        if draw(CHANCE) < chance:
            fields.append((label, draw(value)))

    if first:
        maybe("bn", BASE_NAMES, 7)
        maybe("bt", senml_times(limits), 6)
        maybe("bu", UNITS, 3)
        maybe("bver", VERSIONS, 2)
        maybe("bv", BASE_VALUES, 1)
    name = draw(senml_names(kind))
    maybe("n", st.just(json.dumps(name)) | NOT_STRINGS, 9)
    maybe("v", values_for(senml_metric(name)), 8)
    maybe("u", UNITS, 4)
    maybe("t", senml_times(limits), 4)
    for label in ("vs", "vb", "vd", "s", "ut", "foo", "x_", "ts"):
        maybe(label, OTHER_VALUES, 1)
    shuffled = draw(st.permutations(fields))
    return "{" + ", ".join(f'"{label}": {value}' for label, value in shuffled) + "}"


@st.composite
def senml_packs(draw: st.DrawFn, kind: str, limits: Limits) -> str:
    n = draw(st.integers(1, 6))
    records = [draw(senml_records(kind, limits, first=i == 0)) for i in range(n)]
    if draw(st.integers(0, 9)) == 0:
        records.insert(draw(st.integers(0, n)), draw(st.sampled_from(["1", "[]", "null"])))
    return "[" + ", ".join(records) + "]"


# -- payloads and topics ---------------------------------------------------------------------


@st.composite
def sized(draw: st.DrawFn, kind: str, limits: Limits) -> bytes:
    """A JSON object padded with white space to around the payload limit, or far beyond it."""
    body = draw(objects(kind, limits)).encode()
    limit = limits.max_payload_bytes
    target = draw(
        st.sampled_from([limit - 1, limit, limit + 1])
        | st.integers(limit - 64, limit + 64)
        | st.integers(limit, 4 * limit)
    )
    return body[:-1] + b" " * max(0, target - len(body)) + body[-1:]


@st.composite
def mangled(draw: st.DrawFn, kind: str, limits: Limits) -> bytes:
    """A JSON object cut short, or with raw bytes (invalid UTF-8, NUL) spliced in."""
    body = draw(objects(kind, limits)).encode()
    at = draw(st.integers(0, len(body)))
    if draw(st.booleans()):
        return body[:at]
    return body[:at] + draw(st.binary(min_size=1, max_size=4)) + body[at:]


# -- well-formed payloads, so that valid readings are common ----------------------------------


@cache
def good_instants(limits: Limits) -> st.SearchStrategy[int]:
    """Unix milliseconds valid for every sensor: after the last installation, an hour ago or
    earlier; a quarter of them on a coarse grid, so that keys repeat across messages."""
    now, latest_install = limits.now_ms, max(limits.installed_ms)
    recent = now - 30 * DAY_MS
    return st.one_of(
        st.integers(latest_install, now - HOUR_MS),
        st.integers(recent, now - HOUR_MS),
        st.integers(recent, now - HOUR_MS),
        st.integers(0, 40).map(lambda i: recent + i * 60_000),
    )


@cache
def good_ts_texts(limits: Limits) -> st.SearchStrategy[str]:
    ms = good_instants(limits)
    offsets = st.sampled_from([0, 420, -210])
    return st.one_of(
        ms.map(lambda t: str(t // 1000)),
        ms.map(lambda t: number_text(t / 1000)),
        ms.map(str),
        st.builds(iso, ms, offsets).map(json.dumps),
    )


@cache
def good_values(metric: str) -> st.SearchStrategy[str]:
    lo, hi = RANGES[metric]
    return st.floats(lo, hi).map(number_text) | st.integers(int(lo), int(hi)).map(str)


@st.composite
def good_objects(draw: st.DrawFn, kind: str, limits: Limits) -> str:
    """A valid JSON object of some of the kind's metrics; now and then one bad entry in it."""
    metrics = draw(st.lists(st.sampled_from(KIND_METRICS[kind]), min_size=1, unique=True))
    pairs = [(json.dumps(m), draw(good_values(m))) for m in metrics]
    if draw(CHANCE) < 2:
        pairs.append(draw(entries(kind)))
    # A fifth of them at any time in any form: the future, before the installation, borders.
    ts = ts_texts(limits) if draw(CHANCE) < 2 else good_ts_texts(limits)
    pairs.insert(draw(st.integers(0, len(pairs))), ('"ts"', draw(ts)))
    return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"


@st.composite
def good_senml(draw: st.DrawFn, kind: str, limits: Limits) -> str:
    """A valid SenML pack of the kind's metrics: absolute times from a base time, or, without
    one, times relative to the receipt (RFC 8428 section 4.5.3)."""
    records = []
    # Half the packs have no base time: their times count from the receipt.
    base = None if draw(st.booleans()) else draw(good_instants(limits) | instants(limits))
    prefix = draw(st.sampled_from(["", "dev:", "urn:dev:ow:10e2073a01080063:", "bin-0042/"]))
    head: list[str] = [f'"bn": {json.dumps(prefix)}'] if prefix else []
    if base is not None:
        head.append(f'"bt": {number_text(base / 1000)}')
    for i, metric in enumerate(draw(st.lists(st.sampled_from(KIND_METRICS[kind]), min_size=1))):
        fields = [*head] if i == 0 else []
        fields += [f'"n": {json.dumps(metric)}', f'"v": {draw(good_values(metric))}']
        if draw(st.booleans()):
            t = draw(st.integers(-86_400, 0) | st.sampled_from([0, -1, -60]))
            fields.append(f'"t": {t}')
        records.append("{" + ", ".join(fields) + "}")
    return "[" + ", ".join(records) + "]"


@st.composite
def deep_objects(draw: st.DrawFn, kind: str, limits: Limits) -> str:
    """A valid object with one more entry, nested deep."""
    body = draw(good_objects(kind, limits))
    return body[:-1] + f', "deep": {draw(nested())}' + "}"


@cache
def payloads(kind: str, limits: Limits) -> st.SearchStrategy[bytes]:
    good = st.one_of(
        good_objects(kind, limits),
        good_objects(kind, limits),
        st.lists(good_objects(kind, limits), min_size=1, max_size=4).map(
            lambda items: "[" + ", ".join(items) + "]"
        ),
        good_senml(kind, limits),
        good_senml(kind, limits),
    )
    text = st.one_of(
        objects(kind, limits),
        objects(kind, limits),
        objects(kind, limits),
        gateway_arrays(kind, limits),
        senml_packs(kind, limits),
        senml_packs(kind, limits),
        too_many(kind, limits),
        st.sampled_from(["[]", "{}", "42", '"x"', "null", "", "[[]]", "[{}]", " ", "\ufeff{}"]),
    )
    return st.one_of(
        good.map(str.encode),
        good.map(str.encode),
        good.map(str.encode),
        text.map(str.encode),
        text.map(str.encode),
        text.map(str.encode),
        deep_objects(kind, limits).map(str.encode),
        sized(kind, limits),
        mangled(kind, limits),
        st.binary(max_size=64),
    )


LEVELS = level_text | long_level
ODD_KINDS = level_text | st.sampled_from(["Waste_bin", "waste_bin ", "status", "footfall2"])


@cache
def odd_topics(root: str, kind: str, sensor: str) -> st.SearchStrategy[str]:
    """Topics for a sensor that are not its telemetry topic, delivered to the worker or not."""
    longest = MAX_TOPIC_BYTES - len(f"{root}/{kind}/".encode())
    return st.one_of(
        st.sampled_from([f"{root}/{k}/{sensor}" for k in KINDS if k != kind]),  # the wrong kind
        LEVELS.map(lambda s: f"{root}/{kind}/{s}"),  # an unknown sensor
        st.just(f"{root}/{kind}/{sensor.lower()}"),
        ODD_KINDS.map(lambda k: f"{root}/{k}/{sensor}"),
        st.sampled_from(
            [f"{root}//", f"{root}/{kind}/", f"{root}//{sensor}", f"{root}/ /{sensor}"]
        ),
        # The longest topic MQTT allows (an unknown sensor), and one byte short of it.
        st.sampled_from([longest, longest - 1]).map(lambda n: f"{root}/{kind}/" + "x" * n),
        # Not telemetry topics: the worker never receives these.
        st.lists(LEVELS, min_size=1, max_size=3).map(
            lambda ex: "/".join([root, kind, sensor, *ex])
        ),
        st.sampled_from([root, f"{root}/", f"{root}/{kind}", f"{root}/{kind}/{sensor}/"]),
        LEVELS.filter(lambda s: not s.startswith("$")).map(lambda s: f"{s}/v1/{kind}/{sensor}"),
    )


@st.composite
def messages(
    draw: st.DrawFn, root: str, sensors: tuple[tuple[str, str], ...], limits: Limits
) -> Message:
    """One message to one of ``sensors`` (id, kind): mostly on its telemetry topic under
    ``root``, else on one near it; the payload is aimed at the sensor's kind either way."""
    sensor, kind = draw(st.sampled_from(sensors))
    telemetry = draw(CHANCE) < 6
    topic = f"{root}/{kind}/{sensor}" if telemetry else draw(odd_topics(root, kind, sensor))
    return Message(topic, draw(payloads(kind, limits)))
