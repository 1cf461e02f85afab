"""Detector rules per metric: plausible ranges, noise floors and what moves by nature.

The hard range of each metric (the ``metrics`` table) rejects impossible readings at ingest;
the soft range here flags readings a working sensor should not send in Jepara (tropical coast,
24-34 degC ambient) as ``out_of_range`` anomalies while still storing them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from processing.anomalies import MetricRules


@dataclass(frozen=True)
class Rule:
    soft_min: float = float("nan")
    soft_max: float = float("nan")
    min_scale: float = 0.1  # floor of the standard deviation, in the metric's unit
    z_spike: float = 6.0
    stuck_run: int = 8  # 0: identical values are normal for this metric
    shift_up_ok: bool = False
    shift_down_ok: bool = False
    # False: the level trends or cycles by nature (a bin fills, a battery drains, temperature and
    # pollution follow the day and the weather). On those, a CUSUM of one series' residuals
    # cannot tell a sensor's drift from the day; see README, "Anomaly detection".
    drift: bool = True


# Counts per interval: zero all night and a jump at opening are normal; bursts are common.
COUNT_RULE = Rule(
    min_scale=5.0, z_spike=8.0, stuck_run=0, shift_up_ok=True, shift_down_ok=True, drift=False
)
RULES: dict[str, Rule] = {
    # A bin's fill drops when it is emptied: a downward shift is a collection, not a fault.
    # Waste piled above the rim reads up to about 120 %; beyond 130 % the reading is a fault.
    "fill_pct": Rule(-2.0, 130.0, min_scale=1.0, shift_down_ok=True, drift=False),
    # An empty bin reads its depth, over and over: identical distances are normal.
    "distance_cm": Rule(0.0, 400.0, min_scale=1.0, stuck_run=0, shift_up_ok=True, drift=False),
    "battery_v": Rule(2.5, 14.8, min_scale=0.02, stuck_run=0, drift=False),  # slow, quantised
    "temp_c": Rule(10.0, 85.0, min_scale=0.5, drift=False),
    # The lid tilts for a moment at every emptying: a one-reading jump is normal.
    "tilt": Rule(
        min_scale=2.0,
        z_spike=math.inf,
        stuck_run=0,
        shift_up_ok=True,
        shift_down_ok=True,
        drift=False,
    ),
    "pm25_ugm3": Rule(0.0, 1000.0, min_scale=2.0, drift=False),
    "pm10_ugm3": Rule(0.0, 1500.0, min_scale=3.0, drift=False),
    "no2_ugm3": Rule(0.0, 2000.0, min_scale=2.0, drift=False),
    "so2_ugm3": Rule(0.0, 2000.0, min_scale=2.0, drift=False),
    "o3_ugm3": Rule(0.0, 1000.0, min_scale=2.0, drift=False),
    "co_ugm3": Rule(0.0, 40000.0, min_scale=50.0, drift=False),
    "hc_ugm3": Rule(0.0, 1000.0, min_scale=2.0, drift=False),
    "rh_pct": Rule(5.0, 100.0, min_scale=1.0, drift=False),
    "count_in": COUNT_RULE,
    "count_out": COUNT_RULE,
}
DEFAULT_RULE = Rule()


def metric_rules(metric_ids: dict[str, int], given: dict[str, Rule] | None = None) -> MetricRules:
    """Rules as arrays indexed by metric id, for the metrics of the catalog ``name -> id``;
    ``given`` overrides or adds rules by name."""
    table = RULES | (given or {})
    size = max(metric_ids.values(), default=0) + 1
    rules = [DEFAULT_RULE] * size
    for name, metric_id in metric_ids.items():
        rules[metric_id] = table.get(name, DEFAULT_RULE)
    return MetricRules(
        soft_min=np.array([r.soft_min for r in rules], dtype=np.float64),
        soft_max=np.array([r.soft_max for r in rules], dtype=np.float64),
        min_scale=np.array([r.min_scale for r in rules], dtype=np.float64),
        z_spike=np.array([r.z_spike for r in rules], dtype=np.float64),
        stuck_run=np.array([r.stuck_run for r in rules], dtype=np.int64),
        shift_up_ok=np.array([r.shift_up_ok for r in rules], dtype=np.bool_),
        shift_down_ok=np.array([r.shift_down_ok for r in rules], dtype=np.bool_),
        drift=np.array([r.drift for r in rules], dtype=np.bool_),
        pm25=metric_ids.get("pm25_ugm3", -1),
        pm10=metric_ids.get("pm10_ugm3", -1),
    )
