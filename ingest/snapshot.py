"""The worker's in-memory copy of the registry and metrics catalog, loaded from the database.

Unknown sensors trigger a reload (at most every ``reload_every_s``), so a sensor registered while
the worker runs is accepted without a restart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from processing.validate import Catalog

Conn = psycopg.Connection[TupleRow]


@dataclass(frozen=True)
class SensorEntry:
    sensor_key: int
    kind: str
    kind_idx: int
    installed_ms: int


class Registry:
    def __init__(self, reload_every_s: float = 10.0) -> None:
        self.reload_every_s = reload_every_s
        self.sensors: dict[str, SensorEntry] = {}
        self.metric_ids: dict[str, int] = {}
        self.kinds: list[str] = []
        self.catalog = Catalog(
            min_value=np.zeros(0), max_value=np.zeros(0), allowed=np.zeros((0, 0), dtype=np.bool_)
        )
        self.loaded_at = -float("inf")

    def load(self, conn: Conn) -> None:
        kinds = [str(r[0]) for r in conn.execute("SELECT kind FROM sensor_kinds ORDER BY kind")]
        kind_idx = {k: i for i, k in enumerate(kinds)}
        metrics = conn.execute(
            "SELECT metric_id, name, min_value, max_value FROM metrics ORDER BY metric_id"
        ).fetchall()
        size = max((int(m[0]) for m in metrics), default=0) + 1
        min_value = np.full(size, np.inf)
        max_value = np.full(size, -np.inf)
        for metric_id, _, lo, hi in metrics:
            min_value[int(metric_id)] = float(lo)
            max_value[int(metric_id)] = float(hi)
        allowed = np.zeros((max(len(kinds), 1), size), dtype=np.bool_)
        for kind, metric_id in conn.execute("SELECT kind, metric_id FROM kind_metrics"):
            allowed[kind_idx[str(kind)], int(metric_id)] = True
        sensors = {}
        for sensor_id, key, kind, installed_ms in conn.execute(
            "SELECT sensor_id, sensor_key, kind,"
            " (extract(epoch FROM installed_at) * 1000)::bigint FROM sensors WHERE active"
        ):
            sensors[str(sensor_id)] = SensorEntry(
                int(key), str(kind), kind_idx[str(kind)], int(installed_ms)
            )
        conn.commit()
        self.kinds = kinds
        self.metric_ids = {str(m[1]): int(m[0]) for m in metrics}
        self.catalog = Catalog(min_value=min_value, max_value=max_value, allowed=allowed)
        self.sensors = sensors
        self.loaded_at = time.monotonic()

    def due_for_reload(self) -> bool:
        return time.monotonic() - self.loaded_at >= self.reload_every_s
