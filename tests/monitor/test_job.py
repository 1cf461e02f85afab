"""`pantau process` on constructed scenarios with known answers, against the real database
(:mod:`tests.monitor.scenario`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from tests.fixtures.commands import pantau_env, run_pantau
from tests.monitor.scenario import HOUR, MIN, Scenario, at

pytestmark = pytest.mark.integration


def test_waste_bin_emptied_then_filling(scenario: Scenario) -> None:
    # Filling at 2 %/h from 10 % for 36 h (to 82 %), emptied at 06:00 on day 1 to 5 %,
    # then filling at 3 %/h for 10 h.
    t1 = at(0, 0) + np.arange(0, 36 * 4 + 1) * 15 * MIN
    fill1 = 10 + 2 * (t1 - t1[0]) / HOUR
    t2 = t1[-1] + 15 * MIN + np.arange(0, 10 * 4 + 1) * 15 * MIN
    fill2 = 5 + 3 * (t2 - t2[0]) / HOUR
    ts = np.concatenate([t1, t2])
    scenario.write("bin-fill", "fill_pct", ts, np.concatenate([fill1, fill2]))
    scenario.write("bin-fill", "temp_c", ts, np.full(ts.shape[0], 31.0))
    now = int(t2[-1]) + 5 * MIN
    report = scenario.run(now)
    assert report["waste"] == {"bins": 1, "events": 1}

    emptied, before, after = scenario.one("SELECT ts, fill_before, fill_after FROM waste_events")
    assert emptied == datetime.fromtimestamp(t2[0] / 1000, tz=UTC)
    assert (before, after) == (pytest.approx(fill1[-1]), 5.0)
    fill, rate, full_at, needs, reason, fire = scenario.one(
        "SELECT fill_pct, fill_rate_pct_per_h, predicted_full_at, needs_collection, "
        "collection_reason, fire_risk FROM waste_status"
    )
    assert fill == pytest.approx(35.0)
    assert rate == pytest.approx(3.0)
    # 65 % to go at 3 %/h from the last reading.
    expected_full = datetime.fromtimestamp(t2[-1] / 1000, tz=UTC) + timedelta(hours=65 / 3)
    assert abs((full_at - expected_full).total_seconds()) < 1
    # Now is 16:05 WIB on day 1; the next round is 07:00 on day 2, in under 15 h: full after it.
    assert (needs, reason, fire) == (False, "none", "none")
    # Rerunning (or late data) does not count the emptying twice.
    scenario.run(now + MIN)
    assert scenario.one("SELECT count(*) FROM waste_events") == (1,)


def test_bin_predicted_full_before_the_round_and_overflow(scenario: Scenario) -> None:
    ts = at(0, 8) + np.arange(0, 13 * 4 + 1) * 15 * MIN  # 08:00 to 21:00, 5 %/h from 10 %
    scenario.write("bin-fill", "fill_pct", ts, 10 + 5 * (ts - ts[0]) / HOUR)
    over = at(0, 8) + np.arange(0, 13 * 4 + 1) * 15 * MIN
    noise = np.random.default_rng(1).normal(0, 0.5, over.shape[0]).round(1)
    scenario.write("bin-over", "fill_pct", over, 104.0 + noise)
    now = int(ts[-1]) + MIN  # 21:01; fill 75 %, full in 5 h at 02:00, before the 07:00 round
    scenario.run(now - 16 * MIN)  # the job ran before: the overflow has lasted 16 minutes
    scenario.run(now)
    rows = dict(
        scenario.conn.execute(
            "SELECT s.sensor_id, w.collection_reason FROM waste_status w JOIN sensors s "
            "USING (sensor_key)"
        ).fetchall()
    )
    assert rows == {"bin-fill": "predicted_full", "bin-over": "overflow"}
    # The overflow alarm needs 15 minutes of overflow: it has had 13 hours.
    alarms = scenario.conn.execute(
        "SELECT s.sensor_id, a.rule, a.state FROM alarms a JOIN sensors s USING (sensor_key) "
        "ORDER BY 1, 2"
    ).fetchall()
    scenario.conn.commit()
    assert ("bin-over", "bin_overflow", "open") in alarms
    assert ("bin-fill", "bin_predicted_full", "open") in alarms
    figures = dict(
        scenario.conn.execute(
            "SELECT zone_id, overflow_hours FROM waste_village_figures"
        ).fetchall()
    )
    # The village figures are hourly: computed by the 20:45 run, over 08:00 to 20:45.
    assert figures == {"V-1": 0.0, "V-2": pytest.approx(12.75)}
    # Only the rules that apply: no anomaly alarms on a steadily filling bin, no offline alarm
    # for sensors that never reported.
    assert {rule for _, rule, _ in alarms} == {"bin_overflow", "bin_predicted_full"}


def test_bin_filling_at_a_trickle_is_never_full(scenario: Scenario) -> None:
    # 1e-9 %/h from 50 %: full in 5e10 h, a time no datetime holds; stored as never (NULL).
    ts = at(0, 8) + np.arange(0, 4 * 4 + 1) * 15 * MIN
    scenario.write("bin-fill", "fill_pct", ts, 50 + 1e-9 * (ts - ts[0]) / HOUR)
    report = scenario.run(int(ts[-1]) + MIN)
    assert report["waste"] == {"bins": 1, "events": 0}
    rate, full_at, reason = scenario.one(
        "SELECT fill_rate_pct_per_h, predicted_full_at, collection_reason FROM waste_status"
    )
    assert rate == pytest.approx(1e-9, rel=1e-3)
    assert (full_at, reason) == (None, "none")


def test_hourly_ispu_and_us_aqi(scenario: Scenario) -> None:
    hours = at(0, 0) + np.arange(24) * HOUR + 30 * MIN
    scenario.write("aq-1", "pm25_ugm3", hours, np.full(24, 40.0))
    scenario.write("aq-1", "pm10_ugm3", hours, np.full(24, 60.0))
    scenario.run(at(1, 0) + 5 * MIN)
    ispu, category, dominant, pm25, pm10, aqi, us = scenario.one(
        "SELECT ispu, category, dominant, pm25_ispu, pm10_ispu, us_aqi, us_category "
        "FROM air_ispu_hourly WHERE hour = %s",
        datetime.fromtimestamp(at(1, 0) / 1000, tz=UTC),
    )
    # Permen LHK P.14/2020: PM2.5 40 -> (100-50)/(55.4-15.5) x (40-15.5) + 50 = 80.7 -> 81;
    # PM10 60 -> (100-50)/(150-50) x (60-50) + 50 = 55. US AQI 2024: 112.
    assert (ispu, category, dominant, pm25, pm10) == (81, "Sedang", "pm25", 81, 55)
    assert (aqi, us) == (112, "Unhealthy for Sensitive Groups")
    # An hour earlier the window held 23 hours: still above the 18-hour coverage.
    # Six hours into the data, the coverage is not met: no ISPU.
    rows = scenario.one(
        "SELECT count(*) FILTER (WHERE hour <= %s), count(*) FROM air_ispu_hourly",
        datetime.fromtimestamp(at(0, 17) / 1000, tz=UTC),
    )
    assert rows == (0, 7)  # ends at 18:00 ... 24:00 have 18-24 hours of data


def test_tourist_zone_occupancy_crowding_and_alarm(scenario: Scenario) -> None:
    minutes = at(0, 8) + np.arange(1, 61) * MIN  # 08:01 .. 09:00
    scenario.write("gate-in", "count_in", minutes, np.full(60, 10.0))
    scenario.write("gate-in", "count_out", minutes, np.zeros(60))
    scenario.write("gate-out", "count_in", minutes, np.zeros(60))
    scenario.write("gate-out", "count_out", minutes, np.full(60, 4.0))
    scenario.run(at(0, 9) + 30 * 1000)
    occupancy, density, fruin, ratio, crowding, visitors = scenario.one(
        "SELECT occupancy, density_ppm2, fruin_level, capacity_ratio, crowding, visitors_today "
        "FROM tourism_status WHERE zone_id = 'T-1'"
    )
    # 600 in and 240 out through two gates: 360 inside, on 1000 m2 for 100 people.
    assert (occupancy, visitors) == (360, 600)
    assert density == pytest.approx(0.36)
    assert fruin == "B"  # 2.78 m2 per person
    assert (ratio, crowding) == (pytest.approx(3.6), "over capacity")
    # Over capacity for 10 minutes opens one alarm, however often the job runs.
    scenario.write("gate-in", "count_in", at(0, 9) + np.arange(1, 16) * MIN, np.zeros(15))
    for minute in range(16):
        scenario.run(at(0, 9) + minute * MIN + 30 * 1000)
    assert scenario.one(
        "SELECT count(*), min(state) FROM alarms WHERE zone_id = 'T-1' AND rule = 'crowding'"
    ) == (1, "open")
    # After closing (18:00), the next morning starts empty.
    scenario.run(at(1, 7))
    assert scenario.one("SELECT occupancy FROM tourism_status WHERE zone_id = 'T-1'") == (0.0,)


def test_silent_sensor_goes_offline_and_comes_back(scenario: Scenario) -> None:
    scenario.write("bin-fill", "fill_pct", np.array([at(0, 8)]), np.array([20.0]))
    scenario.run(at(0, 8) + 44 * MIN)  # 44 min < 3 x 15 min
    assert scenario.one(
        "SELECT online, reason FROM sensor_status st JOIN sensors s USING (sensor_key) "
        "WHERE s.sensor_id = 'bin-fill'"
    ) == (True, "reporting")
    scenario.run(at(0, 8) + 46 * MIN)
    assert scenario.one(
        "SELECT online, reason FROM sensor_status st JOIN sensors s USING (sensor_key) "
        "WHERE s.sensor_id = 'bin-fill'"
    ) == (False, "silent")
    assert scenario.one(
        "SELECT a.state FROM alarms a JOIN sensors s USING (sensor_key) "
        "WHERE s.sensor_id = 'bin-fill' AND a.rule = 'sensor_offline'"
    ) == ("open",)
    scenario.write("bin-fill", "fill_pct", np.array([at(0, 9)]), np.array([21.0]))
    scenario.run(at(0, 9) + MIN)
    assert scenario.one(
        "SELECT st.online, a.state FROM sensor_status st JOIN sensors s USING (sensor_key) "
        "JOIN alarms a USING (sensor_key) WHERE s.sensor_id = 'bin-fill' "
        "AND a.rule = 'sensor_offline'"
    ) == (True, "cleared")


def test_last_will_marks_offline_until_the_next_message(scenario: Scenario) -> None:
    scenario.write("aq-1", "pm25_ugm3", np.array([at(0, 8)]), np.array([20.0]))
    scenario.job.run_once(at(0, 8) + MIN, {"aq-1": ("offline", at(0, 8) + 30 * 1000)})
    assert scenario.one(
        "SELECT online, reason FROM sensor_status st JOIN sensors s USING (sensor_key) "
        "WHERE s.sensor_id = 'aq-1'"
    ) == (False, "last_will")
    scenario.write("aq-1", "pm25_ugm3", np.array([at(0, 8) + 2 * MIN]), np.array([21.0]))
    scenario.run(at(0, 8) + 3 * MIN)
    assert scenario.one(
        "SELECT online, reason FROM sensor_status st JOIN sensors s USING (sensor_key) "
        "WHERE s.sensor_id = 'aq-1'"
    ) == (True, "reporting")


def test_cli_runs_once_as_of_a_time_and_reports(db_url: str) -> None:
    env = pantau_env(PANTAU_DATABASE_URL=db_url)
    result = run_pantau("process", "--at", "2026-11-23T09:00:00+07:00", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"health", "waste", "air", "tourism", "villages", "alarms"}
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT job FROM job_runs").fetchall() == [("process",)]
    bad = run_pantau("process", "--at", "tomorrow", env=env)
    assert bad.returncode == 2
    assert "--at 'tomorrow' is not an ISO 8601 time" in bad.stderr
    assert "fix: write it like" in bad.stderr
