"""Ground truth for the journeys, from the simulator's own models and the labels of the faults
it injected, never from Pantau's code: what the bins, counters and stations really did, and
the ISPU tables as docs/reference/ispu.md prints them.

The models give the clean signal (the readings as they would be without faults); where a
fault changed what was published, a figure built from it may differ, so the journeys compare
exactly only what no fault touched, and say so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulators.fleet import FleetSimulator
from simulators.footfall import FootfallCounters
from simulators.frame import Group
from simulators.labels import Label
from simulators.waste import WasteBins
from tests.fixtures.journeys import JourneyData

MIN_S = 60
HOUR_S = 3600
DAY_S = 86_400
WIB_S = 7 * HOUR_S
DASH = "\N{EN DASH}"  # the tables write ranges as 0\N{EN DASH}50
ISPU_DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "ispu.md"


def group(sim: FleetSimulator) -> Group:
    """The simulator's one group (each journey simulator holds one kind)."""
    (only,) = sim.groups
    return only


def counters(sim: FleetSimulator) -> FootfallCounters:
    model = group(sim).model
    if not isinstance(model, FootfallCounters):
        raise TypeError(f"not a footfall simulator: {type(model).__name__}")
    return model


def bins(sim: FleetSimulator) -> WasteBins:
    model = group(sim).model
    if not isinstance(model, WasteBins):
        raise TypeError(f"not a waste bin simulator: {type(model).__name__}")
    return model


def local_midnight_s(t_s: int) -> int:
    return (t_s + WIB_S) // DAY_S * DAY_S - WIB_S


def wib(t_s: float) -> str:
    """``Mon 12:00`` in WIB, for the printed figures."""
    t = int(t_s) + WIB_S
    day = ("Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed")[(t // DAY_S) % 7]
    return f"{day} {t % DAY_S // HOUR_S:02d}:{t % HOUR_S // MIN_S:02d}"


class Faults:
    """The injected faults, by sensor."""

    def __init__(self, labels: tuple[Label, ...]) -> None:
        self.by_sensor: dict[str, list[Label]] = {}
        for label in labels:
            self.by_sensor.setdefault(label.sensor_id, []).append(label)

    def touching(
        self,
        sensor_id: str,
        t0_ms: int,
        t1_ms: int,
        *,
        metrics: tuple[str, ...] = (),
        kinds: tuple[str, ...] = (),
    ) -> list[Label]:
        """Faults of ``sensor_id`` whose window meets [t0_ms, t1_ms]; with ``metrics``, only
        those of these metrics or of the whole device; with ``kinds``, only those kinds."""
        return [
            f
            for f in self.by_sensor.get(sensor_id, [])
            if f.start_ms <= t1_ms
            and f.end_ms >= t0_ms
            and (not metrics or not f.metric or f.metric in metrics)
            and (not kinds or f.kind in kinds)
        ]


# --- tourism --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneNow:
    """A zone's counts as Pantau defines them, from the clean counts of all its counters."""

    ts_s: int  # end of the newest counting minute (0: none)
    occupancy: float  # cumulative in - out, clamped at 0
    visitors: float  # cumulative in
    peak: float  # the largest occupancy in the span
    over_capacity_min: int  # minutes over capacity in the span
    first_over_s: int  # when the zone first went over capacity (0: never)


def zone_counts(data: JourneyData, zone_id: str, start_s: int, end_s: int) -> ZoneNow:
    """The zone's occupancy and visitors over the counting minutes that end in
    (start_s, end_s] and begin before ``end_s`` (what `pantau process` as of ``end_s`` has),
    from the simulated counts of every counter of the zone."""
    g = group(data.sims["footfall"])
    minute_end: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    for i, sensor_id in enumerate(g.ids):
        if data.zone_of(sensor_id) != zone_id:
            continue
        _, slot = g.due(start_s - MIN_S, end_s, np.array([i]))
        slot = slot[slot < end_s]
        end = slot // MIN_S * MIN_S + MIN_S
        keep = (end > start_s) & (end <= end_s)
        minute_end.append(end[keep])
        counts.append(g.model.values(np.full(int(keep.sum()), i), slot[keep]))
    if not minute_end or not np.concatenate(minute_end).size:
        return ZoneNow(0, 0.0, 0.0, 0.0, 0, 0)
    # One row per minute with the zone's counters summed, as Pantau sums its 1-minute rollups.
    ends, row = np.unique(np.concatenate(minute_end), return_inverse=True)
    values = np.stack([np.bincount(row, np.concatenate(counts)[:, j]) for j in (0, 1)], axis=1)
    net = np.cumsum(values[:, 0] - values[:, 1])
    occupancy = net - np.minimum(np.minimum.accumulate(net), 0.0)
    capacity = data.zone(zone_id).capacity_persons or math.inf
    over = occupancy > capacity
    # Minutes over capacity: each count holds until the next one.
    held = np.diff(np.append(ends, end_s)) // MIN_S
    return ZoneNow(
        ts_s=int(ends[-1]),
        occupancy=float(occupancy[-1]),
        visitors=float(values[:, 0].sum()),
        peak=float(occupancy.max()),
        over_capacity_min=int(held[over].sum()),
        first_over_s=int(ends[over][0]) if over.any() else 0,
    )


def arrivals_between(data: JourneyData, zone_id: str, t0_s: int, t1_s: int) -> int:
    """Visitors who entered the zone in [t0_s, t1_s), by the simulator's own visitor list."""
    g = group(data.sims["footfall"])
    total = 0
    for i, sensor_id in enumerate(g.ids):
        if data.zone_of(sensor_id) != zone_id:
            continue
        for day in range((t0_s + WIB_S) // DAY_S, (t1_s - 1 + WIB_S) // DAY_S + 1):
            arrive, _ = counters(data.sims["footfall"]).visitors(day)
            day0 = day * DAY_S - WIB_S
            lo = (i << 32) + max(t0_s - day0, 0)
            hi = (i << 32) + min(t1_s - day0, DAY_S + 1)
            total += int(np.searchsorted(arrive, hi, "left") - np.searchsorted(arrive, lo, "left"))
    return total


# --- waste ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    sensor_id: str
    at_s: float  # when the round emptied the bin
    fill_before_pct: float  # the bin's last report before it


def collections(data: JourneyData, t0_s: int, t1_s: int) -> list[Collection]:
    """Every emptying by a collection round in (t0_s, t1_s] that a report after it shows."""
    g = group(data.sims["waste_bin"])
    days = np.arange((t0_s + WIB_S) // DAY_S, (t1_s + WIB_S) // DAY_S + 1, dtype=np.int64)
    when = bins(data.sims["waste_bin"]).collection_s(np.arange(len(g.ids), dtype=np.int64), days)
    found = []
    for i, sensor_id in enumerate(g.ids):
        interval, phase = int(g.interval_s[i]), int(g.phase_s[i])
        for tc in when[i][np.isfinite(when[i])]:
            before = math.floor((tc - phase) / interval) * interval + phase
            before -= interval if before >= tc else 0  # the last report before it
            if t0_s < tc and before + interval <= t1_s:
                fill = float(g.model.values(np.array([i]), np.array([before]))[0, 0])
                found.append(Collection(sensor_id, float(tc), fill))
    return found


def bin_values(data: JourneyData, sensor_id: str, t_s: np.ndarray) -> np.ndarray:
    """The bin's clean readings at ``t_s``: fill_pct, distance_cm, battery_v, temp_c, tilt."""
    g = group(data.sims["waste_bin"])
    i = g.ids.index(sensor_id)
    return g.model.values(np.full(t_s.shape, i), t_s)


def report_slots(data: JourneyData, sensor_id: str, t0_s: int, t1_s: int) -> np.ndarray:
    """The sensor's report times in (t0_s, t1_s]."""
    for sim in data.sims.values():
        g = group(sim)
        if sensor_id in g.ids:
            return g.due(t0_s, t1_s, np.array([g.ids.index(sensor_id)]))[1]
    raise KeyError(sensor_id)


def overflow_hours(data: JourneyData, sensor_id: str, t0_s: int, t1_s: int) -> float:
    """Hours the bin spent at or above 100 %: each report's state holds until the next."""
    slots = report_slots(data, sensor_id, t0_s, t1_s)
    fill = bin_values(data, sensor_id, slots)[:, 0]
    return float(np.diff(slots)[fill[:-1] >= 100.0].sum() / HOUR_S)


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) in degrees, on a 6,371 km sphere."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000.0 * math.asin(math.sqrt(h))


# --- air ------------------------------------------------------------------------------------


def pm25_trailing_mean(data: JourneyData, sensor_id: str, end_s: int) -> float:
    """The station's clean PM2.5: the mean of the 24 hourly means of the hours before ``end_s``."""
    g = group(data.sims["air_quality"])
    i = g.ids.index(sensor_id)
    column = g.model.metrics.index("pm25_ugm3")
    means = []
    for hour in range(end_s - 24 * HOUR_S, end_s, HOUR_S):
        _, slots = g.due(hour - 1, hour + HOUR_S - 1, np.array([i]))
        means.append(float(g.model.values(np.full(slots.shape, i), slots)[:, column].mean()))
    return float(np.mean(means))


@dataclass(frozen=True)
class IspuTables:
    """docs/reference/ispu.md: the categories (section 2), the upper concentration of each
    band for every pollutant (section 3), and the US AQI PM2.5 segments (section 4)."""

    categories: list[tuple[float, float, str]]  # (lowest, highest ISPU, category)
    uppers: dict[str, list[float]]  # pollutant -> upper concentration of bands 50..500
    us_pm25: list[tuple[float, float, float, float]]  # (aqi lo, aqi hi, conc lo, conc hi)

    def category(self, ispu: float) -> str:
        for lo, hi, name in self.categories:
            if lo <= ispu <= hi:
                return name
        raise ValueError(f"ISPU {ispu} is in no category of {ISPU_DOC.name}")

    def subindex(self, pollutant: str, conc: float) -> float:
        """Convention (a) of section 3: contiguous segments, rounded half up."""
        bounds = [0.0, *self.uppers[pollutant]]
        indices = [0.0, 50.0, 100.0, 200.0, 300.0, 500.0]
        for k in range(1, len(bounds)):
            if conc <= bounds[k]:
                x = (indices[k] - indices[k - 1]) / (bounds[k] - bounds[k - 1])
                return math.floor(x * (conc - bounds[k - 1]) + indices[k - 1] + 0.5)
        return 500.0

    def us_aqi(self, pm25: float) -> float:
        """Section 4: truncate to 0.1 µg/m³, gapped segments, rounded."""
        c = math.floor(pm25 * 10) / 10
        for alo, ahi, clo, chi in self.us_pm25:
            if c <= chi:
                return round((ahi - alo) / (chi - clo) * (c - clo) + alo)
        return 500.0


def ispu_tables() -> IspuTables:
    text = ISPU_DOC.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    two = next(s for s in sections if s.startswith("2."))
    three = next(s for s in sections if s.startswith("3."))
    four = next(s for s in sections if s.startswith("4."))
    categories = []
    for cells in _rows(two):
        band, name = cells[0], cells[1]
        if band.startswith(">"):
            categories.append((float(band[1:]) + 1, math.inf, name))
        elif DASH in band:
            lo, hi = band.split(DASH)
            categories.append((float(lo), float(hi), name))
    header, *rows = _rows(three)
    uppers = {
        name.lower().replace(".", ""): [float(r[j].replace(" ", "")) for r in rows]
        for j, name in enumerate(header)
        if j > 0
    }
    us = []
    for cells in _rows(four):
        if DASH in cells[0] and DASH in cells[2]:
            alo, ahi = (float(x) for x in cells[0].split(DASH))
            clo, chi = (float(x) for x in cells[2].split(DASH))
            us.append((alo, ahi, clo, chi))
    return IspuTables(categories, uppers, us)


def _rows(section: str) -> list[list[str]]:
    """The cells of a section's first markdown table, header first, without the rule row."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return [row for row in cells if not set("".join(row)) <= set("-: ")]


# --- health ---------------------------------------------------------------------------------


def offline_now(data: JourneyData, k: float = 3.0) -> dict[str, tuple[str, int]]:
    """The sensors an injected offline fault keeps from reporting at "now": sensor id ->
    (``last_will`` when its retained status says offline, else ``silent`` once its last
    report is more than ``k`` intervals old; the fault's first missing report, ms). A fault
    still young, without a will, is not yet visible and is left out."""
    interval_ms = {s.id: s.interval_s * 1000 for s in data.fleet.sensors}
    status: dict[str, str] = {}
    for p in data.statuses:
        if p.publish_ms <= data.now_ms:
            status[p.sensor_id] = p.payload.decode()
    found = {}
    for f in data.labels:
        step = interval_ms[f.sensor_id]
        if f.kind != "offline" or not f.start_ms <= data.now_ms < f.end_ms + step:
            continue
        if status.get(f.sensor_id) == "offline":
            found[f.sensor_id] = ("last_will", f.start_ms)
        elif data.now_ms - (f.start_ms - step) > k * step:
            found[f.sensor_id] = ("silent", f.start_ms)
    return found
