"""A payload the decoder cannot handle is a recorded reject, never the end of the worker."""

from __future__ import annotations

import logging

import pytest

from ingest import pipeline as pipeline_module
from ingest.decode import decode
from ingest.pipeline import Limits, Pipeline
from ingest.snapshot import Registry, SensorEntry

DEEP = b'{"ts": 1795000000, "tilt": 1.5, "x": ' + b"[" * 1000 + b'{"a": 1}' + b"]" * 1000 + b"}"


@pytest.mark.parametrize(
    ("depth", "reason"),
    [
        (900, "wrong_type"),  # Python's parser copes: "x" is no number, "tilt" still a reading
        (990, "bad_structure"),  # deeper than Python's parser goes: refused, not raised
        (1000, "bad_structure"),
        (1010, "bad_structure"),
        (1023, "malformed_payload"),  # deeper than orjson's limit
    ],
)
def test_deeply_nested_payloads_are_refused_not_raised(depth: int, reason: str) -> None:
    payload = b'{"ts": 1, "tilt": 1, "x": ' + b"[" * depth + b'{"a": 1}' + b"]" * depth + b"}"
    problems = decode(payload, max_bytes=1 << 20, max_readings=1000, now_ms=0).problems
    assert [p.reason for p in problems] == [reason]


def test_the_reported_payload_is_bad_structure() -> None:
    problems = decode(DEEP, max_bytes=1 << 20, max_readings=1000, now_ms=0).problems
    assert [(p.reason, p.detail) for p in problems] == [
        ("bad_structure", "nested too deeply (sensor payloads need 2 levels)")
    ]


def test_a_decoder_failure_becomes_a_malformed_reject(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry()
    registry.sensors["BIN-1"] = SensorEntry(
        sensor_key=1, kind="waste_bin", kind_idx=0, installed_ms=0
    )
    pipe = Pipeline("r/v1", registry, Limits(4096, 16, 300_000))

    def broken(payload: bytes, **_: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(pipeline_module, "decode", broken)
    with caplog.at_level(logging.ERROR):
        pipe.add("r/v1/waste_bin/BIN-1", b"{}", (1, 1, 1), 0)
    assert [(r.reason, r.detail) for r in pipe.batch.rejects] == [
        ("malformed_payload", "could not be decoded (ZeroDivisionError)")
    ]
    assert len(pipe.batch.messages) == 1  # it is acknowledged with the batch, not redelivered
    assert "decoding a message on r/v1/waste_bin/BIN-1 failed" in caplog.text
