"""SenML (RFC 8428) decoding: the examples of section 5, time and value resolution, every
rejection, and a property test against a plain reference resolver (section 4.6)."""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest import decode as d
from ingest import senml as s

NOW = 1_795_828_800_000  # 2026-11-28T01:20:00Z, when the message was received
URN = "urn:dev:ow:10e2073a01080063:"


def run(pack, now_ms=NOW, max_readings=100):
    out = d.Decoded()
    s.decode_senml(pack, out, now_ms=now_ms, max_readings=max_readings)
    return out


def readings(out):
    return list(zip(out.metrics, out.ts_ms, out.values, strict=True))


def reasons(out):
    return [(p.reason, p.metric) for p in out.problems]


# --- RFC 8428 section 5 examples, with names that resolve to Pantau metrics -------------------


def test_5_1_1_single_datapoint_is_now():
    out = run([{"n": URN + "temp", "u": "Cel", "v": 23.1}])
    assert readings(out) == [("temp_c", NOW, 23.1)]
    assert out.problems == []


def test_5_1_1_as_published_names_the_device_not_the_quantity():
    # The metric is what follows the last ':', here the 1-wire address; the registry will not
    # know "10e2073a01080063_c", so the pipeline rejects it as an unknown metric.
    out = run([{"n": "urn:dev:ow:10e2073a01080063", "u": "Cel", "v": 23.1}])
    assert readings(out) == [("10e2073a01080063_c", NOW, 23.1)]


def test_5_1_2_multiple_datapoints_now():
    out = run(
        [
            {"bn": URN, "n": "battery", "u": "V", "v": 3.9},
            {"n": "temp", "u": "Cel", "v": 23.1},
        ]
    )
    assert readings(out) == [("battery_v", NOW, 3.9), ("temp_c", NOW, 23.1)]


def test_5_1_2_base_time_base_unit_and_relative_offsets():
    # Published: voltage in V, then current in the base unit A every second for 5 seconds.
    out = run(
        [
            {
                "bn": "urn:dev:ow:10e2073a0108006:",
                "bt": 1.276020076001e09,
                "bu": "Cel",
                "bver": 5,
                "n": "battery",
                "u": "V",
                "v": 3.91,
            },
            {"n": "temp", "t": -5, "v": 21.2},
            {"n": "temp", "t": -4, "v": 21.3},
            {"n": "temp", "t": -3, "v": 21.4},
            {"n": "temp", "t": -2, "v": 21.5},
            {"n": "temp", "t": -1, "v": 21.6},
            {"n": "temp", "v": 21.7},
        ]
    )
    bt_ms = 1_276_020_076_001  # Tue Jun 8 18:01:16.001 UTC 2010
    assert readings(out) == [
        ("battery_v", bt_ms, 3.91),
        ("temp_c", bt_ms - 5000, 21.2),
        ("temp_c", bt_ms - 4000, 21.3),
        ("temp_c", bt_ms - 3000, 21.4),
        ("temp_c", bt_ms - 2000, 21.5),
        ("temp_c", bt_ms - 1000, 21.6),
        ("temp_c", bt_ms, 21.7),
    ]
    assert out.problems == []


def test_5_1_2_sensml_stream_with_base_name_only():
    out = run(
        [
            {"bn": URN + "rh", "bt": 1.320067464e09, "bu": "%RH", "v": 21.2},
            {"t": 10, "v": 21.3},
            {"t": 20, "v": 21.4},
        ]
    )
    bt_ms = 1_320_067_464_000
    assert readings(out) == [
        ("rh_pct", bt_ms, 21.2),
        ("rh_pct", bt_ms + 10_000, 21.3),
        ("rh_pct", bt_ms + 20_000, 21.4),
    ]


# Section 5.1.3 with the base name ending in the quantity. The position records (units "lon" and
# "lat") and the battery level ("%EL") have no Pantau metric: they are rejected, not stored as rh.
PACK_5_1_3 = [
    {"bn": URN + "rh", "bt": 1.320067464e09, "bu": "%RH", "v": 20},
    {"u": "lon", "v": 24.30621},
    {"u": "lat", "v": 60.07965},
    {"t": 60, "v": 20.3},
    {"u": "lon", "t": 60, "v": 24.30622},
    {"u": "lat", "t": 60, "v": 60.07965},
    {"t": 120, "v": 20.7},
    {"u": "lon", "t": 120, "v": 24.30623},
    {"u": "lat", "t": 120, "v": 60.07966},
    {"u": "%EL", "t": 150, "v": 98},
    {"t": 180, "v": 21.2},
    {"u": "lon", "t": 180, "v": 24.30628},
    {"u": "lat", "t": 180, "v": 60.07967},
]

# Section 5.1.4: the same pack, resolved.
PACK_5_1_4 = [
    {"n": URN + "rh", "u": u, "t": t, "v": v}
    for u, t, v in [
        ("%RH", 1.320067464e09, 20),
        ("lon", 1.320067464e09, 24.30621),
        ("lat", 1.320067464e09, 60.07965),
        ("%RH", 1.320067524e09, 20.3),
        ("lon", 1.320067524e09, 24.30622),
        ("lat", 1.320067524e09, 60.07965),
        ("%RH", 1.320067584e09, 20.7),
        ("lon", 1.320067584e09, 24.30623),
        ("lat", 1.320067584e09, 60.07966),
        ("%EL", 1.320067614e09, 98),
        ("%RH", 1.320067644e09, 21.2),
        ("lon", 1.320067644e09, 24.30628),
        ("lat", 1.320067644e09, 60.07967),
    ]
]


def test_5_1_3_multiple_measurements():
    out = run(PACK_5_1_3)
    bt_ms = 1_320_067_464_000
    assert readings(out) == [
        ("rh_pct", bt_ms, 20.0),
        ("rh_pct", bt_ms + 60_000, 20.3),
        ("rh_pct", bt_ms + 120_000, 20.7),
        ("rh_pct", bt_ms + 180_000, 21.2),
    ]
    assert reasons(out) == [(s.BAD_UNIT, "rh")] * 9
    assert out.problems[0].detail == "record 1: unit 'lon' is not supported"


def test_5_1_4_resolved_records_decode_like_the_pack_they_resolve():
    packed, resolved = run(PACK_5_1_3), run(PACK_5_1_4)
    assert readings(resolved) == readings(packed)
    assert reasons(resolved) == reasons(packed)


def test_5_1_5_only_numeric_values_are_readings():
    out = run(
        [
            {"bn": URN, "n": "temp", "u": "Cel", "v": 23.1},
            {"n": "label", "vs": "Machine Room"},
            {"n": "open", "vb": False},
            {"n": "nfv-reader", "vd": "aGkgCg"},
        ]
    )
    assert readings(out) == [("temp_c", NOW, 23.1)]
    assert reasons(out) == [
        (d.WRONG_TYPE, "label"),
        (d.WRONG_TYPE, "open"),
        (d.WRONG_TYPE, "nfv-reader"),
    ]


def test_5_1_6_base_name_changes_base_time_carries_on():
    out = run(
        [
            {"bn": "2001:db8::2/", "bt": 1.320078429e09, "n": "temp", "u": "Cel", "v": 25.2},
            {"n": "rh", "u": "%RH", "v": 30},
            {"bn": "2001:db8::1/", "n": "temp", "u": "Cel", "v": 12.3},
            {"n": "rh", "u": "%RH", "v": 67},
        ]
    )
    ts = 1_320_078_429_000
    assert readings(out) == [
        ("temp_c", ts, 25.2),
        ("rh_pct", ts, 30.0),
        ("temp_c", ts, 12.3),
        ("rh_pct", ts, 67.0),
    ]


def test_5_1_7_record_of_base_fields_only_and_ratio_units():
    out = run(
        [
            {"bn": URN},
            {"n": "temp", "u": "Cel", "v": 23.1},
            {"n": "fill", "u": "/", "v": 0.5},
        ]
    )
    assert readings(out) == [("temp_c", NOW, 23.1), ("fill_pct", NOW, 50.0)]
    assert out.problems == []


def test_5_1_7_fractional_time_offset():
    out = run(
        [
            {"bt": 1.320078429e09, "bu": "/", "n": "fill", "v": 0.5},
            {"n": "fill", "t": 0.1, "v": 0},
        ]
    )
    assert readings(out) == [
        ("fill_pct", 1_320_078_429_000, 50.0),
        ("fill_pct", 1_320_078_429_100, 0.0),
    ]


# --- Time, value and unit resolution ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, NOW),
        ({"t": 0}, NOW),
        ({"t": -5}, NOW - 5000),
        ({"t": 2.5}, NOW + 2500),
        ({"t": -0.0004}, NOW),  # rounded to the millisecond
        ({"bt": -60, "t": -0.25}, NOW - 60_250),
        ({"bt": 1_795_828_000}, 1_795_828_000_000),
        ({"bt": 1_795_828_000, "t": 0.5}, 1_795_828_000_500),
        ({"t": 1_795_828_000.25}, 1_795_828_000_250),
        ({"bt": 2**28}, 2**28 * 1000),  # the smallest absolute time, 1978-07-04
        ({"bt": 2**28 - 1}, NOW + (2**28 - 1) * 1000),
        # Section 4.5.3 warns of this: base time + time fell below 2**28, so it is relative.
        ({"bt": 2**28, "t": -1}, NOW + (2**28 - 1) * 1000),
    ],
)
def test_time_resolution(fields, expected):
    out = run([{"n": "temp_c", "v": 1, **fields}])
    assert out.ts_ms == [expected]


def test_relative_times_use_now_ms_and_no_clock():
    pack = [{"n": "temp_c", "t": -30, "v": 1}]
    assert run(pack, now_ms=1_000_000).ts_ms == [970_000]
    assert run(pack, now_ms=2_000_000).ts_ms == [1_970_000]


def test_base_value_is_added_and_carries_forward_until_replaced():
    out = run(
        [
            {"bn": "bin-0042/", "bv": 20, "n": "temp_c", "v": 0.5},
            {"n": "temp_c", "v": -0.25},
            {"n": "fill_pct", "bv": 40, "v": 2},
            {"n": "fill_pct", "v": 0},
        ]
    )
    assert out.values == [20.5, 19.75, 42.0, 40.0]


def test_base_unit_applies_until_a_record_has_its_own_unit():
    out = run(
        [
            {"bu": "Cel", "n": "temp", "v": 21},
            {"n": "battery", "u": "V", "v": 3.9},
            {"n": "temp_c", "v": 22},
            {"n": "battery_v", "v": 3.8},  # the base unit Cel contradicts the name
        ]
    )
    assert out.metrics == ["temp_c", "battery_v", "temp_c"]
    assert reasons(out) == [(s.BAD_UNIT, "battery_v")]
    assert out.problems[0].detail == "record 3: unit 'Cel' contradicts the name"


@pytest.mark.parametrize(
    ("name", "unit", "expected"),
    [
        ("temp", "Cel", "temp_c"),
        ("temp_c", "Cel", "temp_c"),
        ("rh", "%RH", "rh_pct"),
        ("rh_pct", "%RH", "rh_pct"),
        ("fill", "%", "fill_pct"),
        ("fill", "/", "fill_pct"),
        ("fill", "/100", "fill_pct"),
        ("battery", "V", "battery_v"),
        ("pm25", "ug/m3", "pm25_ugm3"),
        ("no2_ugm3", "ug/m3", "no2_ugm3"),
        ("distance", "cm", "distance_cm"),
        ("temp_c", "V", None),  # contradicts the suffix
        ("distance_cm", "Cel", None),
        ("fill_pct", "ug/m3", None),
        ("temp", "K", None),  # a SenML unit Pantau does not store
        ("temp", "degC", None),  # not a SenML unit
    ],
)
def test_unit_metric(name, unit, expected):
    assert s.unit_metric(name, unit) == expected


@pytest.mark.parametrize(
    ("unit", "v", "expected"),
    [
        ("%", 0.425, 42.5),  # "%" is a ratio, not a percentage (RFC 8428 section 12.1, note 2)
        ("/", 1, 100.0),
        ("/100", 42.5, 42.5),  # percent (RFC 8798)
        ("%RH", 42.5, 42.5),
    ],
)
def test_ratio_units_become_percentages(unit, v, expected):
    out = run([{"n": "fill", "u": unit, "v": v}])
    assert readings(out) == [("fill_pct", NOW, expected)]


def test_unit_free_names_are_kept():
    out = run([{"n": "tilt", "v": 12}, {"n": "count_in", "v": 3}])
    assert out.metrics == ["tilt", "count_in"]


def test_metric_is_the_part_after_the_last_separator():
    out = run(
        [
            {"bn": "urn:dev:ow:10e2073a01080063:", "n": "temp_c", "v": 1},
            {"bn": "bin-0042/", "n": "fill_pct", "v": 2},
            {"bn": "site/bin-0042:", "n": "battery_v", "v": 3},
            {"bn": "", "n": "tilt", "v": 4},
            {"bn": "pm25_ugm3", "v": 5},  # a base name alone names the sensor (section 4.2)
        ]
    )
    assert out.metrics == ["temp_c", "fill_pct", "battery_v", "tilt", "pm25_ugm3"]


@pytest.mark.parametrize("version", [1, 5, 10, 26])
def test_supported_versions(version):
    out = run([{"bver": version, "n": "temp_c", "v": 1}, {"bver": version, "n": "tilt", "v": 2}])
    assert out.metrics == ["temp_c", "tilt"]


def test_unknown_fields_sums_and_update_times_are_ignored():
    out = run([{"n": "temp_c", "v": 1, "s": 99, "bs": 1, "ut": 60, "foo": "bar", "ct": 60}])
    assert readings(out) == [("temp_c", NOW, 1.0)]
    assert out.problems == []


# --- Rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "reason", "metric"),
    [
        (5, d.BAD_STRUCTURE, None),
        ("temp_c", d.BAD_STRUCTURE, None),
        ([{"n": "temp_c", "v": 1}], d.BAD_STRUCTURE, None),
        ({}, d.BAD_STRUCTURE, None),
        ({"n": "temp_c"}, d.BAD_STRUCTURE, "temp_c"),
        ({"n": "temp_c", "bv": 20}, d.BAD_STRUCTURE, "temp_c"),  # a base value is not a value
        ({"n": "temp_c", "s": 12.5}, d.BAD_STRUCTURE, "temp_c"),  # a sum without a value
        ({"n": "temp_c", "v": 1, "vs": "1"}, d.BAD_STRUCTURE, "temp_c"),  # two values
        ({"n": "temp c", "v": 1}, d.BAD_STRUCTURE, None),  # space: not a SenML name
        ({"n": "-temp_c", "v": 1}, d.BAD_STRUCTURE, None),  # must start with a letter or digit
        ({"n": "", "v": 1}, d.BAD_STRUCTURE, None),  # empty name
        ({"v": 1}, d.BAD_STRUCTURE, None),  # no name at all
        ({"bn": URN, "v": 1}, d.BAD_STRUCTURE, None),  # nothing after the last ':'
        ({"n": 7, "v": 1}, d.BAD_STRUCTURE, None),
        ({"n": "label", "vs": "Machine Room"}, d.WRONG_TYPE, "label"),
        ({"n": "open", "vb": True}, d.WRONG_TYPE, "open"),
        ({"n": "raw", "vd": "aGkgCg"}, d.WRONG_TYPE, "raw"),
        ({"n": "temp_c", "v": "23.1"}, d.WRONG_TYPE, "temp_c"),
        ({"n": "temp_c", "v": True}, d.WRONG_TYPE, "temp_c"),
        ({"n": "temp_c", "v": None}, d.WRONG_TYPE, "temp_c"),
        ({"n": "temp_c", "v": [1]}, d.WRONG_TYPE, "temp_c"),
        ({"n": "temp_c", "v": float("nan")}, d.WRONG_TYPE, "temp_c"),
        ({"n": "temp_c", "bv": 1e308, "v": 1e308}, d.WRONG_TYPE, "temp_c"),  # sum overflows
        ({"n": "temp_c", "t": "now", "v": 1}, d.BAD_TS, "temp_c"),
        ({"n": "temp_c", "t": False, "v": 1}, d.BAD_TS, "temp_c"),
        ({"n": "temp_c", "t": None, "v": 1}, d.BAD_TS, "temp_c"),
        ({"n": "temp_c", "bt": 1e308, "t": 1e308, "v": 1}, d.BAD_TS, "temp_c"),
        ({"n": "temp_c", "t": -1e300, "v": 1}, d.BAD_TS, "temp_c"),  # beyond int64 ms
        ({"n": "temp_c", "u": "V", "v": 1}, s.BAD_UNIT, "temp_c"),
        ({"n": "temp", "u": "K", "v": 300}, s.BAD_UNIT, "temp"),
        ({"n": "temp", "u": "cel", "v": 21}, s.BAD_UNIT, "temp"),  # units are case-sensitive
        ({"n": "temp", "u": 1, "v": 21}, s.BAD_UNIT, "temp"),
        ({"n": "temp", "u": None, "v": 21}, s.BAD_UNIT, "temp"),
    ],
)
def test_bad_record_is_rejected_and_the_others_kept(record, reason, metric):
    # The last record resets the base fields a bad record may have set.
    out = run([{"n": "tilt", "v": 1}, record, {"bn": "", "bt": 0, "bv": 0, "n": "tilt", "v": 2}])
    assert readings(out) == [("tilt", NOW, 1.0), ("tilt", NOW, 2.0)]
    assert reasons(out) == [(reason, metric)]
    assert out.problems[0].detail.startswith("record 1")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"bver": 11}, "version 11 is not supported"),
        ({"bver": 27}, "version 27 is not supported"),  # 26 plus an unknown feature
        ({"bver": 0}, "not a positive integer"),
        ({"bver": "10"}, "not a positive integer"),
        ({"bver": True}, "not a positive integer"),
        ({"bver": 10.5}, "not a positive integer"),
        ({"bn": 5}, "bn is int, not a string"),
        ({"bu": ["Cel"]}, "bu is list, not a string"),
        ({"bt": "2026-11-28T01:20:00Z"}, "bt is not a finite number"),
        ({"bv": None}, "bv is not a finite number"),
        ({"bs": False}, "bs is not a finite number"),
        ({"bt": float("inf")}, "bt is not a finite number"),
        ({"bt_": 0}, "must-understand field 'bt_'"),  # section 4.4: an error MUST be generated
        ({"n_": "x"}, "must-understand field 'n_'"),
    ],
)
def test_whole_pack_rejections(record, message):
    # The bad field sits in the last record: the pack is rejected before any reading is kept.
    out = run([{"n": "tilt", "v": 1}, {"n": "tilt", "v": 2, **record}])
    assert out.metrics == []
    assert reasons(out) == [(d.BAD_STRUCTURE, None)]
    assert message in out.problems[0].detail


def test_records_must_share_one_version():
    out = run([{"bver": 10, "n": "tilt", "v": 1}, {"bver": 26, "n": "tilt", "v": 2}])
    assert out.metrics == []
    assert out.problems == [d.Problem(d.BAD_STRUCTURE, "records carry different versions [10, 26]")]


def test_empty_pack():
    assert reasons(run([])) == [(d.BAD_STRUCTURE, None)]


def test_too_many_readings_is_reported_once():
    pack = [{"bn": "bin-0042/", "n": "fill_pct", "v": 1}] + [
        {"n": "fill_pct", "t": -i, "v": i} for i in range(1, 15)
    ]
    out = run(pack, max_readings=10)
    assert len(out.metrics) == 10
    assert reasons(out) == [(d.TOO_MANY, "fill_pct")]


def test_rejected_records_do_not_count_against_the_limit():
    out = run([{"n": "tilt", "vs": "x"}, {"n": "tilt", "v": 1}, {"n": "tilt", "v": 2}], 0, 2)
    assert out.values == [1.0, 2.0]
    assert reasons(out) == [(d.WRONG_TYPE, "tilt")]


# --- Wiring into decode() ---------------------------------------------------------------------

LIMITS = {"max_bytes": 4096, "max_readings": 10, "now_ms": NOW}


def test_decode_recognises_a_senml_pack():
    payload = orjson.dumps(
        [
            {"bn": URN, "bt": 1_795_828_740, "bu": "Cel", "n": "temp", "v": 29.5},
            {"n": "temp", "t": 60, "v": 30},
        ]
    )
    out = d.decode(payload, **LIMITS)
    assert readings(out) == [("temp_c", NOW - 60_000, 29.5), ("temp_c", NOW, 30.0)]


def test_decode_senml_relative_time_is_the_receive_time():
    out = d.decode(b'[{"n": "fill_pct", "v": 42.5, "t": -120}]', **LIMITS)
    assert readings(out) == [("fill_pct", NOW - 120_000, 42.5)]


def test_decode_senml_pack_starting_with_base_fields_only():
    out = d.decode(b'[{"bn": "bin-0042/", "bver": 10}, {"n": "fill_pct", "v": 40}]', **LIMITS)
    assert readings(out) == [("fill_pct", NOW, 40.0)]


@pytest.mark.parametrize(
    ("payload", "metrics", "problems"),
    [
        # A gateway array: "ts" wins even if a metric is called "n" or "v".
        (b'[{"ts": 1795828800, "n": 1, "v": 2}]', ["n", "v"], []),
        (b'[{"fill_pct": 1}]', [], [d.MISSING_TS]),
        # Only the first element decides.
        (b'[{"ts": 1795828800, "tilt": 1}, {"n": "tilt", "v": 2}]', ["tilt"], [d.MISSING_TS]),
        (b'[5, {"n": "tilt", "v": 2}]', [], [d.BAD_STRUCTURE, d.MISSING_TS]),
        (b"[]", [], [d.BAD_STRUCTURE]),
    ],
)
def test_decode_keeps_gateway_arrays(payload, metrics, problems):
    out = d.decode(payload, **LIMITS)
    assert out.metrics == metrics
    assert [p.reason for p in out.problems] == problems


# --- Property: decode_senml agrees with a plain resolver (RFC 8428 section 4.6) ---------------

# (SenML name, unit, Pantau metric), spelled out independently of SENML_UNITS.
NAMES = [
    ("temp", "Cel", "temp_c"),
    ("temp_c", "Cel", "temp_c"),
    ("temp_c", None, "temp_c"),
    ("rh", "%RH", "rh_pct"),
    ("fill", "/100", "fill_pct"),
    ("fill_pct", None, "fill_pct"),
    ("pm25", "ug/m3", "pm25_ugm3"),
    ("battery", "V", "battery_v"),
    ("distance_cm", "cm", "distance_cm"),
    ("tilt", None, "tilt"),
]
PANTAU = {(name, unit): metric for name, unit, metric in NAMES}

seconds = st.one_of(
    st.floats(2**28, 4e9),  # absolute
    st.floats(-1e6, 1e6),  # relative
    st.integers(-(10**6), 4 * 10**9),
)


def _record(fields):
    name, unit, _ = fields.pop("name")
    record = {"n": name, **fields}
    if unit is not None:
        record["u"] = unit
    return record


records = st.fixed_dictionaries(
    {"name": st.sampled_from(NAMES), "v": st.floats(-1e9, 1e9)},
    optional={
        "bn": st.sampled_from(["", URN, "bin-0042/", "2001:db8::2/", "site/bin-7:"]),
        "bt": seconds,
        "bv": st.floats(-1e6, 1e6),
        "t": st.one_of(st.floats(-1e6, 1e6), st.integers(-(10**6), 10**6)),
    },
).map(_record)


def reference(pack, now_ms, max_readings):
    """Resolve each record (section 4.6) the plain way: the readings, and the problems."""
    base_name, base_time, base_value = "", 0, 0
    resolved = []
    for record in pack:
        base_name = record.get("bn", base_name)
        base_time = record.get("bt", base_time)
        base_value = record.get("bv", base_value)
        stem = re.split("[:/]", base_name + record["n"])[-1]
        metric = PANTAU[stem, record.get("u")]
        time_s = base_time + record.get("t", 0)
        relative = time_s < 2**28
        ts_ms = round(time_s * 1000) + (now_ms if relative else 0)
        if len(resolved) == max_readings:
            return resolved, [(d.TOO_MANY, metric)]
        resolved.append((metric, ts_ms, base_value + record["v"]))
    return resolved, []


@given(
    st.lists(records, min_size=1, max_size=15),
    st.integers(0, 4 * 10**12),
    st.integers(0, 16),
)
def test_decode_senml_matches_reference(pack, now_ms, max_readings):
    expected, problems = reference(pack, now_ms, max_readings)
    out = run(pack, now_ms=now_ms, max_readings=max_readings)
    assert readings(out) == expected
    assert reasons(out) == problems
