"""The pipeline without services: a payload the decoder cannot handle is a recorded reject, never
the end of the worker; a sensor missing from the registry snapshot is held for the caller."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from ingest import pipeline as pipeline_module
from ingest.decode import decode
from ingest.pipeline import Limits, Pipeline
from ingest.snapshot import EMPTY, RegistrySnapshot, SensorEntry


def with_bin(sensor_id: str) -> RegistrySnapshot:
    """A snapshot with one waste bin (and no metrics: enough to reach decoding)."""
    entry = SensorEntry(sensor_key=1, kind="waste_bin", kind_idx=0, installed_ms=0)
    return dataclasses.replace(EMPTY, sensors={sensor_id: entry}, kinds=("waste_bin",))


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
    pipe = Pipeline("r/v1", Limits(4096, 16, 300_000), with_bin("BIN-1"))

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


def test_an_unknown_sensor_is_held_for_the_caller_or_rejected() -> None:
    pipe = Pipeline("r/v1", Limits(4096, 16, 300_000), with_bin("BIN-1"))
    topic = "r/v1/waste_bin/BIN-2"
    # Held: nothing joins the batch, so the caller can load a newer snapshot first.
    assert not pipe.add(topic, b"{}", (1, 1, 1), 0, hold_unknown=True)
    assert len(pipe.batch.messages) == 0
    assert pipe.add(topic, b"{}", (1, 1, 1), 0)
    assert [r.reason for r in pipe.batch.rejects] == ["unknown_sensor"]
    # With a snapshot that has it, the same message is not held and not rejected as unknown.
    pipe.snapshot = with_bin("BIN-2")
    assert pipe.add(topic, b"{}", (1, 2, 1), 0, hold_unknown=True)
    assert len(pipe.batch.messages) == 2
    assert [r.reason for r in pipe.batch.rejects].count("unknown_sensor") == 1
    # A topic outside the layout is rejected at once, never held.
    assert pipe.add("elsewhere/x", b"{}", (1, 3, 1), 0, hold_unknown=True)
    assert pipe.batch.rejects[-1].reason == "bad_topic"
