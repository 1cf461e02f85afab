"""Fault plans: which sensor goes wrong when, how, and for how long. Pure and seeded.

Faults are planned per local day from a generator seeded by (seed, day), so a day's faults do
not depend on how a run is windowed. ``rate`` is the expected number of faults per sensor per
day; kinds are drawn with :data:`WEIGHTS`. A planned fault never crosses local midnight, and two
faults of one sensor are at least two report intervals apart, so every reading is hit by at
most one fault and a stuck sensor's "previous value" is a clean one.

Window lengths, in reports: stuck 8-24 (the value before the window repeats at least 8 times),
drift 12-40 (a linear ramp up to the metric's drift offset, at least one resolution step per
report), offline 30 min-6 h, clock_skew 6-36. The other kinds hit one message.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processing.arrays import F64Array, I64Array
from simulators.calendar import DAY_S, day_start_s, local_day
from simulators.metrics import FAULT_KINDS, KIND_METRICS, METRIC_FAULTS, eligible

WEIGHTS = {
    "stuck": 2.0,
    "spike": 3.0,
    "drift": 1.0,
    "offline": 2.0,
    "garbage": 1.0,
    "duplicate": 2.0,
    "clock_skew": 1.0,
    "out_of_order": 2.0,
}
CODE = {kind: i for i, kind in enumerate(FAULT_KINDS)}
GARBAGE_VARIANTS = 4
MAX_DELAY_REPORTS = 5  # an out-of-order message arrives 2-5 intervals late
_FID_DAY = 1 << 20


@dataclass(frozen=True)
class Plan:
    """Faults as aligned arrays, sorted by (sensor, start). Times are report slots (Unix s).

    ``sensor`` indexes the fleet's sensors; ``metric`` is the column among the sensor kind's
    metrics (-1 for whole-device and message faults). ``lo``/``hi`` is the span no other fault
    of the sensor may touch (a gateway batch for message faults). ``iparam``: offline 1 = with
    a last will, clock_skew the clock's lag in ms, duplicate/out_of_order the delay in ms,
    garbage the variant. ``fparam``: drift offset.
    """

    fid: I64Array
    sensor: I64Array
    kind: I64Array
    metric: I64Array
    start_s: I64Array
    end_s: I64Array
    lo_s: I64Array
    hi_s: I64Array
    iparam: I64Array
    fparam: F64Array

    def __len__(self) -> int:
        return int(self.fid.shape[0])

    def take(self, rows: I64Array) -> Plan:
        return Plan(*(getattr(self, f)[rows] for f in Plan.__dataclass_fields__))

    @staticmethod
    def concat(plans: Sequence[Plan]) -> Plan:
        merged = Plan(
            *(np.concatenate([getattr(p, f) for p in plans]) for f in Plan.__dataclass_fields__)
        )
        return merged.take(np.lexsort((merged.lo_s, merged.sensor)))

    def find(self, sensor: I64Array, slot_s: I64Array) -> I64Array:
        """Row of the fault hitting each (sensor, slot), or -1."""
        if len(self) == 0:
            return np.full(sensor.shape, -1, dtype=np.int64)
        shift = np.int64(1 << 34)
        pos = np.searchsorted(self.sensor * shift + self.start_s, sensor * shift + slot_s, "right")
        row = pos - 1
        safe = np.maximum(row, 0)
        hit = (row >= 0) & (self.sensor[safe] == sensor) & (slot_s <= self.end_s[safe])
        found: I64Array = np.where(hit, row, -1)
        return found


def _sentinel() -> Plan:
    i = np.array([-1], dtype=np.int64)
    return Plan(i, i, i, i, i, i, i, i, i * 0, np.zeros(1, dtype=np.float64))


def _empty() -> Plan:
    i = np.zeros(0, dtype=np.int64)
    return Plan(i, i, i, i, i, i, i, i, i, np.zeros(0, dtype=np.float64))


class Planner:
    """Plans the faults of a fleet day by day (cached)."""

    def __init__(
        self,
        *,
        seed: int,
        rate_per_sensor_day: float,
        kinds: Sequence[str],
        sensor_kind: Sequence[str],
        interval_s: I64Array,
        phase_s: I64Array,
        batch_s: int,
    ) -> None:
        self.seed = seed
        self.rate = rate_per_sensor_day
        self.kinds = [k for k in FAULT_KINDS if k in kinds]
        self.interval_s = interval_s
        self.phase_s = phase_s
        self.batch_s = batch_s
        kind_names = sorted(set(sensor_kind))
        self._kind_names = kind_names
        self._sensor_kind = np.array([kind_names.index(k) for k in sensor_kind], dtype=np.int64)
        self._cache: OrderedDict[int, Plan] = OrderedDict()
        longest = int(interval_s.max()) if interval_s.size else 0
        self.max_delay_ms = MAX_DELAY_REPORTS * max(longest, batch_s) * 1000 + 500

    def window(self, lo_s: int, hi_s: int) -> Plan:
        """Faults of every local day overlapping [lo_s, hi_s], in one sorted plan.

        The plan starts with a sentinel row of sensor -1 that matches nothing, so that rows
        can be gathered with ``np.maximum(row, 0)`` even when there is no fault."""
        first, last = (int(d) for d in local_day(np.array([lo_s, hi_s], dtype=np.int64)))
        return Plan.concat([_sentinel(), *(self.day(d) for d in range(first, last + 1))])

    def day(self, day: int) -> Plan:
        if day not in self._cache:
            self._cache[day] = self._plan(day)
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        return self._cache[day]

    def _iparam(self, kind: I64Array, interval: I64Array, u: F64Array) -> I64Array:
        """The integer parameter of each fault (see :class:`Plan`)."""
        # A clock 0.3-0.9 intervals behind, plus odd milliseconds: a skewed reading never
        # lands on another reading's time, and its window holds no unchanged reading.
        lag_ms = ((0.3 + 0.6 * u[3]) * interval).astype(np.int64) * 1000
        skew_ms = lag_ms + 1 + (u[4] * 998).astype(np.int64)
        cases = {
            "offline": (u[3] < 0.5).astype(np.int64),
            "clock_skew": skew_ms,
            "duplicate": 200 + (u[3] * 29_800).astype(np.int64),
            "out_of_order": _late_ms(interval, self.batch_s, u[3]),
            "garbage": (u[3] * GARBAGE_VARIANTS).astype(np.int64),
        }
        iparam = np.zeros(kind.shape[0], dtype=np.int64)
        for name, value in cases.items():
            iparam = np.where(kind == CODE[name], value, iparam)
        return iparam

    def _plan(self, day: int) -> Plan:
        n_sensors = self.interval_s.shape[0]
        if self.rate <= 0 or not self.kinds or n_sensors == 0 or day < 0:
            return _empty()
        rng = np.random.default_rng([self.seed, 0xFA17, day])
        n = int(rng.poisson(self.rate * n_sensors))
        sensor = rng.integers(0, n_sensors, n)
        weights = np.array([WEIGHTS[k] for k in self.kinds])
        kind = np.array([CODE[k] for k in self.kinds])[
            rng.choice(len(self.kinds), n, p=weights / weights.sum())
        ]
        u = rng.random((5, n))
        interval = self.interval_s[sensor]
        phase = self.phase_s[sensor]
        day0 = int(day_start_s(day))
        t = day0 + (u[0] * DAY_S).astype(np.int64)
        start = phase + -((phase - t) // interval) * interval  # first slot at or after t
        reports = np.ones(n, dtype=np.int64)
        reports = np.where(kind == CODE["stuck"], 8 + (u[1] * 17).astype(np.int64), reports)
        reports = np.where(kind == CODE["drift"], 12 + (u[1] * 29).astype(np.int64), reports)
        offline = np.maximum((1800 + u[1] * 19_800) // interval, 2).astype(np.int64)
        reports = np.where(kind == CODE["offline"], offline, reports)
        reports = np.where(kind == CODE["clock_skew"], 6 + (u[1] * 31).astype(np.int64), reports)

        metric = np.full(n, -1, dtype=np.int64)
        fparam = np.zeros(n, dtype=np.float64)
        valid = np.ones(n, dtype=bool)
        for k_idx, kind_name in enumerate(self._kind_names):
            specs = KIND_METRICS[kind_name]
            for fault in METRIC_FAULTS:
                rows = (self._sensor_kind[sensor] == k_idx) & (kind == CODE[fault])
                cols = np.array(eligible(kind_name, fault), dtype=np.int64)
                if cols.size == 0:
                    valid &= ~rows
                    continue
                chosen = cols[np.minimum((u[2] * cols.size).astype(np.int64), cols.size - 1)]
                metric = np.where(rows, chosen, metric)
                if fault == "drift":
                    drift = np.array([specs[c].drift for c in range(len(specs))])[chosen]
                    resolution = np.array([specs[c].resolution for c in range(len(specs))])[chosen]
                    offset = drift * (0.8 + 0.4 * u[3])
                    steps = np.floor(np.abs(offset) / resolution).astype(np.int64)
                    fparam = np.where(rows, offset, fparam)
                    reports = np.where(rows, np.minimum(reports, steps), reports)
        end = start + (reports - 1) * interval

        iparam = self._iparam(kind, interval, u)
        lo, hi = start, end
        if self.batch_s:
            message = np.isin(kind, [CODE["garbage"], CODE["duplicate"], CODE["out_of_order"]])
            batch_lo = (start - 1) // self.batch_s * self.batch_s + 1
            lo = np.where(message, batch_lo, start)
            hi = np.where(message, batch_lo + self.batch_s - 1, end)
        valid &= (hi < day0 + DAY_S) & (lo >= day0) & (reports >= 1)
        plan = Plan(
            fid=day * _FID_DAY + np.arange(n, dtype=np.int64),
            sensor=sensor,
            kind=kind,
            metric=metric,
            start_s=start,
            end_s=end,
            lo_s=lo,
            hi_s=hi,
            iparam=iparam,
            fparam=fparam,
        ).take(np.flatnonzero(valid))
        plan = plan.take(np.lexsort((plan.lo_s, plan.sensor)))
        return plan.take(_apart(plan, self.interval_s))


def _late_ms(interval: I64Array, batch_s: int, u: F64Array) -> I64Array:
    late: I64Array = (2 + (u * (MAX_DELAY_REPORTS - 1)).astype(np.int64)) * np.maximum(
        interval, batch_s
    )
    return late * 1000 + 500


def _apart(plan: Plan, interval_s: I64Array) -> I64Array:
    """Rows to keep so that faults of one sensor are at least two intervals apart."""
    keep: list[int] = []
    last_sensor, last_hi = -1, 0
    for row, (sensor, lo, hi) in enumerate(
        zip(plan.sensor.tolist(), plan.lo_s.tolist(), plan.hi_s.tolist(), strict=True)
    ):
        if sensor == last_sensor and lo <= last_hi + 2 * int(interval_s[sensor]):
            continue
        keep.append(row)
        last_sensor, last_hi = sensor, hi
    return np.array(keep, dtype=np.int64)
