"""Air-quality stations: particulates and gases with traffic peaks, seasons and episodes.

PM2.5 follows a regional background shared by all stations (so stations move together), a
local factor, traffic peaks at 07:00 and 17:30 WIB, the night-time inversion and the season:
the dry season (June-September) is dustier, west-monsoon rain (December-March) washes the air.
Episodes come on top: evening open burning of waste and crop residue (mostly dry season), wood
dust from the Tahunan furniture cluster on working days, and the Tanjung Jati B coal plant's
SO2/NO2 plume on the fence-line station. PM10 is PM2.5 times a coarse ratio >= 1.25 plus dust,
so PM2.5 <= PM10 holds for every clean reading, rounded or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processing.arrays import BoolArray, F64Array, I64Array
from simulators.calendar import dryness, local_day, local_hour, month_and_doy, weekday
from simulators.keyed import U64Array, normal, uniform

# Station profiles, by a keyword of the fleet file's ``profile`` parameter: typical PM2.5,
# NO2, SO2, CO (ug/m3), traffic weight, coarse PM10/PM2.5 ratio, open-burning propensity.
PROFILES: dict[str, tuple[float, float, float, float, float, float, float]] = {
    "industrial": (32.0, 28.0, 12.0, 900.0, 0.5, 2.0, 0.6),
    "coal": (24.0, 22.0, 25.0, 700.0, 0.2, 1.6, 0.5),
    "port": (26.0, 30.0, 18.0, 800.0, 0.4, 1.5, 0.3),
    "roadside": (35.0, 40.0, 9.0, 1400.0, 1.0, 1.7, 0.5),
    "traffic": (30.0, 32.0, 8.0, 1100.0, 0.8, 1.6, 0.5),
    "coastal": (16.0, 12.0, 5.0, 450.0, 0.2, 1.9, 0.3),
    "remote": (9.0, 5.0, 3.0, 250.0, 0.05, 2.0, 0.1),
}
DEFAULT_PROFILE = (22.0, 20.0, 8.0, 700.0, 0.5, 1.6, 0.4)
REGION_KNOT_S = 3 * 3600  # regional background changes over hours
LOCAL_KNOT_S = 3600

_S_REGION, _S_LOCAL, _S_PM, _S_RATIO, _S_GAS, _S_TEMP, _S_RH = range(1, 8)
_S_BURN, _S_BURN_T, _S_BURN_A, _S_IND, _S_IND_A, _S_PLUME, _S_PLUME_T, _S_PLUME_A = range(11, 19)
_S_NO2, _S_SO2, _S_CO, _S_O3 = range(21, 25)


def profile_of(text: str) -> tuple[float, float, float, float, float, float, float]:
    """The profile whose keyword appears first in the fleet file's ``profile`` text."""
    lowered = text.lower()
    for word in ("industrial", "coal", "port", "roadside", "traffic", "coastal", "remote"):
        if word in lowered:
            return PROFILES[word]
    return DEFAULT_PROFILE


def _knots(key: U64Array, t: I64Array, knot_s: int, stream: int, sigma: float) -> F64Array:
    """A lognormal factor varying smoothly in time: linear between keyed knots ``knot_s`` apart."""
    k = np.floor_divide(t, knot_s)
    w = (t - k * knot_s) / knot_s
    a = normal(key, k, stream)
    b = normal(key, k + 1, stream)
    out: F64Array = np.exp(sigma * ((1.0 - w) * a + w * b))
    return out


def _bump(hour: F64Array, start_h: F64Array, dur_h: F64Array) -> F64Array:
    """A raised-cosine episode shape: 0 outside [start, start + dur], 1 at its middle."""
    x = (hour - start_h) / dur_h
    shape: F64Array = np.where((x > 0) & (x < 1), 0.5 - 0.5 * np.cos(2 * np.pi * x), 0.0)
    return shape


@dataclass(frozen=True)
class AirStations:
    key: U64Array
    region_key: U64Array  # one value: the key of the shared regional background
    pm25: F64Array
    no2: F64Array
    so2: F64Array
    co: F64Array
    traffic: F64Array
    coarse: F64Array
    burning: F64Array
    industrial: BoolArray
    coal: BoolArray

    @classmethod
    def build(cls, key: U64Array, region_key: int, profiles: Sequence[str]) -> AirStations:
        table = np.array([profile_of(p) for p in profiles], dtype=np.float64).reshape(-1, 7)
        return cls(
            key=key,
            region_key=np.array([region_key], dtype=np.uint64),
            pm25=table[:, 0],
            no2=table[:, 1],
            so2=table[:, 2],
            co=table[:, 3],
            traffic=table[:, 4],
            coarse=table[:, 5],
            burning=table[:, 6],
            industrial=np.array(["industrial" in p.lower() for p in profiles], dtype=bool),
            coal=np.array(["coal" in p.lower() for p in profiles], dtype=bool),
        )

    @property
    def metrics(self) -> tuple[str, ...]:
        return (
            "pm25_ugm3", "pm10_ugm3", "no2_ugm3", "so2_ugm3", "o3_ugm3", "co_ugm3", "temp_c",
            "rh_pct",
        )  # fmt: skip

    def values(self, idx: I64Array, t_s: I64Array) -> F64Array:
        """Readings of stations ``idx`` at times ``t_s`` (Unix s), columns as in :attr:`metrics`.

        Concentrations in ug/m3 (CO too), temp_c in degC, rh_pct in percent.
        """
        t = np.asarray(t_s, dtype=np.int64)
        key = self.key[idx]
        day = local_day(t)
        hour = local_hour(t)
        _, doy = month_and_doy(day)
        dry = dryness(doy)
        sunday = weekday(day) == 6
        region = _knots(
            np.broadcast_to(self.region_key, t.shape), t, REGION_KNOT_S, _S_REGION, 0.35
        )
        local = _knots(key, t, LOCAL_KNOT_S, _S_LOCAL, 0.15)
        rush = np.exp(-(((hour - 7.0) / 1.3) ** 2)) + 0.9 * np.exp(-(((hour - 17.5) / 1.8) ** 2))
        rush = rush * np.where(sunday, 0.6, 1.0)
        traffic = self.traffic[idx]
        inversion = 1.0 + 0.35 * (
            np.exp(-(((hour - 2.0) / 3.5) ** 2)) + np.exp(-(((hour - 26.0) / 3.5) ** 2))
        )
        season = 0.6 + 0.8 * dry
        smooth = region**0.9 * local * season * inversion
        pm25 = self.pm25[idx] * smooth * (1.0 - traffic + traffic * (0.55 + 1.1 * rush))
        pm25 = pm25 * np.exp(0.04 * normal(key, t, _S_PM))

        # Open burning: some evenings, far more often in the dry season.
        burn = uniform(key, day, _S_BURN) < self.burning[idx] * (0.05 + 0.3 * dry)
        burn_shape = burn * _bump(
            hour, 17.0 + 3.5 * uniform(key, day, _S_BURN_T), np.full(t.shape, 2.5)
        )
        burn_pm = burn_shape * (30.0 + 90.0 * uniform(key, day, _S_BURN_A))
        # Tahunan: sanding dust on working days (Monday-Saturday, 08-16), with heavier days.
        working = self.industrial[idx] & ~sunday
        heavy = uniform(key, day, _S_IND) < 0.15
        dust = (
            working
            * _bump(hour, np.full(t.shape, 7.5), np.full(t.shape, 9.0))
            * np.where(heavy, 80.0 + 120.0 * uniform(key, day, _S_IND_A), 25.0)
        )
        # Tanjung Jati B: the daytime sea breeze brings the plume to the fence line.
        plume = self.coal[idx] & (uniform(key, day, _S_PLUME) < 0.2 + 0.25 * dry)
        plume_shape = plume * _bump(
            hour, 9.0 + 4.0 * uniform(key, day, _S_PLUME_T), np.full(t.shape, 4.0)
        )
        plume_a = 0.5 + 0.5 * uniform(key, day, _S_PLUME_A)

        pm25 = pm25 + burn_pm + 0.3 * dust + 25.0 * plume_a * plume_shape
        ratio = self.coarse[idx] * (1.0 + 0.08 * uniform(key, t, _S_RATIO))
        pm10 = np.maximum(pm25 * ratio, pm25 * 1.25) + dust
        gas = 0.08 * normal(key, t, _S_GAS)
        busy = 0.45 + 1.1 * traffic * rush + 0.3 * inversion
        no2 = (
            self.no2[idx] * region**0.5 * local * busy * np.exp(gas + 0.05 * normal(key, t, _S_NO2))
            + 80.0 * plume_a * plume_shape
        )
        so2 = (self.so2[idx] * region**0.4 * local * np.exp(0.06 * normal(key, t, _S_SO2))
               + 250.0 * plume_a * plume_shape)  # fmt: skip
        co = (self.co[idx] * region**0.7 * local * (0.5 + 0.9 * traffic * rush)
              * np.exp(gas + 0.05 * normal(key, t, _S_CO)) + 15.0 * burn_pm)  # fmt: skip
        sun = np.maximum(np.sin(np.pi * (hour - 7.0) / 11.0), 0.0) * ((hour >= 7) & (hour <= 18))
        o3 = np.maximum(
            20.0 + 75.0 * sun**1.5 * (0.7 + 0.5 * dry) - 0.3 * (no2 - self.no2[idx] * 0.5)
            + 2.0 * normal(key, t, _S_O3),
            2.0,
        )  # fmt: skip
        temp = (26.5 + 0.8 * dry + 3.8 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
                + 0.25 * normal(key, t, _S_TEMP))  # fmt: skip
        rh = np.clip(
            82.0 - 3.0 * (temp - 27.0) + 8.0 * (1.0 - dry) + 2.0 * normal(key, t, _S_RH),
            35.0,
            100.0,
        )
        out: F64Array = np.stack(
            [
                pm25.round(1),
                pm10.round(1),
                np.maximum(no2, 0.5).round(1),
                np.maximum(so2, 0.5).round(1),
                o3.round(1),
                co.round(0),
                temp.round(1),
                rh.round(0),
            ],
            axis=1,
        )
        return out
