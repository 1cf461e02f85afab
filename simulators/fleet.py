"""The simulated fleet: which sensors report when, and the payload each one sends.

Each sensor reports every ``interval_s`` seconds of simulated time, at a fixed phase of its own
(so that 336 bins do not all report in the same second). :meth:`FleetSimulator.step` returns the
messages of every report due in a window of simulated time, in time order; it is pure apart from
the generator it owns, so a seed and a fleet always give the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from ingest.topic import telemetry_topic
from pantau.registry.fleet import Fleet, Sensor
from processing.arrays import F64Array, I64Array
from simulators.signals import AirStations, FootfallCounters, WasteBins


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    ts_ms: int
    readings: int


class _Group:
    """The sensors of one kind, with their model and schedule."""

    def __init__(
        self,
        kind: str,
        sensors: list[Sensor],
        model: WasteBins | AirStations | FootfallCounters,
        rng: np.random.Generator,
    ) -> None:
        self.kind = kind
        self.ids = [s.id for s in sensors]
        self.model = model
        self.interval_s: I64Array = np.array([s.interval_s for s in sensors], dtype=np.int64)
        self.phase_s: I64Array = (rng.uniform(0, 1, len(sensors)) * self.interval_s).astype(
            np.int64
        )

    def due(self, t0_s: int, t1_s: int) -> tuple[I64Array, I64Array]:
        """Every report slot in (t0, t1]: sensor indices and slot times (Unix s), aligned.

        Sensor ``i`` reports at the times ``t`` with ``(t - phase_s[i]) % interval_s[i] == 0``.
        """
        first = (t0_s - self.phase_s) // self.interval_s + 1
        last = (t1_s - self.phase_s) // self.interval_s
        counts = np.maximum(last - first + 1, 0)
        idx = np.repeat(np.arange(counts.shape[0]), counts)
        starts = np.cumsum(counts) - counts
        nth = np.arange(idx.shape[0]) - starts[idx]
        slot = first[idx] + nth
        return idx, slot * self.interval_s[idx] + self.phase_s[idx]


class FleetSimulator:
    def __init__(self, fleet: Fleet, seed: int, topic_root: str) -> None:
        self.rng = np.random.default_rng(seed)
        self.topic_root = topic_root
        by_kind: dict[str, list[Sensor]] = {}
        for s in fleet.sensors:
            by_kind.setdefault(s.kind, []).append(s)
        zones = {z.id: z for z in fleet.zones}
        self.groups: list[_Group] = []
        if bins := by_kind.get("waste_bin"):
            depth: F64Array = np.array(
                [float(s.params.get("depth_cm", 110)) for s in bins], dtype=np.float64
            )
            self.groups.append(_Group("waste_bin", bins, WasteBins.draw(depth, self.rng), self.rng))
        if stations := by_kind.get("air_quality"):
            profiles = [str(s.params.get("profile", "")) for s in stations]
            self.groups.append(
                _Group("air_quality", stations, AirStations.from_profiles(profiles), self.rng)
            )
        if counters := by_kind.get("footfall"):
            per_zone = {
                z: sum(1 for c in counters if c.zone == z) for z in {c.zone for c in counters}
            }
            peak = np.array(
                [
                    # A zone's capacity turns over about twice at the daily peak hour.
                    0.6 * (zones[c.zone].capacity_persons or 500) / per_zone[c.zone]
                    if c.zone in zones
                    else 100.0
                    for c in counters
                ],
                dtype=np.float64,
            )
            interval = np.array([c.interval_s for c in counters], dtype=np.float64)
            self.groups.append(
                _Group("footfall", counters, FootfallCounters(peak, interval), self.rng)
            )

    @property
    def sensor_count(self) -> int:
        return sum(len(g.ids) for g in self.groups)

    def step(self, t0_s: int, t1_s: int) -> list[Message]:
        """Messages of every report due in the simulated window (t0_s, t1_s], in time order."""
        out: list[Message] = []
        for group in self.groups:
            idx, slot_s = group.due(t0_s, t1_s)
            if idx.size == 0:
                continue
            values = group.model.sample(idx, slot_s.astype(np.float64), self.rng)
            names = list(values)
            table = np.stack([values[name] for name in names], axis=1).tolist()
            for row, i, ts_s in zip(table, idx.tolist(), slot_s.tolist(), strict=True):
                body: dict[str, float | int] = {"ts": ts_s * 1000}
                body.update(zip(names, row, strict=True))
                out.append(
                    Message(
                        topic=telemetry_topic(self.topic_root, group.kind, group.ids[i]),
                        payload=orjson.dumps(body),
                        ts_ms=ts_s * 1000,
                        readings=len(names),
                    )
                )
        out.sort(key=lambda m: m.ts_ms)
        return out
