"""A part of `pantau process` that fails, for real, fails alone: it is rolled back, logged with
what it read and counted, and the other parts commit; the alarms it feeds are held.

The failures are honest: a table the job's login may not read (its privilege revoked in the
test's own database), and a catalog without a metric a part needs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from monitor.job import Job
from ops.stack.local import StackState
from pantau.db.scratch import with_database
from pantau.timestamps import MAX_TS_MS
from tests.monitor.scenario import HOUR, MIN, Scenario, at

pytestmark = pytest.mark.integration


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


@pytest.fixture
def as_service(stack: StackState, db_url: str) -> Iterator[Scenario]:
    """A scenario whose job connects as `pantau process` does: the service login."""
    job_url = with_database(stack.database_urls["process"], db_url.rsplit("/", 1)[1])
    s = Scenario(db_url, job_url)
    yield s
    s.close()


def as_owner(s: Scenario, statement: str) -> None:
    s.conn.execute(statement)
    s.conn.commit()


def fill_every_part(s: Scenario) -> int:
    """A filling bin, a day of air, a crowded beach; returns a time to run the job at."""
    ts = at(0, 8) + np.arange(0, 13 * 4 + 1) * 15 * MIN
    s.write("bin-fill", "fill_pct", ts, 10 + 5 * (ts - ts[0]) / HOUR)
    hours = at(0, 0) + np.arange(24) * HOUR + 30 * MIN
    s.write("aq-1", "pm25_ugm3", hours, np.full(24, 40.0))
    minutes = at(0, 20) + np.arange(1, 61) * MIN
    s.write("gate-in", "count_in", minutes, np.full(60, 10.0))
    s.write("gate-out", "count_out", minutes, np.full(60, 4.0))
    return at(0, 21) + MIN


def counts(s: Scenario) -> dict[str, object]:
    tables = ("waste_status", "waste_village_figures", "air_ispu_hourly", "sensor_status")
    found = {t: s.one(f"SELECT count(*) FROM {t}")[0] for t in tables}
    found["tourism_status"] = s.one("SELECT count(*) FROM tourism_status")[0]
    return found


def failure_logs(caplog: pytest.LogCaptureFixture, part: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records
        if r.name == "monitor.job" and r.getMessage().startswith(f"process: part {part} failed")
    ]  # fmt: skip


def test_a_table_the_login_may_not_read_fails_its_part_alone(
    as_service: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    s = as_service
    now = fill_every_part(s)
    as_owner(s, "REVOKE SELECT ON tourism_hourly FROM pantau_writer")
    caplog.set_level(logging.ERROR, logger="monitor.job")
    report = s.run(now)
    assert report["failed"] == ["tourism"]
    assert "InsufficientPrivilege" in report["tourism"]["error"]  # type: ignore[index]
    assert "permission denied for table tourism_hourly" in report["tourism"]["error"]  # type: ignore[index]
    assert report["failures"] == {"tourism": 1}
    # The others committed; tourism's own writes (tourism_status) were rolled back.
    assert counts(s) == {
        "waste_status": 1, "waste_village_figures": 2, "air_ispu_hourly": 4,
        "sensor_status": 6, "tourism_status": 0,
    }  # fmt: skip
    assert report["alarms"]["held"] == ["crowding"]  # type: ignore[index]
    # Logged with the time to rerun at and what the part read before it failed.
    (record,) = failure_logs(caplog, "tourism")
    message = record.getMessage()
    assert f"as of {iso(now)} (at_ms {now})" in message
    assert f"pantau process --at {iso(now)}" in message
    read = json.loads(message.split("It read: ", 1)[1])
    assert read["zones"]["sample"] == [["T-1", 1000.0, 100.0, 18 * 60]]
    assert read["rollup_1m"]["rows"] == 120  # both counts of 60 minutes
    assert record.exc_info is not None
    # The status row counts it, and keeps counting on the next run.
    assert s.one("SELECT failures, detail -> 'failed' FROM job_runs") == (
        {"tourism": 1},
        ["tourism"],
    )
    assert s.run(now + MIN)["failures"] == {"tourism": 2}
    # Readable again: the part runs, the count stays as a record of what happened.
    as_owner(s, "GRANT SELECT ON tourism_hourly TO pantau_writer")
    report = s.run(now + 2 * MIN)
    assert report["failed"] == []
    assert report["failures"] == {"tourism": 2}
    assert counts(s)["tourism_status"] == 1


def test_a_held_rule_neither_opens_on_stale_figures_nor_loses_its_streak(
    as_service: Scenario,
) -> None:
    s = as_service
    now = fill_every_part(s)  # 360 people inside a zone for 100: over capacity
    s.run(now)
    (bad_since,) = s.one("SELECT bad_since FROM alarm_conditions WHERE rule = 'crowding'")
    as_owner(s, "REVOKE SELECT ON tourism_hourly FROM pantau_writer")
    # 11 minutes later the crowding alarm (10 minutes over capacity) would open on the stored,
    # stale tourism_status; the tourism part failed, so the rule is held instead.
    report = s.run(now + 11 * MIN)
    assert report["failed"] == ["tourism"]
    assert s.one("SELECT count(*) FROM alarms WHERE rule = 'crowding'") == (0,)
    assert s.one("SELECT bad_since FROM alarm_conditions WHERE rule = 'crowding'") == (bad_since,)
    # The other rules were evaluated: the bin predicted full before the round has its alarm.
    assert s.alarms("bin-fill", "bin_predicted_full") == ["open"]
    as_owner(s, "GRANT SELECT ON tourism_hourly TO pantau_writer")
    s.run(now + 12 * MIN)
    assert s.one("SELECT state FROM alarms WHERE rule = 'crowding'") == ("open",)


def test_a_part_raising_on_what_it_cannot_handle_fails_alone(
    scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    s = scenario
    now = fill_every_part(s)
    # A catalog without the tilt metric, which the waste rules read with the fill.
    as_owner(s, "DELETE FROM kind_metrics WHERE metric_id = 5")  # tilt
    as_owner(s, "DELETE FROM metrics WHERE metric_id = 5 AND name = 'tilt'")
    s.job = Job(s.job_conn, s.settings)
    caplog.set_level(logging.ERROR, logger="monitor.job")
    report = s.run(now)
    assert report["failed"] == ["waste"]
    assert report["waste"] == {"error": "KeyError: 'tilt'"}
    assert counts(s) == {
        "waste_status": 0, "waste_village_figures": 2, "air_ispu_hourly": 4,
        "sensor_status": 6, "tourism_status": 1,
    }  # fmt: skip
    assert report["alarms"]["held"] == ["bin_fire_risk", "bin_overflow", "bin_predicted_full"]  # type: ignore[index]
    assert len(failure_logs(caplog, "waste")) == 1


def test_wills_of_a_failed_run_are_stored_by_the_next(as_service: Scenario) -> None:
    s = as_service
    s.write("aq-1", "pm25_ugm3", np.array([at(0, 8)]), np.array([20.0]))
    as_owner(s, "REVOKE INSERT, UPDATE ON sensor_status FROM pantau_writer")
    report = s.run(at(0, 8) + MIN, {"aq-1": ("offline", at(0, 8) + 30_000)})
    assert report["failed"] == ["wills", "health"]
    as_owner(s, "GRANT INSERT, UPDATE ON sensor_status TO pantau_writer")
    report = s.run(at(0, 8) + 2 * MIN)  # the listener heard nothing new
    assert report["failed"] == []
    assert report["wills"] == 1
    assert s.status("aq-1") == (False, "last_will")


def test_an_unwritable_status_row_is_logged_and_the_job_goes_on(
    as_service: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    s = as_service
    as_owner(s, "REVOKE INSERT, UPDATE ON job_runs FROM pantau_writer")
    caplog.set_level(logging.ERROR, logger="monitor.job")
    report = s.run(at(0, 9))
    assert report["failed"] == []
    assert report["failures"] is None
    assert any("job_runs" in r.getMessage() for r in caplog.records)


def test_the_time_of_a_run_must_be_one_a_reading_can_have(scenario: Scenario) -> None:
    for bad in (-1, MAX_TS_MS + 1):
        with pytest.raises(ValueError, match="outside the years 1970 to 9999"):
            scenario.run(bad)
    for edge in (0, MAX_TS_MS):
        assert scenario.run(edge)["failed"] == []
    with psycopg.connect(scenario.url) as conn:
        row = conn.execute("SELECT failures FROM job_runs").fetchone()
    assert row == ({},)
