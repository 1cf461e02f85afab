"""People counters at tourist-zone gates: visitors in and out per reporting interval.

Each local day, every counter draws its visitors (Poisson around an expected number set by the
zone's size and kind, the weekday, public holidays, Ramadan, the Lebaran week, Lomban on
8 Syawal, Christmas-New Year, school holidays and the west-monsoon quiet season on the coast).
Each visitor arrives during opening hours following the zone's daily profile, stays a while,
and leaves through the same gate no later than closing. ``count_in`` and ``count_out`` of a
report are the arrivals and departures in the interval it covers, so the occupancy (in minus
out) is never negative and is zero after closing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from processing.arrays import BoolArray, F64Array, I64Array
from simulators.calendar import (
    day_of_month,
    day_start_s,
    idul_fitri_offset,
    is_public_holiday,
    local_day,
    month_and_doy,
    weekday,
)
from simulators.keyed import U64Array, normal, uniform

# Zone profiles: open hour, close hour, visitors on an ordinary weekday as a share of the
# zone's capacity, median stay (minutes), arrival peaks (hour, width) and the morning share.
PROFILES: dict[str, tuple[float, float, float, float, float, float, float, float, float]] = {
    "beach": (6.0, 18.0, 0.10, 120.0, 8.0, 1.5, 15.5, 1.2, 0.45),
    "island": (7.5, 16.0, 0.12, 180.0, 9.0, 1.0, 11.0, 1.0, 0.7),
    "museum": (7.0, 15.0, 0.6, 45.0, 9.5, 1.2, 12.5, 1.2, 0.6),
    "waterpark": (8.0, 17.0, 0.08, 200.0, 9.5, 1.2, 12.5, 1.5, 0.7),
    "religious": (6.0, 21.0, 0.5, 40.0, 9.0, 2.0, 19.0, 1.2, 0.6),
    "heritage": (7.0, 17.0, 0.15, 90.0, 9.5, 1.5, 14.5, 1.5, 0.5),
    "harbour": (6.0, 20.0, 0.12, 60.0, 10.0, 0.8, 14.0, 0.8, 0.5),
}
DEFAULT_PROFILE = "heritage"
WEEKDAY_FACTOR = np.array([1.0, 0.9, 0.9, 1.0, 1.1, 1.8, 2.4])  # Monday first
# Lebaran week, from Idul Fitri day (0) to day 6: family visits first, outings after.
LEBARAN_FACTOR = np.array([0.8, 4.0, 5.0, 4.5, 4.0, 3.5, 3.0])
LOMBAN_FACTOR = 9.0  # 8 Syawal on the Lomban sites (on top of the weekday, not of Lebaran)
MONSOON_FACTOR = 0.35  # December-February on the coast: west-monsoon waves and rain
CACHE_DAYS = 4

_S_ZONE_DAY, _S_RAIN = 1, 2


@dataclass
class FootfallCounters:
    key: U64Array
    zone_key: U64Array
    seed: int
    typical_per_day: F64Array  # visitors through this gate on an ordinary weekday
    open_h: F64Array
    close_h: F64Array
    stay_min: F64Array
    peaks: F64Array  # (n, 5): hour 1, width 1, hour 2, width 2, share of the first peak
    coastal: BoolArray  # quiet in the west monsoon
    outdoor: BoolArray  # fewer visitors on rainy days
    lomban: BoolArray  # a Lomban festival site
    interval_s: I64Array
    _days: OrderedDict[int, tuple[I64Array, I64Array]] = field(default_factory=OrderedDict)

    @classmethod
    def build(
        cls,
        key: U64Array,
        zone_key: U64Array,
        seed: int,
        capacity: F64Array,
        gates: F64Array,
        profiles: list[str],
        lomban: BoolArray,
        interval_s: I64Array,
    ) -> FootfallCounters:
        """``capacity`` (persons) and ``gates`` (counters) of each counter's zone."""
        table = np.array(
            [PROFILES.get(p, PROFILES[DEFAULT_PROFILE]) for p in profiles], dtype=np.float64
        ).reshape(-1, 9)
        return cls(
            key=key,
            zone_key=zone_key,
            seed=seed,
            typical_per_day=capacity * table[:, 2] / gates,
            open_h=table[:, 0],
            close_h=table[:, 1],
            stay_min=table[:, 3],
            peaks=table[:, 4:9],
            coastal=np.array([p in ("beach", "island", "harbour") for p in profiles], dtype=bool),
            outdoor=np.array([p != "museum" for p in profiles], dtype=bool),
            lomban=lomban,
            interval_s=interval_s,
        )

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("count_in", "count_out")

    def expected(self, day: int) -> F64Array:
        """Expected visitors of every counter on local ``day``."""
        d = np.array([day], dtype=np.int64)
        month, _ = month_and_doy(d)
        offset = int(idul_fitri_offset(d)[0])
        factor = float(WEEKDAY_FACTOR[weekday(d)[0]])
        if is_public_holiday(d)[0]:
            factor = max(factor, 2.4)
        if -29 <= offset < 0:
            factor *= 0.45  # Ramadan: fasting, few daytime outings
        lomban = np.where(self.lomban & (offset == 7), LOMBAN_FACTOR, 1.0)
        if 0 <= offset < len(LEBARAN_FACTOR):
            factor *= float(LEBARAN_FACTOR[offset])
        elif offset == 7:
            factor = max(factor, 2.5)  # the Lebaran week's tail; Lomban sites far more
        dom = int(day_of_month(d)[0])
        if (month[0] == 12 and dom >= 24) or (month[0] == 1 and dom == 1):
            factor *= 1.8  # Christmas to New Year's Day (Nataru)
        if (month[0] == 6 and dom >= 20) or (month[0] == 7 and dom <= 15):
            factor *= 1.4  # school holidays
        monsoon = np.where(self.coastal & (int(month[0]) in (12, 1, 2)), MONSOON_FACTOR, 1.0)
        rain_p = 0.1 + 0.35 * (int(month[0]) in (11, 12, 1, 2, 3, 4))
        rainy = uniform(np.array([self.seed], dtype=np.uint64), d, _S_RAIN)[0] < rain_p
        rain = np.where(self.outdoor & rainy, 0.55, 1.0)
        zone_noise = np.exp(0.15 * normal(self.zone_key, np.full(self.key.shape, day), _S_ZONE_DAY))
        out: F64Array = self.typical_per_day * factor * lomban * monsoon * rain * zone_noise
        return out

    def visitors(self, day: int) -> tuple[I64Array, I64Array]:
        """Sorted event keys of ``day``: ``counter << 32 + second of the day``, arrivals and
        departures. Drawn from a generator seeded by (seed, day), cached for a few days."""
        if day in self._days:
            return self._days[day]
        rng = np.random.default_rng([self.seed, 0xF00F, day])
        n_visitors = rng.poisson(self.expected(day))
        who = np.repeat(np.arange(n_visitors.shape[0], dtype=np.int64), n_visitors)
        p = self.peaks[who]
        first = rng.random(who.shape[0]) < p[:, 4]
        hour = np.where(
            first,
            rng.normal(p[:, 0], p[:, 1]),
            rng.normal(p[:, 2], p[:, 3]),
        )
        open_h, last_h = self.open_h[who], self.close_h[who] - 0.25
        outside = (hour < open_h) | (hour > last_h)
        hour = np.where(outside, open_h + (last_h - open_h) * rng.random(who.shape[0]), hour)
        stay_h = np.maximum(self.stay_min[who] * rng.lognormal(0.0, 0.45, who.shape[0]), 10.0) / 60
        arrive_s = (hour * 3600.0).astype(np.int64)
        leave_s = (np.minimum(hour + stay_h, self.close_h[who]) * 3600.0).astype(np.int64)
        leave_s = np.maximum(leave_s, arrive_s + 1)
        events = (np.sort((who << 32) + arrive_s), np.sort((who << 32) + leave_s))
        self._days[day] = events
        while len(self._days) > CACHE_DAYS:
            self._days.popitem(last=False)
        return events

    def values(self, idx: I64Array, t_s: I64Array) -> F64Array:
        """count_in and count_out of counters ``idx`` in the intervals ending at ``t_s``."""
        t = np.asarray(t_s, dtype=np.int64)
        t_from = t - self.interval_s[idx]
        counts = np.zeros((t.shape[0], 2), dtype=np.float64)
        for day in range(int(local_day(t_from).min()), int(local_day(t).max()) + 1):
            start = int(day_start_s(day))
            hi = (idx << 32) + np.clip(t - start, -1, 86_400)
            lo = (idx << 32) + np.clip(t_from - start, -1, 86_400)
            for col, events in enumerate(self.visitors(day)):
                counts[:, col] += np.searchsorted(events, hi, "right") - np.searchsorted(
                    events, lo, "right"
                )
        return counts
