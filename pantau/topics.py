"""Telemetry topics: ``<root>/<kind>/<sensor_id>`` (DESIGN.md section 4). Pure."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = frozenset({"waste_bin", "air_quality", "footfall"})


@dataclass(frozen=True)
class TelemetryTopic:
    kind: str
    sensor_id: str


def telemetry_filter(root: str, shared_group: str = "") -> str:
    """The subscription filter for all telemetry under ``root`` (optionally a shared one)."""
    topic_filter = f"{root}/+/+"
    return f"$share/{shared_group}/{topic_filter}" if shared_group else topic_filter


def telemetry_topic(root: str, kind: str, sensor_id: str) -> str:
    return f"{root}/{kind}/{sensor_id}"


def parse_topic(root: str, topic: str) -> TelemetryTopic | None:
    """The kind and sensor id of a telemetry topic, or ``None`` if it is not one."""
    prefix = root + "/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 2 or parts[0] not in KINDS or not parts[1]:
        return None
    return TelemetryTopic(kind=parts[0], sensor_id=parts[1])
