"""Telemetry topic parsing."""

from __future__ import annotations

import pytest

from pantau.topics import TelemetryTopic, parse_topic, telemetry_filter, telemetry_topic


def test_round_trip():
    topic = telemetry_topic("pantau/v1", "waste_bin", "WB-W-DMS-01-001")
    assert parse_topic("pantau/v1", topic) == TelemetryTopic("waste_bin", "WB-W-DMS-01-001")


@pytest.mark.parametrize(
    "topic",
    [
        "pantau/v1/waste_bin",
        "pantau/v1/waste_bin/",
        "pantau/v1/lamp/X1",
        "pantau/v1/waste_bin/X1/status",
        "other/v1/waste_bin/X1",
        "pantau/v1x/waste_bin/X1",
    ],
)
def test_not_telemetry(topic):
    assert parse_topic("pantau/v1", topic) is None


def test_filters():
    assert telemetry_filter("pantau/v1") == "pantau/v1/+/+"
    assert telemetry_filter("pantau/v1", "g") == "$share/g/pantau/v1/+/+"
