"""The topic layout (DESIGN.md section 4), in one place: every publisher, subscriber and ACL
builds its topics and filters here. Pure.

- telemetry: ``<root>/<kind>/<sensor_id>``
- status, a retained ``online``/``offline`` (the device's last will):
  ``<root>/<kind>/<sensor_id>/status``
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = frozenset({"waste_bin", "air_quality", "footfall"})
STATUS = "status"


@dataclass(frozen=True)
class TelemetryTopic:
    kind: str
    sensor_id: str


def telemetry_topic(root: str, kind: str, sensor_id: str) -> str:
    return f"{root}/{kind}/{sensor_id}"


def status_topic(root: str, kind: str, sensor_id: str) -> str:
    return f"{telemetry_topic(root, kind, sensor_id)}/{STATUS}"


def telemetry_filter(root: str, shared_group: str = "") -> str:
    """The subscription filter for all telemetry under ``root`` (optionally a shared one)."""
    topic_filter = f"{root}/+/+"
    return f"$share/{shared_group}/{topic_filter}" if shared_group else topic_filter


def status_filter(root: str) -> str:
    """The subscription filter for every device's status topic under ``root``."""
    return f"{root}/+/+/{STATUS}"


def _parts(root: str, topic: str) -> list[str] | None:
    prefix = root + "/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) :].split("/")
    return parts if len(parts) >= 2 and parts[0] in KINDS and parts[1] else None


def parse_topic(root: str, topic: str) -> TelemetryTopic | None:
    """The kind and sensor id of a telemetry topic, or ``None`` if it is not one."""
    parts = _parts(root, topic)
    if parts is None or len(parts) != 2:
        return None
    return TelemetryTopic(kind=parts[0], sensor_id=parts[1])


def parse_status_topic(root: str, topic: str) -> TelemetryTopic | None:
    """The kind and sensor id of a status topic, or ``None`` if it is not one."""
    parts = _parts(root, topic)
    if parts is None or len(parts) != 3 or parts[2] != STATUS:
        return None
    return TelemetryTopic(kind=parts[0], sensor_id=parts[1])
