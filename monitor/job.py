"""One run of the scheduled job, and the loop that repeats it.

Order matters within a run: the heard last wills, health (offline sensors), then the domain
tables (waste, air, tourism, and hourly the village figures), then alarms, which read all of
them. Each part runs in its own transaction. A part that raises (data it cannot handle, a table
its login may not read) rolls back only itself; it is logged with the time, the error and a
bounded description of what it read (:class:`monitor.inputs.Inputs`), counted (the report's
``failed``, and per part in ``job_runs.failures``), and the other parts still run and commit.
Only a broken connection stops the run. The alarm rules fed by a part that failed in this run
are held (:data:`monitor.alarms.SOURCE`): the other rules are evaluated on what is stored.

A session-level advisory lock makes a second ``pantau process`` wait instead of doing the same
work twice.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from monitor.air import run_air
from monitor.alarms import run_alarms
from monitor.db import Conn
from monitor.health import run_health, store_wills
from monitor.inputs import Inputs
from monitor.settings import ProcessSettings
from monitor.tourism import run_tourism
from monitor.waste import run_village_figures, run_waste
from pantau.db.connect import connect
from pantau.db.migrate import require_current
from pantau.timestamps import MAX_TS_MS, utc

logger = logging.getLogger(__name__)
LOCK_KEY = 0x70616E746175  # "pantau"
VILLAGE_EVERY_MS = 3_600_000  # the per-village figures cover weeks: hourly is enough

# One status row per job; ``failures`` adds this run's failed parts to the counts so far.
_STATUS = """
INSERT INTO job_runs (job, last_run_at, duration_ms, detail, failures)
VALUES ('process', now(), %s, %s, %s)
ON CONFLICT (job) DO UPDATE SET
    last_run_at = now(), duration_ms = EXCLUDED.duration_ms, detail = EXCLUDED.detail,
    failures = (
        SELECT coalesce(jsonb_object_agg(p, coalesce((job_runs.failures ->> p)::int8, 0)
                                            + coalesce((EXCLUDED.failures ->> p)::int8, 0)),
                        '{}')
        FROM jsonb_object_keys(job_runs.failures || EXCLUDED.failures) AS p)
RETURNING failures"""

Part = Callable[[Inputs], Any]


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
        # Wills heard but not stored yet (their part failed): kept for the next run.
        self.wills: dict[str, tuple[str, int]] = {}
        conn.commit()

    def run_once(
        self, at_ms: int, wills: dict[str, tuple[str, int]] | None = None, *, live: bool = False
    ) -> dict[str, Any]:
        """Every part of the job as of ``at_ms`` (Unix ms); returns what each part did.

        ``live``: ``at_ms`` is the wall clock's now, and sensor health judges silence by when
        each sensor was last heard; otherwise ``at_ms`` is a simulated time, judged by the
        readings' own times (:mod:`monitor.health`). A part that fails is reported as
        ``{"error": ...}`` and listed in ``failed``, never raised; a broken connection is
        raised. Raises ValueError for a time outside the years 1970 to 9999.
        """
        if not 0 <= at_ms <= MAX_TS_MS:
            raise ValueError(f"at_ms {at_ms} is outside the years 1970 to 9999")
        started = time.perf_counter()
        self.wills.update(wills or {})
        report: dict[str, Any] = {}
        failed: list[str] = []
        settings, conn, metric_ids = self.settings, self.conn, self.metric_ids
        parts: list[tuple[str, Part]] = [
            ("wills", lambda i: store_wills(conn, self.wills, i)),
            ("health", lambda i: run_health(conn, at_ms, settings, i, live=live)),
            ("waste", lambda i: run_waste(conn, at_ms, metric_ids, settings, i)),
            ("air", lambda i: run_air(conn, at_ms, metric_ids, settings, i)),
            ("tourism", lambda i: run_tourism(conn, at_ms, metric_ids, settings, i)),
        ]
        villages_due = (
            at_ms - self.last_village_ms >= VILLAGE_EVERY_MS or at_ms < self.last_village_ms
        )
        if villages_due:
            days = settings.village_period_days
            parts.append(
                ("villages", lambda i: run_village_figures(conn, at_ms, metric_ids, days, i))
            )
        parts.append(("alarms", lambda i: run_alarms(conn, at_ms, settings, i, failed=failed)))
        for name, part in parts:
            inputs = Inputs()
            try:
                with conn.transaction():
                    report[name] = part(inputs)
            except Exception as exc:
                if conn.broken:
                    raise
                failed.append(name)
                report[name] = {"error": describe_error(exc)}
                as_of = utc(at_ms).isoformat()
                # The traceback, the time to rerun it at and what it read: enough to reproduce.
                logger.exception(
                    "process: part %s failed as of %s (at_ms %d) and was rolled back; the other "
                    "parts go on. Rerun it on this database with `pantau process --at %s`. It "
                    "read: %s",
                    name, as_of, at_ms, as_of, json.dumps(inputs.describe()),
                )  # fmt: skip
        if "wills" not in failed:
            self.wills = {}
        if villages_due and "villages" not in failed:
            self.last_village_ms = at_ms
        report["failed"] = failed
        duration_ms = 1000 * (time.perf_counter() - started)
        report["failures"] = self._store_status(duration_ms, report, failed)
        report["duration_ms"] = round(duration_ms, 1)
        return report

    def _store_status(
        self, duration_ms: float, report: dict[str, Any], failed: list[str]
    ) -> dict[str, int] | None:
        """Write the job_runs row; returns the failures per part so far (None: not written,
        which is logged: the job goes on)."""
        try:
            with self.conn.transaction():
                row = self.conn.execute(
                    _STATUS,
                    (duration_ms, json.dumps(report), json.dumps(dict.fromkeys(failed, 1))),
                ).fetchone()
        except Exception:
            if self.conn.broken:
                raise
            logger.exception("process: the status row (job_runs) could not be written")
            return None
        return {str(k): int(v) for k, v in (row[0] if row else {}).items()}


def describe_error(exc: BaseException) -> str:
    """The exception's type and the first line of its message, bounded."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text[:300]


def run(
    settings: ProcessSettings,
    stop: threading.Event,
    *,
    once: bool = False,
    at_ms: int | None = None,
    wills: Callable[[], dict[str, tuple[str, int]]] = dict,
) -> dict[str, Any]:
    """Run the job every ``interval_s`` until ``stop`` (or once). Returns the last report.

    Without ``at_ms`` it runs live, as of the wall clock's now; with it, once as of that
    (simulated) time."""
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
            live = at_ms is None
            report = job.run_once(at_ms if at_ms is not None else now_ms(), wills(), live=live)
            logger.info("process: %s", json.dumps(report))
            if once or stop.wait(settings.interval_s):
                return report
