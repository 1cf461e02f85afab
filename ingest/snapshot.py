"""The registry as the ingest worker sees it: an immutable snapshot of the sensors and the
metrics catalog. Pure: :func:`ingest.writer.load_snapshot` reads one from the database in one
transaction and builds it with :func:`build_snapshot`.

A snapshot never changes after it was built (its mappings are read-only and its arrays not
writeable). The worker replaces the one its pipeline uses by one attribute
assignment, so a reader on any thread sees either the old snapshot or the new one, never a mix.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

from processing.validate import Catalog

A = TypeVar("A", bound=np.ndarray[Any, Any])


@dataclass(frozen=True)
class SensorEntry:
    sensor_key: int
    kind: str
    kind_idx: int
    installed_ms: int


@dataclass(frozen=True)
class RegistrySnapshot:
    """Active sensors by id, metric ids by name, the sensor kinds (``kind_idx`` indexes them)
    and the validation catalog, as of ``loaded_at`` (``time.monotonic()`` seconds)."""

    sensors: Mapping[str, SensorEntry]
    metric_ids: Mapping[str, int]
    kinds: tuple[str, ...]
    catalog: Catalog
    loaded_at: float


def _frozen(array: A) -> A:
    array.flags.writeable = False
    return array


EMPTY = RegistrySnapshot(
    sensors=MappingProxyType({}),
    metric_ids=MappingProxyType({}),
    kinds=(),
    catalog=Catalog(
        min_value=_frozen(np.zeros(0)),
        max_value=_frozen(np.zeros(0)),
        allowed=_frozen(np.zeros((0, 0), dtype=np.bool_)),
    ),
    loaded_at=-float("inf"),
)


def build_snapshot(
    kinds: tuple[str, ...],
    metrics: Sequence[tuple[Any, ...]],
    kind_metrics: Sequence[tuple[Any, ...]],
    sensor_rows: Sequence[tuple[Any, ...]],
) -> RegistrySnapshot:
    """A snapshot from the registry's rows: the kinds in order, ``(metric_id, name, min_value,
    max_value)``, ``(kind, metric_id)`` and ``(sensor_id, sensor_key, kind, installed_ms)``."""
    kind_idx = {k: i for i, k in enumerate(kinds)}
    size = max((int(m[0]) for m in metrics), default=0) + 1
    min_value = np.full(size, np.inf)
    max_value = np.full(size, -np.inf)
    for metric_id, _, lo, hi in metrics:
        min_value[int(metric_id)] = float(lo)
        max_value[int(metric_id)] = float(hi)
    allowed = np.zeros((max(len(kinds), 1), size), dtype=np.bool_)
    for kind, metric_id in kind_metrics:
        allowed[kind_idx[str(kind)], int(metric_id)] = True
    sensors = {
        str(sensor_id): SensorEntry(int(key), str(kind), kind_idx[str(kind)], int(installed_ms))
        for sensor_id, key, kind, installed_ms in sensor_rows
    }
    return RegistrySnapshot(
        sensors=MappingProxyType(sensors),
        metric_ids=MappingProxyType({str(m[1]): int(m[0]) for m in metrics}),
        kinds=kinds,
        catalog=Catalog(
            min_value=_frozen(min_value), max_value=_frozen(max_value), allowed=_frozen(allowed)
        ),
        loaded_at=time.monotonic(),
    )
