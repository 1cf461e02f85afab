"""Constructed scenarios for `pantau process`, against the real database.

Readings go in through the ingest writer (rollups, detectors and the time each sensor was
heard included), then the job runs as of chosen times, as it would on a schedule: in simulated
time (``run``, the default: times are a scenario's own) or live (``run_live``: as of the wall
clock, judged by arrival).
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import numpy as np
import psycopg

from ingest.batch import Readings
from ingest.derive import Detection
from ingest.writer import Writer, load_snapshot
from monitor.job import Job, now_ms
from monitor.settings import ProcessSettings
from pantau.registry.fleet import parse_fleet
from pantau.registry.load import load_into
from processing.rules import metric_rules

WIB = 7 * 3600 * 1000
MIN = 60_000
HOUR = 60 * MIN
# Monday 2026-11-23 00:00 WIB.
DAY0 = int(datetime(2026, 11, 22, 17, 0, tzinfo=UTC).timestamp() * 1000)

FLEET = {
    "fleet": {"name": "test", "description": "constructed scenarios"},
    "zones": [
        {"id": "V-1", "name": "Desa Satu", "kind": "village", "lat": -6.6, "lon": 110.7},
        {"id": "V-2", "name": "Desa Dua", "kind": "village", "lat": -6.61, "lon": 110.71},
        {
            "id": "T-1",
            "name": "Pantai",
            "kind": "tourism",
            "lat": -6.5,
            "lon": 110.6,
            "area_m2": 1000,
            "capacity_persons": 100,
            "params": {"closing": "18:00"},
        },
        {"id": "A-1", "name": "Stasiun", "kind": "air_site", "lat": -6.58, "lon": 110.66},
    ],
    "sensors": [
        {"id": "bin-fill", "kind": "waste_bin", "zone": "V-1", "interval_s": 900},
        {"id": "bin-over", "kind": "waste_bin", "zone": "V-2", "interval_s": 900},
        {"id": "aq-1", "kind": "air_quality", "zone": "A-1", "interval_s": 3600},
        {"id": "gate-in", "kind": "footfall", "zone": "T-1", "interval_s": 60},
        {"id": "gate-out", "kind": "footfall", "zone": "T-1", "interval_s": 60},
        # Reports every second: silence in real time within a test's patience.
        {"id": "aq-fast", "kind": "air_quality", "zone": "A-1", "interval_s": 1},
    ],
}

# Tables the writer and the job fill; emptied between the examples of a property test.
DATA_TABLES = (
    "readings", "latest", "rollup_1m", "rollup_15m", "rollup_1h", "rollup_1d", "anomalies",
    "detector_state", "rejects", "sensor_heard", "sensor_status", "alarms", "alarm_conditions",
    "waste_events", "waste_status", "waste_village_figures", "air_ispu_hourly",
    "tourism_status", "tourism_hourly", "job_runs",
)  # fmt: skip


def at(day: int, hour: float) -> int:
    """Unix ms of ``hour`` WIB on day ``day`` after Monday 2026-11-23."""
    return DAY0 + day * 24 * HOUR + int(hour * HOUR)


class Scenario:
    def __init__(self, url: str, job_url: str | None = None, **settings: object) -> None:
        """The test fleet in the database at ``url``; the job connects to ``job_url`` (a
        service login; default ``url``) with ``settings`` over the defaults."""
        self.url = url
        self.conn = psycopg.connect(url)
        load_into(self.conn, parse_fleet(FLEET))
        self.conn.commit()
        registry = load_snapshot(self.conn)
        self.keys = {sid: e.sensor_key for sid, e in registry.sensors.items()}
        self.metrics = registry.metric_ids
        self.writer = Writer(psycopg.connect(url), Detection(metric_rules(self.metrics)))
        self.job_conn = self.conn if job_url is None else psycopg.connect(job_url)
        self.settings = ProcessSettings(
            database_url=job_url or url, **{"collection_hour": 7, **settings}
        )
        self.job = Job(self.job_conn, self.settings)

    def write(
        self,
        sensor: str,
        metric: str,
        ts_ms: np.ndarray,
        value: np.ndarray,
        *,
        extreme: bool = False,
    ) -> None:
        """Write readings through the ingest writer. ``extreme``: values ingest's validation
        would reject (NaN, 1e308): the writer's rollups square them into infinities, which
        NumPy warns about; those warnings are the writer's, not the job's, and are ignored."""
        n = ts_ms.shape[0]
        readings = Readings(
            np.full(n, self.keys[sensor], np.int32),
            np.full(n, self.metrics[metric], np.int16),
            ts_ms.astype(np.int64),
            value.astype(np.float64),
        )
        self.write_batch(readings, extreme=extreme)

    def write_batch(self, readings: Readings, *, extreme: bool = False) -> None:
        """One batch through the ingest writer (``extreme``: as in :meth:`write`)."""
        with warnings.catch_warnings():
            if extreme:
                warnings.simplefilter("ignore", RuntimeWarning)
            self.writer.write(readings, [])

    def run(self, at_ms: int, wills: dict[str, tuple[str, int]] | None = None) -> dict[str, object]:
        """The job as of ``at_ms``, a simulated time."""
        return self.job.run_once(at_ms, wills)

    def run_live(self, wills: dict[str, tuple[str, int]] | None = None) -> dict[str, object]:
        """The job as of the wall clock's now, as the scheduled loop runs it."""
        return self.job.run_once(now_ms(), wills, live=True)

    def one(self, query: str, *params: object) -> tuple[object, ...]:
        row = self.conn.execute(query, params).fetchone()
        self.conn.commit()
        if row is None:
            raise AssertionError(f"no row: {query}")
        return tuple(row)

    def all(self, query: str, *params: object) -> list[tuple[object, ...]]:
        rows = self.conn.execute(query, params).fetchall()
        self.conn.commit()
        return [tuple(r) for r in rows]

    def status(self, sensor: str) -> tuple[object, ...]:
        """(online, reason) of a sensor in sensor_status."""
        return self.one(
            "SELECT online, reason FROM sensor_status st JOIN sensors s USING (sensor_key) "
            "WHERE s.sensor_id = %s",
            sensor,
        )

    def alarms(self, sensor: str, rule: str) -> list[object]:
        """States of a sensor's alarms of one rule, oldest first."""
        rows = self.all(
            "SELECT a.state FROM alarms a JOIN sensors s USING (sensor_key) "
            "WHERE s.sensor_id = %s AND a.rule = %s ORDER BY a.opened_at, a.state",
            sensor,
            rule,
        )
        return [r[0] for r in rows]

    def reset(self) -> None:
        """Empty every table the writer and the job fill, and start a new job (the fleet stays)."""
        self.conn.execute("TRUNCATE " + ", ".join(DATA_TABLES))
        self.conn.commit()
        self.job = Job(self.job_conn, self.settings)

    def close(self) -> None:
        self.writer.conn.close()
        if self.job_conn is not self.conn:
            self.job_conn.close()
        self.conn.close()
