"""The simulated fleet: sensors grouped by kind, their models, faults and message windows.

:class:`FleetSimulator` turns a fleet file into traffic. :meth:`FleetSimulator.frame` gives the
messages published in a window of simulated time (columnar, serialised on demand);
:meth:`FleetSimulator.step` the same as :class:`Message` objects. Windows must follow each
other without gaps for the labels to be complete; how a run is cut into windows changes
nothing in the stream (see :mod:`simulators.frame`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pantau.errors import ConfigError
from pantau.registry.fleet import Fleet, Sensor, Zone
from processing.arrays import F64Array, I64Array
from simulators.air import AirStations
from simulators.faults import Planner
from simulators.footfall import FootfallCounters
from simulators.frame import DATA, Group, GroupFrame, assemble
from simulators.keyed import U64Array, sensor_keys, uniform
from simulators.labels import Label, LabelBook
from simulators.metrics import FAULT_KINDS, KIND_METRICS, METRIC_NAMES
from simulators.payloads import FORMS, Message, serialise
from simulators.waste import WasteBins

__all__ = ["Columns", "FleetSimulator", "Frame", "Message"]

KINDS = ("waste_bin", "air_quality", "footfall")
_S_PHASE = 0x9A5E


@dataclass(frozen=True)
class Columns:
    """Readings as published, aligned: one element per reading, in publish order.

    ``sensor_idx`` indexes ``sensor_ids`` (the fleet's sensors in fleet-file order);
    ``metric_id`` indexes :data:`simulators.metrics.METRIC_NAMES`; ``ts_ms`` is the time the
    reading carries (shifted for a clock-skewed sensor); ``publish_ms`` is when its message was
    published (later than ``ts_ms`` for out-of-order delivery; a duplicate appears twice).
    Garbage messages carry no readings and are not here.
    """

    sensor_idx: I64Array
    metric_id: I64Array
    ts_ms: I64Array
    value: F64Array
    publish_ms: I64Array
    sensor_ids: tuple[str, ...]
    metric_names: tuple[str, ...] = METRIC_NAMES

    def __len__(self) -> int:
        return int(self.value.shape[0])

    @staticmethod
    def concat(parts: Sequence[Columns], sensor_ids: tuple[str, ...]) -> Columns:
        def cat(name: str, dtype: type) -> np.ndarray:
            arrays = [getattr(p, name) for p in parts]
            return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)

        return Columns(
            cat("sensor_idx", np.int64),
            cat("metric_id", np.int64),
            cat("ts_ms", np.int64),
            cat("value", np.float64),
            cat("publish_ms", np.int64),
            sensor_ids,
        )


@dataclass
class Frame:
    """The messages of one window, in publish order (ties: status first, then group, sensor)."""

    parts: list[GroupFrame]
    topic_root: str
    form: str
    sensor_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        part = np.concatenate(
            [np.full(p.publish_ms.shape[0], i, dtype=np.int64) for i, p in enumerate(self.parts)]
            or [np.zeros(0, dtype=np.int64)]
        )

        def cat(name: str) -> I64Array:
            arrays = [getattr(p, name) for p in self.parts]
            return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)

        row = np.concatenate(
            [np.arange(p.publish_ms.shape[0], dtype=np.int64) for p in self.parts]
            or [np.zeros(0, dtype=np.int64)]
        )
        rank = np.where(cat("status") == DATA, 1, 0)
        self.order = np.lexsort((cat("copy"), cat("sensor"), part, rank, cat("publish_ms")))
        self.part, self.row = part[self.order], row[self.order]

    def __len__(self) -> int:
        return int(self.order.shape[0])

    @property
    def readings(self) -> int:
        """Readings carried by the window's messages (garbage and status carry none)."""
        total = 0
        for p in self.parts:
            data = (p.status == DATA) & (p.garbage < 0)
            total += int(p.count[data].sum()) * len(p.group.specs)
        return total

    def messages(self) -> list[Message]:
        """The window's messages, serialised, in publish order."""
        serialised = [serialise(p, self.topic_root, self.form) for p in self.parts]
        return [
            serialised[p][r] for p, r in zip(self.part.tolist(), self.row.tolist(), strict=True)
        ]

    def columns(self) -> Columns:
        """The window's readings as aligned arrays (see :class:`Columns`)."""
        keys, parts = [], []
        position = np.empty(len(self), dtype=np.int64)
        position[self.order] = np.arange(len(self))
        offset = 0
        for p in self.parts:
            n_rows = p.publish_ms.shape[0]
            rank = position[offset : offset + n_rows]
            offset += n_rows
            msg = np.flatnonzero((p.status == DATA) & (p.garbage < 0))
            counts = p.count[msg]
            rep = np.repeat(p.first[msg], counts) + (
                np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
            )
            owner = np.repeat(msg, counts)
            m = len(p.group.specs)
            metric_ids = np.array([METRIC_NAMES.index(s.name) for s in p.group.specs])
            parts.append(
                Columns(
                    sensor_idx=np.repeat(p.group.fleet_idx[p.sensor[owner]], m),
                    metric_id=np.tile(metric_ids, rep.shape[0]),
                    ts_ms=np.repeat(p.stamp_ms[rep], m),
                    value=p.values[rep].ravel(),
                    publish_ms=np.repeat(p.publish_ms[owner], m),
                    sensor_ids=self.sensor_ids,
                )
            )
            keys.append(np.repeat(rank[owner], m))
        out = Columns.concat(parts, self.sensor_ids)
        if not parts:
            return out
        order = np.argsort(np.concatenate(keys), kind="stable")
        return Columns(
            out.sensor_idx[order],
            out.metric_id[order],
            out.ts_ms[order],
            out.value[order],
            out.publish_ms[order],
            self.sensor_ids,
        )


def _params(sensors: Sequence[Sensor], name: str, default: float) -> F64Array:
    return np.array([float(s.params.get(name, default)) for s in sensors], dtype=np.float64)


def _zone_profile(zone: Zone | None) -> str:
    """The footfall profile of a tourist zone: its ``profile`` parameter, else from its name."""
    if zone is None:
        return "heritage"
    if "profile" in zone.params:
        return str(zone.params["profile"])
    name = zone.name.lower()
    for word, profile in (("museum", "museum"), ("pantai", "beach"), ("beach", "beach")):
        if word in name:
            return profile
    return "heritage"


class FleetSimulator:
    """Simulated traffic of a fleet. See :mod:`simulators.scenario` for the in-memory API."""

    def __init__(
        self,
        fleet: Fleet,
        seed: int,
        topic_root: str,
        *,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = FAULT_KINDS,
        payload: str = "json",
        batch_s: int = 0,
    ) -> None:
        if payload not in FORMS:
            raise ConfigError(f"payload form {payload!r} is unknown", f"use one of {FORMS}")
        if payload == "batch" and batch_s <= 0:
            batch_s = 900
        if payload == "json" and batch_s:
            raise ConfigError("JSON objects carry one report each", "use --payload batch or senml")
        if batch_s < 0 or (batch_s and 3600 % batch_s):
            raise ConfigError(
                f"batch window {batch_s} s does not divide an hour", "use e.g. 300, 900 or 3600"
            )
        unknown = sorted(set(fault_kinds) - set(FAULT_KINDS))
        if unknown:
            raise ConfigError(f"unknown fault kinds {unknown}", f"use some of {FAULT_KINDS}")
        self.seed, self.topic_root, self.form, self.batch_s = seed, topic_root, payload, batch_s
        self.fleet_ids = tuple(s.id for s in fleet.sensors)
        zones = {z.id: z for z in fleet.zones}
        self.groups: list[Group] = []
        offset = 0
        for kind in KINDS:
            members = [(i, s) for i, s in enumerate(fleet.sensors) if s.kind == kind]
            if not members:
                continue
            sensors = [s for _, s in members]
            ids = [s.id for s in sensors]
            keys = sensor_keys(seed, ids)
            interval = np.array([s.interval_s for s in sensors], dtype=np.int64)
            phase = (uniform(keys, np.zeros(len(ids), dtype=np.int64), _S_PHASE) * interval).astype(
                np.int64
            )
            self.groups.append(
                Group(
                    kind=kind,
                    ids=ids,
                    offset=offset,
                    fleet_idx=np.array([i for i, _ in members], dtype=np.int64),
                    interval_s=interval,
                    phase_s=phase,
                    model=self._model(kind, sensors, keys, zones, interval),
                    specs=KIND_METRICS[kind],
                )
            )
            offset += len(ids)
        self.planner = Planner(
            seed=seed,
            rate_per_sensor_day=fault_rate,
            kinds=fault_kinds,
            sensor_kind=[g.kind for g in self.groups for _ in g.ids],
            interval_s=np.concatenate(
                [g.interval_s for g in self.groups] or [np.zeros(0, np.int64)]
            ),
            phase_s=np.concatenate([g.phase_s for g in self.groups] or [np.zeros(0, np.int64)]),
            batch_s=batch_s,
        )
        self.book = LabelBook()
        self.run_start_ms: int | None = None
        self._last_t1: int | None = None

    def _model(
        self,
        kind: str,
        sensors: list[Sensor],
        keys: U64Array,
        zones: dict[str, Zone],
        interval: I64Array,
    ) -> WasteBins | AirStations | FootfallCounters:
        zone_keys = sensor_keys(self.seed, [f"zone:{s.zone}" for s in sensors])
        if kind == "waste_bin":
            capacity_l = _params(sensors, "capacity_l", 660)
            default_rate = np.where(capacity_l >= 1000, 25.0, 18.0)
            return WasteBins.build(
                keys,
                zone_keys,
                _params(sensors, "depth_cm", 110),
                interval,
                np.array(
                    [
                        float(s.params.get("fill_pct_per_day", r))
                        for s, r in zip(sensors, default_rate, strict=True)
                    ]
                ),
                [list(s.params.get("collection_days", ["mon", "thu"])) for s in sensors],
            )
        if kind == "air_quality":
            region = int(sensor_keys(self.seed, ["air-region"])[0])
            return AirStations.build(
                keys, region, [str(s.params.get("profile", "")) for s in sensors]
            )
        gates: dict[str | None, int] = {}
        for s in sensors:
            gates[s.zone] = gates.get(s.zone, 0) + 1
        zone_of = [zones.get(s.zone) if s.zone else None for s in sensors]
        return FootfallCounters.build(
            keys,
            zone_keys,
            self.seed,
            np.array([float((z.capacity_persons if z else None) or 500) for z in zone_of]),
            np.array([float(gates[s.zone]) for s in sensors]),
            [_zone_profile(z) for z in zone_of],
            np.array([bool(z.params.get("lomban", False)) if z else False for z in zone_of]),
            interval,
        )

    @property
    def sensor_count(self) -> int:
        return sum(len(g.ids) for g in self.groups)

    def messages_per_s(self) -> float:
        """Messages the fleet publishes per simulated second (without faults)."""
        if self.batch_s:
            return self.sensor_count / self.batch_s
        return float(sum((1.0 / g.interval_s).sum() for g in self.groups))

    def readings_per_s(self) -> float:
        """Readings the fleet publishes per simulated second (without faults)."""
        return float(sum((len(g.specs) / g.interval_s).sum() for g in self.groups))

    def frame(self, t0_s: int, t1_s: int) -> Frame:
        """The messages published in the simulated window (t0_s, t1_s] (Unix s)."""
        if self.run_start_ms is None:
            self.run_start_ms = t0_s * 1000
        elif self._last_t1 is not None and t0_s != self._last_t1:
            raise ValueError(f"window starts at {t0_s}, the previous one ended at {self._last_t1}")
        self._last_t1 = t1_s
        lookback_s = self.planner.max_delay_ms // 1000 + max(self.batch_s, 1)
        plan = self.planner.window(t0_s - lookback_s, t1_s)
        parts = [
            assemble(
                g,
                plan,
                t0_s,
                t1_s,
                batch_s=self.batch_s,
                book=self.book,
                run_start_ms=self.run_start_ms,
            )
            for g in self.groups
        ]
        return Frame(parts, self.topic_root, self.form, self.fleet_ids)

    def step(self, t0_s: int, t1_s: int) -> list[Message]:
        """Messages published in the simulated window (t0_s, t1_s], in publish order."""
        return self.frame(t0_s, t1_s).messages()

    def labels(self) -> list[Label]:
        """Faults injected so far, each with the span of the readings it changed."""
        return self.book.labels()
