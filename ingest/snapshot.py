"""The registry as the ingest worker sees it: an immutable snapshot of the sensors and the
metrics catalog, loaded from the database in one transaction.

A snapshot never changes after :func:`load_snapshot` built it (its mappings are read-only and
its arrays not writeable). The worker replaces the one its pipeline uses by one attribute
assignment, so a reader on any thread sees either the old snapshot or the new one, never a mix.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np
import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from processing.validate import Catalog

Conn = psycopg.Connection[TupleRow]
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


def load_snapshot(conn: Conn) -> RegistrySnapshot:
    """The registry as of now, read in one read-only REPEATABLE READ transaction on ``conn``, so
    that its queries see one state of the database (a kind, metric or sensor committed between
    two of them cannot make the parts disagree).

    ``conn`` must have no transaction open; it has none when this returns.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ValueError("load_snapshot needs a connection with no transaction open")
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        kinds = tuple(str(r[0]) for r in conn.execute("SELECT kind FROM sensor_kinds ORDER BY 1"))
        metrics = conn.execute(
            "SELECT metric_id, name, min_value, max_value FROM metrics ORDER BY metric_id"
        ).fetchall()
        kind_metrics = conn.execute("SELECT kind, metric_id FROM kind_metrics").fetchall()
        sensor_rows = conn.execute(
            "SELECT sensor_id, sensor_key, kind,"
            " (extract(epoch FROM installed_at) * 1000)::bigint FROM sensors WHERE active"
        ).fetchall()
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


class Registry:
    """Transitional: the former mutable registry's shape (``Registry()``, then ``load(conn)``),
    kept for callers not yet moved to :func:`load_snapshot`. It holds one snapshot, replaced
    whole by ``load``; new code calls :func:`load_snapshot` and keeps the snapshot."""

    def __init__(self) -> None:
        self.snapshot = EMPTY

    def load(self, conn: Conn) -> None:
        self.snapshot = load_snapshot(conn)

    @property
    def sensors(self) -> Mapping[str, SensorEntry]:
        return self.snapshot.sensors

    @property
    def metric_ids(self) -> Mapping[str, int]:
        return self.snapshot.metric_ids
