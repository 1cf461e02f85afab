"""One run of the scheduled job, and the loop that repeats it.

Order matters within a run: health first (offline sensors), then the domain tables (waste, air,
tourism), then alarms, which read all of them. Each part commits on its own, so one failing
part does not hold back the others. A session-level advisory lock makes a second
``pantau process`` wait instead of doing the same work twice.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from monitor.air import run_air
from monitor.alarms import run_alarms
from monitor.db import Conn
from monitor.health import run_health, store_wills
from monitor.settings import ProcessSettings
from monitor.tourism import run_tourism
from monitor.waste import run_village_figures, run_waste
from pantau.db.connect import connect
from pantau.db.migrate import require_current

logger = logging.getLogger(__name__)
LOCK_KEY = 0x70616E746175  # "pantau"
VILLAGE_EVERY_MS = 3_600_000  # the per-village figures cover weeks: hourly is enough


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Job:
    def __init__(self, conn: Conn, settings: ProcessSettings) -> None:
        self.conn = conn
        self.settings = settings
        self.metric_ids = {
            str(name): int(mid) for mid, name in conn.execute("SELECT metric_id, name FROM metrics")
        }
        self.last_village_ms = -VILLAGE_EVERY_MS
        conn.commit()

    def run_once(
        self, at_ms: int, wills: dict[str, tuple[str, int]] | None = None
    ) -> dict[str, Any]:
        """Every part of the job as of ``at_ms``; returns what each part did."""
        started = time.perf_counter()
        report: dict[str, Any] = {}
        parts: list[tuple[str, Callable[[], Any]]] = [
            ("wills", lambda: store_wills(self.conn, wills or {})),
            ("health", lambda: run_health(self.conn, at_ms, self.settings)),
            ("waste", lambda: run_waste(self.conn, at_ms, self.metric_ids, self.settings)),
            ("air", lambda: run_air(self.conn, at_ms, self.metric_ids, self.settings)),
            ("tourism", lambda: run_tourism(self.conn, at_ms, self.metric_ids, self.settings)),
        ]
        if at_ms - self.last_village_ms >= VILLAGE_EVERY_MS or at_ms < self.last_village_ms:
            parts.append(("villages", lambda: self._villages(at_ms)))
        parts.append(("alarms", lambda: run_alarms(self.conn, at_ms, self.settings)))
        for name, part in parts:
            try:
                with self.conn.transaction():
                    report[name] = part()
            except psycopg.Error as exc:
                if self.conn.broken:
                    raise
                logger.exception("process: %s failed", name)
                report[name] = {"error": str(exc).strip().splitlines()[0]}
        duration_ms = 1000 * (time.perf_counter() - started)
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO job_runs (job, last_run_at, duration_ms, detail) "
                "VALUES ('process', now(), %s, %s) ON CONFLICT (job) DO UPDATE SET "
                "last_run_at = now(), duration_ms = EXCLUDED.duration_ms, detail = EXCLUDED.detail",
                (duration_ms, json.dumps(report)),
            )
        report["duration_ms"] = round(duration_ms, 1)
        return report

    def _villages(self, at_ms: int) -> int:
        self.last_village_ms = at_ms
        return run_village_figures(
            self.conn, at_ms, self.metric_ids, self.settings.village_period_days
        )


def run(
    settings: ProcessSettings,
    stop: threading.Event,
    *,
    once: bool = False,
    at_ms: int | None = None,
    wills: Callable[[], dict[str, tuple[str, int]]] = dict,
) -> dict[str, Any]:
    """Run the job every ``interval_s`` until ``stop`` (or once). Returns the last report."""
    with connect(settings.resolved_database_url(), application_name="pantau-process") as conn:
        require_current(conn)
        conn.commit()  # autocommit can only change outside a transaction
        conn.autocommit = True
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
            logger.info("another pantau process holds the lock; waiting")
            if stop.wait(settings.interval_s):
                return {}
        conn.autocommit = False
        job = Job(conn, settings)
        report: dict[str, Any] = {}
        while True:
            report = job.run_once(at_ms if at_ms is not None else now_ms(), wills())
            logger.info("process: %s", json.dumps(report))
            if once or stop.wait(settings.interval_s):
                return report
