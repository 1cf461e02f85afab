"""Payload decoding: JSON objects and gateway arrays, timestamps, and every rejection reason."""

from __future__ import annotations

import pytest

from ingest import decode as d

TS_MS = 1_795_828_800_000  # 2026-11-28T01:20:00Z
LIMITS = {"max_bytes": 4096, "max_readings": 10, "now_ms": TS_MS}


def test_object_with_iso_timestamp():
    out = d.decode(
        b'{"ts": "2026-11-28T08:20:00+07:00", "fill_pct": 42.5, "battery_v": 4}', **LIMITS
    )
    assert out.metrics == ["fill_pct", "battery_v"]
    assert out.ts_ms == [TS_MS, TS_MS]
    assert out.values == [42.5, 4.0]
    assert out.problems == []


def test_gateway_array_keeps_each_objects_time():
    out = d.decode(
        b'[{"ts": 1795828800, "count_in": 3}, {"ts": 1795828860, "count_in": 5, "count_out": 1}]',
        **LIMITS,
    )
    assert out.metrics == ["count_in", "count_in", "count_out"]
    assert out.ts_ms == [TS_MS, TS_MS + 60_000, TS_MS + 60_000]
    assert out.values == [3.0, 5.0, 1.0]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", d.MALFORMED),
        (b"\xff\xfe\x00", d.MALFORMED),
        (b'{"ts": 1, "x": NaN}', d.MALFORMED),
        (b"[]", d.BAD_STRUCTURE),
        (b"42", d.BAD_STRUCTURE),
        (b'"text"', d.BAD_STRUCTURE),
        (b'{"fill_pct": 1}', d.MISSING_TS),
        (b'{"ts": "noon", "fill_pct": 1}', d.BAD_TS),
        (b"x" * 5000, d.TOO_LARGE),
    ],
)
def test_message_level_rejections(payload, reason):
    out = d.decode(payload, **LIMITS)
    assert out.metrics == []
    assert [p.reason for p in out.problems] == [reason]


def test_reading_level_rejections_keep_the_valid_readings():
    out = d.decode(
        b'{"ts": 1795828800, "fill_pct": "full", "tilt": true, "temp_c": [1], "battery_v": 3.9}',
        **LIMITS,
    )
    assert out.metrics == ["battery_v"]
    assert [(p.reason, p.metric) for p in out.problems] == [
        (d.WRONG_TYPE, "fill_pct"),
        (d.WRONG_TYPE, "tilt"),
        (d.WRONG_TYPE, "temp_c"),
    ]


def test_too_many_readings_is_reported_once():
    body = ", ".join(f'"m{i}": {i}' for i in range(15))
    out = d.decode(("{" + '"ts": 1795828800, ' + body + "}").encode(), **LIMITS)
    assert out.metrics == []  # the message is refused whole
    assert [p.reason for p in out.problems] == [d.TOO_MANY]


def test_array_items_that_are_not_objects():
    out = d.decode(b'[{"ts": 1795828800, "tilt": 1}, 5, "x"]', **LIMITS)
    assert out.metrics == ["tilt"]
    assert [p.reason for p in out.problems] == [d.BAD_STRUCTURE, d.BAD_STRUCTURE]


@pytest.mark.parametrize(
    "payload",
    [
        b'{"ts": 1795828800, "fill_pct": 1, "fill_pct": 2}',
        b'{"ts": 1795828800, "fill_pct" : 1, "fill_pct"\n: 2}',
        b'[{"ts": 1795828800, "tilt": 1}, {"ts": 1, "ts": 2, "tilt": 1}]',
    ],
)
def test_duplicate_keys_are_rejected_not_guessed(payload):
    out = d.decode(payload, **LIMITS)
    assert out.metrics == []
    assert [p.reason for p in out.problems] == [d.DUPLICATE_KEY]


def test_colons_inside_strings_are_not_duplicate_keys():
    out = d.decode(b'{"ts": "2026-11-28T08:20:00+07:00", "note\\":": 1, "tilt": 2}', **LIMITS)
    assert out.metrics == ['note":', "tilt"]
    assert out.problems == []


@pytest.mark.parametrize("payload", [b'{"ts": 1795828800}', b'[{"ts": 1795828800}, {"ts": 1}]'])
def test_a_message_without_readings_is_rejected(payload):
    out = d.decode(payload, **LIMITS)
    assert [p.reason for p in out.problems] == [d.BAD_STRUCTURE]
    assert out.problems[0].detail == "no readings in the payload"
