"""What each simulated metric looks like on the wire, and how faults may change it.

Ranges are the metrics catalog's (``pantau/db/migrations/0001_schema.sql``): a faulted value is
kept inside them, so that a fault is an anomaly for the detectors to find, never a reject.
Spike sizes are at least 8 robust standard deviations of the metric's reading-to-reading
changes in the clean signal (checked in ``tests/simulators/test_fleet.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pantau.errors import ConfigError

FAULT_KINDS = (
    "stuck",
    "spike",
    "drift",
    "offline",
    "garbage",
    "duplicate",
    "clock_skew",
    "out_of_order",
)
METRIC_FAULTS = frozenset({"stuck", "spike", "drift"})
MESSAGE_FAULTS = frozenset({"garbage", "duplicate", "out_of_order"})


@dataclass(frozen=True)
class MetricSpec:
    name: str
    decimals: int  # the device's resolution: values are rounded to this many decimals
    lo: float  # the catalog's valid range
    hi: float
    senml: tuple[str, str | None]  # SenML name and unit (RFC 8428 section 12.1, RFC 8798)
    spike: float = 0.0  # size of an injected spike; 0: no spikes on this metric
    spike_pivot: float = math.inf  # spikes go down from values at or above this
    drift: float = 0.0  # offset an injected drift ramps up to; 0: no drift on this metric
    stuck: bool = True

    @property
    def resolution(self) -> float:
        return 10.0**-self.decimals


KIND_METRICS: dict[str, tuple[MetricSpec, ...]] = {
    "waste_bin": (
        MetricSpec("fill_pct", 1, -5, 150, ("fill", "/100"), 60, 60, 30),
        MetricSpec("distance_cm", 1, 0, 500, ("distance", "cm"), 70, 75, 35),
        MetricSpec("battery_v", 3, 0, 15, ("battery", "V"), stuck=False),
        MetricSpec("temp_c", 1, -20, 120, ("temp", "Cel"), 25, drift=8),
        MetricSpec("tilt", 1, 0, 180, ("tilt", None), stuck=False),
    ),
    "air_quality": (
        MetricSpec("pm25_ugm3", 1, 0, 2000, ("pm25", "ug/m3"), 300, drift=40),
        MetricSpec("pm10_ugm3", 1, 0, 3000, ("pm10", "ug/m3"), 400, drift=60),
        MetricSpec("no2_ugm3", 1, 0, 10000, ("no2", "ug/m3"), 300, drift=40),
        MetricSpec("so2_ugm3", 1, 0, 10000, ("so2", "ug/m3"), 300, drift=40),
        MetricSpec("o3_ugm3", 1, 0, 5000, ("o3", "ug/m3"), 250, drift=40),
        MetricSpec("co_ugm3", 0, 0, 200000, ("co", "ug/m3"), 8000, drift=1500),
        MetricSpec("temp_c", 1, -20, 120, ("temp", "Cel"), 25, drift=6),
        MetricSpec("rh_pct", 0, 0, 100, ("rh", "%RH"), 40, 60, -25),
    ),
    "footfall": (
        MetricSpec("count_in", 0, 0, 100000, ("count_in", "count"), 150),
        MetricSpec("count_out", 0, 0, 100000, ("count_out", "count"), 150),
    ),
}

# Every metric name, in the order of the catalog's metric ids (``metric_id`` - 1).
METRIC_NAMES: tuple[str, ...] = (
    "fill_pct",
    "distance_cm",
    "battery_v",
    "temp_c",
    "tilt",
    "pm25_ugm3",
    "pm10_ugm3",
    "no2_ugm3",
    "so2_ugm3",
    "o3_ugm3",
    "co_ugm3",
    "rh_pct",
    "count_in",
    "count_out",
)


def eligible(kind: str, fault: str) -> tuple[int, ...]:
    """Columns of ``kind``'s metrics a metric fault of type ``fault`` may hit."""
    specs = KIND_METRICS[kind]
    if fault == "spike":
        return tuple(i for i, s in enumerate(specs) if s.spike)
    if fault == "drift":
        return tuple(i for i, s in enumerate(specs) if s.drift)
    if fault == "stuck":
        return tuple(i for i, s in enumerate(specs) if s.stuck)
    return ()


def parse_fault_kinds(text: str) -> tuple[str, ...]:
    """``all`` or a comma-separated list of :data:`FAULT_KINDS`, checked."""
    text = text.strip()
    if text in ("", "all"):
        return FAULT_KINDS
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise ConfigError(
            f"unknown fault kinds {unknown}",
            f"choose among {', '.join(FAULT_KINDS)} (comma-separated), or all",
        )
    return kinds
