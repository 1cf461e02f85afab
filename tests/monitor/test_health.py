"""Offline, judged live by arrival and in simulated time by the readings' times, against the
real database: a catch-up opens no offline alarm, a sensor that stops does, a last will does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from monitor.job import now_ms
from tests.fixtures.commands import pantau_env, run_pantau
from tests.monitor.scenario import HOUR, MIN, Scenario, at

pytestmark = pytest.mark.integration

K = 2.0  # offline after 2 intervals: 2 s for aq-fast


@pytest.fixture
def fast(db_url: str) -> Iterator[Scenario]:
    s = Scenario(db_url, offline_after_intervals=K)
    yield s
    s.close()


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


# --- Live: the arrival clock ------------------------------------------------------------------


def test_a_catch_up_of_hours_old_readings_opens_no_offline_alarm(fast: Scenario) -> None:
    # A gateway uploads its backlog, or the simulator replays a day at 60x: every reading is
    # hours old when it arrives, and they keep arriving.
    start = now_ms() - 6 * HOUR
    for step in range(3):
        chunk = start + step * HOUR + np.arange(4) * 15 * MIN
        fast.write("bin-fill", "fill_pct", chunk, np.linspace(20, 23, 4) + step)
        fast.write("aq-1", "pm25_ugm3", chunk[:1], np.array([30.0]))
        report = fast.run_live()
        assert report["health"]["clock"] == "arrival"
        assert fast.status("bin-fill") == (True, "reporting")
        assert fast.status("aq-1") == (True, "reporting")
    assert fast.alarms("bin-fill", "sensor_offline") == []
    assert fast.alarms("aq-1", "sensor_offline") == []
    # The same state judged as of the same time in simulated time says what the readings
    # say: the newest bin reading is over three hours old, far more than 2 x 15 minutes.
    fast.run(now_ms())
    assert fast.status("bin-fill") == (False, "silent")
    last_seen, last_heard = fast.one(
        "SELECT last_seen, last_heard FROM sensor_status JOIN sensors USING (sensor_key) "
        "WHERE sensor_id = 'bin-fill'"
    )
    assert isinstance(last_seen, datetime)
    assert isinstance(last_heard, datetime)
    assert (last_heard - last_seen).total_seconds() > 3 * 3600


def test_a_sensor_that_stops_goes_offline_after_k_intervals_of_silence(fast: Scenario) -> None:
    # aq-fast reports every second and its readings are hours old (a catch-up), then it stops.
    old = now_ms() - 5 * HOUR
    fast.write("aq-fast", "pm25_ugm3", old + np.arange(10) * 1000, np.full(10, 20.0))
    fast.run_live()
    assert fast.status("aq-fast") == (True, "reporting")
    time.sleep(K + 0.5)  # K intervals of 1 s with nothing arriving
    report = fast.run_live()
    assert fast.status("aq-fast") == (False, "silent")
    assert report["health"]["went_offline"] == 1
    assert fast.alarms("aq-fast", "sensor_offline") == ["open"]
    # Its next reading, however old, is heard now: back online, the alarm clears.
    fast.write("aq-fast", "pm25_ugm3", np.array([old + 20_000]), np.array([21.0]))
    fast.run_live()
    assert fast.status("aq-fast") == (True, "reporting")
    assert fast.alarms("aq-fast", "sensor_offline") == ["cleared"]


def test_a_redelivery_is_not_heard(fast: Scenario) -> None:
    ts = now_ms() - 10_000 + np.arange(3) * 1000
    fast.write("aq-fast", "pm25_ugm3", ts, np.full(3, 20.0))
    (heard,) = fast.one("SELECT heard_at FROM sensor_heard")
    time.sleep(0.05)
    fast.write("aq-fast", "pm25_ugm3", ts, np.full(3, 20.0))  # the broker redelivers
    assert fast.one("SELECT heard_at FROM sensor_heard") == (heard,)
    fast.write("aq-fast", "pm25_ugm3", ts[:1] - 1000, np.array([19.0]))  # a late new reading
    (later,) = fast.one("SELECT heard_at FROM sensor_heard")
    assert isinstance(heard, datetime)
    assert isinstance(later, datetime)
    assert later > heard


def test_a_last_will_marks_offline_live(fast: Scenario) -> None:
    now = now_ms()
    fast.write("aq-1", "pm25_ugm3", np.array([now - 2000]), np.array([20.0]))
    fast.run_live({"aq-1": ("offline", now)})
    assert fast.status("aq-1") == (False, "last_will")
    assert fast.alarms("aq-1", "sensor_offline") == ["open"]
    # Readings taken before the will, arriving after it (a backlog), do not undo it ...
    fast.write("aq-1", "pm25_ugm3", np.array([now - 60_000]), np.array([19.0]))
    fast.run_live()
    assert fast.status("aq-1") == (False, "last_will")
    # ... a reading taken after it does.
    fast.write("aq-1", "pm25_ugm3", np.array([now + 500]), np.array([21.0]))
    fast.run_live()
    assert fast.status("aq-1") == (True, "reporting")
    assert fast.alarms("aq-1", "sensor_offline") == ["cleared"]


def test_pantau_process_once_after_a_catch_up_reports_no_sensor_offline(fast: Scenario) -> None:
    old = now_ms() - 8 * HOUR
    fast.write("bin-fill", "fill_pct", old + np.arange(8) * 15 * MIN, np.linspace(10, 17, 8))
    result = run_pantau("process", "--once", env=pantau_env(PANTAU_DATABASE_URL=fast.url))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == []
    assert report["health"]["clock"] == "arrival"
    assert fast.status("bin-fill") == (True, "reporting")
    assert fast.alarms("bin-fill", "sensor_offline") == []


# --- Simulated time: the readings' clock ------------------------------------------------------


def test_simulated_catch_up_opens_no_offline_alarm_and_a_stop_does(fast: Scenario) -> None:
    # A day of history replayed fast, the job run as of the replay's own clock: readings up to
    # each time are there, so nothing is silent; then the sensor stops at 12:00.
    ts = at(0, 0) + np.arange(12 * 4 + 1) * 15 * MIN  # 00:00 .. 12:00, every 15 minutes
    for hour in range(0, 12, 3):
        chunk = ts[(ts >= at(0, hour)) & (ts < at(0, hour + 3))]
        fast.write("bin-fill", "fill_pct", chunk, np.full(chunk.shape[0], 30.0))
        report = fast.run(int(chunk[-1]) + MIN)
        assert report["health"]["clock"] == "readings"
        assert fast.status("bin-fill") == (True, "reporting")
    fast.write("bin-fill", "fill_pct", ts[-1:], np.array([31.0]))
    fast.run(at(0, 12) + int(K * 15 * MIN))  # exactly K intervals: not yet
    assert fast.status("bin-fill") == (True, "reporting")
    assert fast.alarms("bin-fill", "sensor_offline") == []
    fast.run(at(0, 12) + int(K * 15 * MIN) + 1000)
    assert fast.status("bin-fill") == (False, "silent")
    assert fast.alarms("bin-fill", "sensor_offline") == ["open"]


def test_simulated_time_judges_by_the_readings_taken_by_then(fast: Scenario) -> None:
    # History with a gap: 08:00-09:00 and 14:00-15:00. As of 11:00 the sensor was silent,
    # although `latest` already holds 15:00.
    morning = at(0, 8) + np.arange(5) * 15 * MIN
    fast.write("bin-fill", "fill_pct", morning, np.full(5, 40.0))
    fast.write("bin-fill", "fill_pct", morning + 6 * HOUR, np.full(5, 45.0))
    fast.run(at(0, 11))
    assert fast.status("bin-fill") == (False, "silent")
    (last_seen,) = fast.one(
        "SELECT last_seen FROM sensor_status JOIN sensors USING (sensor_key) "
        "WHERE sensor_id = 'bin-fill'"
    )
    assert last_seen == datetime.fromtimestamp(at(0, 9) / 1000, tz=UTC)
    fast.run(at(0, 15) + MIN)
    assert fast.status("bin-fill") == (True, "reporting")
    # Before its first reading a sensor has not been seen, as of that time.
    fast.run(at(0, 7))
    assert fast.status("bin-fill") == (False, "never_seen")


def test_a_last_will_marks_offline_in_simulated_time_from_its_time_on(fast: Scenario) -> None:
    fast.write("aq-1", "pm25_ugm3", np.array([at(0, 8)]), np.array([20.0]))
    will = {"aq-1": ("offline", at(0, 8) + 30_000)}
    fast.run(at(0, 8) + 10_000, will)  # heard, but as of a time before the will
    assert fast.status("aq-1") == (True, "reporting")
    fast.run(at(0, 8) + MIN)
    assert fast.status("aq-1") == (False, "last_will")
    assert fast.alarms("aq-1", "sensor_offline") == ["open"]


def test_pantau_process_at_judges_by_reading_time(fast: Scenario) -> None:
    ts = at(0, 8) + np.arange(5) * 15 * MIN  # 08:00 .. 09:00
    fast.write("bin-fill", "fill_pct", ts, np.full(5, 50.0))
    env = pantau_env(PANTAU_DATABASE_URL=fast.url, PANTAU_PROCESS_OFFLINE_AFTER_INTERVALS="3")
    cases = [(at(0, 9) + 40 * MIN, (True, "reporting")), (at(0, 10), (False, "silent"))]
    for when, expected in cases:
        result = run_pantau("process", "--at", iso(when), env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["health"]["clock"] == "readings"
        assert fast.status("bin-fill") == expected
    with psycopg.connect(fast.url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM alarms WHERE rule = 'sensor_offline' AND state = 'open'"
        ).fetchone() == (1,)
