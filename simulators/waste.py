"""Waste bins: fill between collection rounds, ultrasonic distance, battery, temperature, tilt.

Waste arrives at a village- and day-specific rate (market days on the village's pasaran,
Fridays, Lebaran and Ramadan evenings), mostly in the morning and the evening. A collection
round empties a bin on its scheduled weekdays; rounds run late or are missed (more in the rainy
season, and all of them in the days around Idul Fitri when crews are on leave), so bins
overflow. Everything is a pure function of the bin, the time and the seed (see ``keyed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processing.arrays import BoolArray, F64Array, I64Array
from simulators.calendar import (
    DAY_S,
    day_start_s,
    dryness,
    idul_fitri_offset,
    is_public_holiday,
    local_day,
    local_hour,
    month_and_doy,
    pasaran,
    weekday,
)
from simulators.keyed import U64Array, normal, uniform

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOOKBACK_D = 14  # a bin left this long is overflowing whatever happened before
OVERFLOW_PCT = 20.0  # waste heaped above the rim reads as up to 120 % full
# Share of the day's waste deposited in each local hour (households: morning and evening).
_HOURLY = np.array(
    [0.2, 0.1, 0.1, 0.1, 0.3, 1.0, 2.5, 3.0, 2.5, 1.5, 1.2, 1.0,
     1.2, 1.0, 0.9, 1.0, 1.6, 2.2, 2.5, 2.0, 1.2, 0.6, 0.4, 0.3],
)  # fmt: skip
_CUMULATIVE = np.concatenate([[0.0], np.cumsum(_HOURLY) / _HOURLY.sum()])
_HOURS = np.arange(25, dtype=np.float64)
# Relative waste by weekday, Monday first: Friday gatherings (Jumatan, food sharing) and
# Sunday households at home produce more.
_WEEKDAY_FACTOR = np.array([1.0, 0.95, 0.95, 1.0, 1.25, 1.05, 1.15])

# Keyed-noise streams (any distinct small integers).
_S_BIN_RATE, _S_VILLAGE, _S_MARKET, _S_HOUR, _S_SOLAR, _S_LIFE, _S_PHASE, _S_LEAN = range(1, 9)
_S_DAY, _S_DELAY, _S_DELAY_H, _S_RESIDUAL, _S_FILL, _S_TEMP, _S_BATT, _S_TILT = range(11, 19)


def _share_of_day(frac: F64Array) -> F64Array:
    """Share of a day's waste deposited from local midnight to ``frac`` of the day."""
    share: F64Array = np.interp(frac * 24.0, _HOURS, _CUMULATIVE)
    return share


@dataclass(frozen=True)
class WasteBins:
    """Per-bin parameters; ``values`` gives the readings of bins ``idx`` at times ``t_s``."""

    key: U64Array
    zone_key: U64Array  # bins of one village share its market day and its collection round
    depth_cm: F64Array
    interval_s: I64Array
    rate_pct_per_day: F64Array  # on an ordinary Monday
    market: I64Array  # pasaran of the village market
    collect: BoolArray  # (n, 7) collection weekdays, Monday first
    collect_hour: F64Array  # local hour the round reaches the bin
    solar_c: F64Array  # afternoon heating of the bin in the sun
    battery_life_d: F64Array
    battery_phase_d: F64Array
    lean_deg: F64Array  # tilt of a bin at rest

    @classmethod
    def build(
        cls,
        key: U64Array,
        zone_key: U64Array,
        depth_cm: F64Array,
        interval_s: I64Array,
        base_pct_per_day: F64Array,
        collection_days: Sequence[Sequence[str]],
    ) -> WasteBins:
        """Bins with per-bin and per-village variation drawn from their keys."""
        n = key.shape[0]
        zero = np.zeros(n, dtype=np.int64)
        village = np.exp(0.25 * normal(zone_key, zero, _S_VILLAGE))
        collect = np.zeros((n, 7), dtype=bool)
        for i, days in enumerate(collection_days):
            for d in days:
                collect[i, WEEKDAYS.index(d)] = True
        life = 150.0 + 150.0 * uniform(key, zero, _S_LIFE)
        return cls(
            key=key,
            zone_key=zone_key,
            depth_cm=depth_cm,
            interval_s=interval_s,
            rate_pct_per_day=base_pct_per_day
            * village
            * np.exp(0.15 * normal(key, zero, _S_BIN_RATE)),
            market=(uniform(zone_key, zero, _S_MARKET) * 5).astype(np.int64),
            collect=collect,
            collect_hour=6.0 + 4.0 * uniform(key, zero, _S_HOUR),
            solar_c=1.0 + 7.0 * uniform(key, zero, _S_SOLAR),
            battery_life_d=life,
            battery_phase_d=life * uniform(key, zero, _S_PHASE),
            lean_deg=3.0 * uniform(key, zero, _S_LEAN),
        )

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("fill_pct", "distance_cm", "battery_v", "temp_c", "tilt")

    def daily_rate(self, u: I64Array, days: I64Array) -> F64Array:
        """Fill rate (% of the bin per day) of bins ``u`` on ``days``: shape (len(u), len(days))."""
        d = days[None, :]
        _, doy = month_and_doy(days)
        offset = idul_fitri_offset(days)
        factor = _WEEKDAY_FACTOR[weekday(days)]
        factor = factor * np.where(is_public_holiday(days), 1.2, 1.0)
        factor = factor * np.where((offset >= 0) & (offset <= 6), 1.6, 1.0)  # Lebaran guests
        factor = factor * np.where((offset >= -29) & (offset < 0), 1.15, 1.0)  # buka puasa
        market_day = pasaran(days)[None, :] == self.market[u][:, None]
        noise = np.exp(0.12 * normal(self.key[u][:, None], d, _S_DAY))
        rate: F64Array = (
            self.rate_pct_per_day[u][:, None]
            * factor[None, :]
            * np.where(market_day, 1.5, 1.0)
            * noise
            * (1.0 + 0.1 * dryness(doy))[None, :]
        )
        return rate

    def collection_s(self, u: I64Array, days: I64Array) -> F64Array:
        """Unix time (s) each bin of ``u`` is emptied on each local day, +inf if it is not."""
        d = np.broadcast_to(days[None, :], (u.shape[0], days.shape[0]))
        zk = self.zone_key[u][:, None]
        _, doy = month_and_doy(days)
        wet = 1.0 - dryness(doy)[None, :]
        event = uniform(zk, d, _S_DELAY)
        skipped = event < 0.04 + 0.05 * wet
        late = (~skipped) & (event < 0.16 + 0.14 * wet)
        delay_h = np.where(late, 2.0 + 7.0 * uniform(zk, d, _S_DELAY_H), 0.0)
        offset = idul_fitri_offset(days)[None, :]
        on_leave = (offset >= -1) & (offset <= 2)  # cuti bersama around Idul Fitri
        scheduled = self.collect[u][:, weekday(days)] & ~skipped & ~on_leave
        when = day_start_s(d) + (self.collect_hour[u][:, None] + delay_h) * 3600.0
        out: F64Array = np.where(scheduled, when, np.inf)
        return out

    def values(self, idx: I64Array, t_s: I64Array) -> F64Array:
        """Readings of bins ``idx`` at times ``t_s`` (Unix s): columns as in :attr:`metrics`.

        fill_pct in [0, 120] (above 100: overflowing), distance_cm = depth x (1 - fill/100)
        clipped to [0, depth], battery_v in about [3.3, 4.2], temp_c inside the bin, tilt in
        degrees: the largest since the previous report, so the report after an emptying shows
        the container tipped over the truck (95-130 degrees).
        """
        t = np.asarray(t_s, dtype=np.int64)
        u, row = np.unique(idx, return_inverse=True)
        day = local_day(t)
        d0 = int(day.min()) - LOOKBACK_D
        days = np.arange(d0, int(day.max()) + 1, dtype=np.int64)
        rate = self.daily_rate(u, days)
        before = np.cumsum(rate, axis=1) - rate  # waste produced before each day, from d0
        coll = self.collection_s(u, days)
        last = np.maximum.accumulate(np.where(np.isfinite(coll), coll, -np.inf), axis=1)
        j = day - d0
        on_day = coll[row, j]
        prev = np.where(j > 0, last[row, np.maximum(j - 1, 0)], -np.inf)
        tc = np.where(on_day <= t, on_day, prev)
        emptied = np.isfinite(tc)
        tc = np.where(emptied, tc, float(day_start_s(d0)))
        jc = local_day(tc) - d0
        produced = (
            before[row, j] + rate[row, j] * _share_of_day((t - day_start_s(day)) / DAY_S)
        ) - (before[row, jc] + rate[row, jc] * _share_of_day((tc - day_start_s(jc + d0)) / DAY_S))
        residual = 3.0 * uniform(self.key[idx], jc + d0, _S_RESIDUAL)
        fill = residual + produced
        over = np.maximum(fill - 100.0, 0.0)
        fill = np.minimum(fill, 100.0) + OVERFLOW_PCT * (1.0 - np.exp(-over / OVERFLOW_PCT))
        fill = np.clip(fill + 0.8 * normal(self.key[idx], t, _S_FILL), 0.0, 100.0 + OVERFLOW_PCT)
        fill = fill.round(1)
        depth = self.depth_cm[idx]
        distance = np.clip(depth * (1.0 - fill / 100.0), 0.0, depth).round(1)

        hour = local_hour(t)
        _, doy = month_and_doy(day)
        sun = np.maximum(np.sin(np.pi * (hour - 9.0) / 9.0), 0.0) * ((hour >= 9) & (hour <= 18))
        ambient = 26.5 + 0.8 * dryness(doy) + 3.5 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
        temp = (
            ambient
            + self.solar_c[idx] * sun
            + 0.03 * fill
            + 0.3 * normal(self.key[idx], t, _S_TEMP)
        )
        life = self.battery_life_d[idx]
        age = np.mod(t / DAY_S + self.battery_phase_d[idx], life) / life
        battery = (
            4.15 - 0.5 * age - 0.3 * age**10 + 0.003 * (temp - 28.0)
            + 0.004 * normal(self.key[idx], t, _S_BATT)
        )  # fmt: skip
        just_emptied = emptied & (tc > t - self.interval_s[idx])
        tipped = 95.0 + 35.0 * uniform(self.key[idx], t, _S_TILT)
        rest = self.lean_deg[idx] + np.abs(1.2 * normal(self.key[idx], t, _S_TILT))
        tilt = np.where(just_emptied, tipped, rest)
        out: F64Array = np.stack(
            [fill, distance, battery.round(3), temp.round(1), tilt.round(1)], axis=1
        )
        return out
