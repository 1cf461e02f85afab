"""Signal models of the simulated Jepara fleet: pure, seeded, vectorized across sensors.

Each model holds per-sensor parameter arrays; ``sample(idx, t_s, rng)`` takes aligned arrays of
sensor indices and simulated times (Unix seconds), draws from the ``np.random.Generator`` passed
in, and returns one value per (sensor, time) pair. Nothing here reads a clock or does I/O.
Local time in Jepara is WIB (UTC+7), which drives the daily cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.arrays import F64Array, I64Array

WIB_OFFSET_S = 7 * 3600
DAY_S = 86_400


def _round(x: object, decimals: int) -> F64Array:
    """Values as a device reports them: float64 rounded to its resolution."""
    rounded: F64Array = np.asarray(x, dtype=np.float64).round(decimals)
    return rounded


def local_hour(t_s: F64Array) -> F64Array:
    """Hour of day in WIB, in [0, 24)."""
    return ((t_s + WIB_OFFSET_S) % DAY_S) / 3600.0


@dataclass(frozen=True)
class WasteBins:
    """Per-bin parameters: fill rate, collection period and phase, bin depth."""

    rate_pct_per_h: F64Array
    period_h: F64Array
    phase_h: F64Array
    depth_cm: F64Array

    @classmethod
    def draw(cls, depth_cm: F64Array, rng: np.random.Generator) -> WasteBins:
        n: int = depth_cm.shape[0]
        period_h = rng.choice(np.array([48.0, 72.0, 84.0]), size=n)
        return cls(
            rate_pct_per_h=rng.uniform(0.6, 1.8, size=n),
            period_h=period_h,
            phase_h=rng.uniform(0, 1, size=n) * period_h,
            depth_cm=depth_cm,
        )

    def sample(self, idx: I64Array, t_s: F64Array, rng: np.random.Generator) -> dict[str, F64Array]:
        """fill_pct, distance_cm, battery_v, temp_c and tilt of bins ``idx`` at times ``t_s``."""
        n: int = idx.shape[0]
        period_h = self.period_h[idx]
        hours_since_collection = (t_s / 3600.0 + self.phase_h[idx]) % period_h
        fill = np.minimum(self.rate_pct_per_h[idx] * hours_since_collection, 115.0)
        fill = np.clip(fill + rng.normal(0, 1.0, n), 0.0, 120.0)
        distance = np.clip(self.depth_cm[idx] * (1 - fill / 100.0), 0.0, None)
        hour = local_hour(t_s)
        temp = 28 + 5 * np.sin((hour - 9) / 24 * 2 * np.pi) + rng.normal(0, 0.5, n)
        battery = 3.95 - 0.3 * (t_s % (180 * DAY_S)) / (180 * DAY_S) + rng.normal(0, 0.01, n)
        return {
            "fill_pct": _round(fill, 1),
            "distance_cm": _round(distance, 1),
            "battery_v": _round(battery, 3),
            "temp_c": _round(temp, 1),
            "tilt": _round(np.abs(rng.normal(0, 1.5, n)), 1),
        }


# Typical PM2.5 level (ug/m3) by station profile keyword; Jepara's dry-season urban background.
PM25_BASE = {
    "traffic": 38.0,
    "industrial": 45.0,
    "port": 35.0,
    "coal": 40.0,
    "beach": 18.0,
    "background": 12.0,
}


@dataclass(frozen=True)
class AirStations:
    pm25_base: F64Array

    @classmethod
    def from_profiles(cls, profiles: list[str]) -> AirStations:
        base = [next((v for k, v in PM25_BASE.items() if k in p.lower()), 25.0) for p in profiles]
        return cls(pm25_base=np.array(base, dtype=np.float64))

    def sample(self, idx: I64Array, t_s: F64Array, rng: np.random.Generator) -> dict[str, F64Array]:
        n: int = idx.shape[0]
        hour = local_hour(t_s)
        # Traffic peaks around 07:00 and 17:00 WIB; a shallow night-time inversion.
        peaks = np.exp(-(((hour - 7) / 1.5) ** 2)) + 0.8 * np.exp(-(((hour - 17) / 2) ** 2))
        pm25 = self.pm25_base[idx] * (0.7 + 0.8 * peaks) * rng.lognormal(0, 0.25, n)
        pm10 = pm25 * rng.uniform(1.3, 2.0, n)
        temp = 27 + 4 * np.sin((hour - 9) / 24 * 2 * np.pi) + rng.normal(0, 0.3, n)
        return {
            "pm25_ugm3": _round(pm25, 1),
            "pm10_ugm3": _round(pm10, 1),
            "no2_ugm3": _round(rng.gamma(4, 6, n) * (0.6 + peaks), 1),
            "so2_ugm3": _round(rng.gamma(3, 5, n), 1),
            "o3_ugm3": _round(
                40
                + 50 * np.clip(np.sin((hour - 8) / 12 * np.pi), 0, None)
                + rng.normal(0, 5, n).clip(-20),
                1,
            ),
            "co_ugm3": _round(rng.gamma(5, 150, n) * (0.7 + peaks), 0),
            "temp_c": _round(temp, 1),
            "rh_pct": _round(np.clip(80 - 2.5 * (temp - 27) + rng.normal(0, 3, n), 30, 100), 0),
        }


@dataclass(frozen=True)
class FootfallCounters:
    """Per-counter peak arrivals per hour (from the zone's capacity) and reporting interval."""

    peak_per_h: F64Array
    interval_s: F64Array

    def sample(self, idx: I64Array, t_s: F64Array, rng: np.random.Generator) -> dict[str, F64Array]:
        hour = local_hour(t_s)
        open_now = (hour >= 7.0) & (hour < 18.0)
        # Arrivals peak late morning and mid afternoon; departures lag arrivals by ~2 h.
        arrive = np.exp(-(((hour - 10.5) / 2.0) ** 2)) + 0.7 * np.exp(-(((hour - 15) / 1.5) ** 2))
        depart = np.exp(-(((hour - 13) / 2.0) ** 2)) + 0.9 * np.exp(-(((hour - 17) / 1.0) ** 2))
        scale = self.peak_per_h[idx] * self.interval_s[idx] / 3600.0 * open_now
        return {
            "count_in": rng.poisson(scale * arrive).astype(np.float64),
            "count_out": rng.poisson(scale * depart).astype(np.float64),
        }
