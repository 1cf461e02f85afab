"""Every part of `pantau process` on data at the edges, against the real database.

Hypothesis writes readings through the real ingest writer (NaN, infinities, zeros, negatives,
the largest and smallest floats, times at the ends of the years 1970 to 9999 and beyond, single
points, nothing at all), then runs the job in simulated time, again 16 minutes later, and live.
No part may fail: each must give a defined result. A few invariants of what is stored are
checked on the way. Examples are few (each one is a database round trip).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.batch import Readings
from monitor.job import now_ms
from pantau.timestamps import MAX_TS_MS
from tests.monitor.scenario import HOUR, MIN, Scenario, at

pytestmark = pytest.mark.integration

DAY = 24 * HOUR
EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SPECIAL = [
    math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, -40.0, 1e308, -1e308, 5e-324, 1e-300,
    3.3, 45.0, 61.0, 100.0, 150.0, 1e6,
]  # fmt: skip
values = st.one_of(
    st.sampled_from(SPECIAL),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10, 200),
)
# The job's "now": an ordinary day, the first and last days of the years 1970 to 9999, or any.
nows = st.one_of(
    st.just(at(0, 12)),
    st.sampled_from(
        [0, 1, 2 * HOUR + 1, 3 * DAY, MAX_TS_MS, MAX_TS_MS - HOUR, MAX_TS_MS - 3 * DAY]
    ),
    st.integers(0, MAX_TS_MS),
)
# Readings around now (in and just outside the windows the parts read), and far away from it:
# the year 1 and the year ~97000 (inside PostgreSQL's range, outside datetime's).
offsets = st.one_of(
    st.sampled_from([0, -1, 1, -15 * MIN, -HOUR, -3 * DAY, -3 * DAY - 1, -28 * DAY, HOUR]),
    st.integers(-30 * DAY, HOUR),
)
FAR = [-62_135_596_800_000, 3_000_000_000_000_000]


def readings_of(sensors: list[str], metrics: list[str], max_size: int = 30) -> st.SearchStrategy:
    """Lists of (sensor, metric, offset from now or a far time, value)."""
    when = st.one_of(
        offsets.map(lambda o: ("near", o)), st.sampled_from(FAR).map(lambda t: ("far", t))
    )
    return st.lists(
        st.tuples(st.sampled_from(sensors), st.sampled_from(metrics), when, values),
        max_size=max_size,
    )


def write_all(s: Scenario, now: int, rows: list[tuple[str, str, tuple[str, int], float]]) -> None:
    """All rows in one batch, as a gateway's message would bring them (duplicates: first)."""
    seen: set[tuple[int, int, int]] = set()
    keys, metrics, ts, value = [], [], [], []
    for sensor, metric, (where, t), v in rows:
        key, mid, when = s.keys[sensor], s.metrics[metric], now + t if where == "near" else t
        if (key, mid, when) in seen:
            continue
        seen.add((key, mid, when))
        keys.append(key)
        metrics.append(mid)
        ts.append(when)
        value.append(v)
    batch = Readings(
        np.array(keys, dtype=np.int32),
        np.array(metrics, dtype=np.int16),
        np.array(ts, dtype=np.int64),
        np.array(value, dtype=np.float64),
    )
    s.write_batch(batch, extreme=True)


@pytest.fixture
def edges(db_url: str) -> Iterator[Scenario]:
    s = Scenario(db_url)
    yield s
    s.close()


def run_everything(s: Scenario, now: int, wills: dict[str, tuple[str, int]] | None = None) -> None:
    """The job in simulated time, 16 minutes later (alarm streaks), and live: nothing fails."""
    later = min(now + 16 * MIN, MAX_TS_MS)
    for report in (s.run(now, wills), s.run(later), s.job.run_once(later, live=True)):
        failed = {p: report[p] for p in report.get("failed", [])}  # type: ignore[union-attr]
        assert failed == {}, failed
        assert report["failures"] == {}
    # At most one active alarm per (subject, rule), and every stored time is a real one.
    assert (
        s.all(
            "SELECT sensor_key, zone_id, rule FROM alarms WHERE state <> 'cleared' "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1"
        )
        == []
    )


@EXAMPLES
@given(
    now=nows,
    rows=readings_of(["bin-fill", "bin-over"], ["fill_pct", "temp_c", "battery_v", "tilt"]),
)
# The first and the last millisecond of the years 1970 to 9999, a single point, nothing.
@example(now=MAX_TS_MS, rows=[("bin-fill", "fill_pct", ("near", 0), 50.0)])
@example(
    now=0,
    rows=[
        ("bin-fill", "fill_pct", ("near", -HOUR), 90.0),
        ("bin-fill", "fill_pct", ("near", 0), 1.0),
    ],
)
@example(now=at(0, 12), rows=[])
def test_waste_and_villages_on_edge_data(edges: Scenario, now: int, rows: list) -> None:
    edges.reset()
    write_all(edges, now, rows)
    run_everything(edges, now)
    for fill, rate, full_at, ts in edges.all(
        "SELECT fill_pct, fill_rate_pct_per_h, predicted_full_at, ts FROM waste_status"
    ):
        assert math.isfinite(fill)  # type: ignore[arg-type]
        assert rate is None or math.isfinite(rate)  # type: ignore[arg-type]
        assert full_at is None or full_at >= ts  # type: ignore[operator]
    for (mean,) in edges.all("SELECT mean_fill_at_collection_pct FROM waste_village_figures"):
        assert mean is None or not math.isnan(mean)  # type: ignore[arg-type]


def hourly_pollutants() -> st.SearchStrategy:
    """A day or two of hourly readings per pollutant (enough hours for an ISPU), the values
    drawn from the edges, plus a few stray readings."""
    hour_values = st.lists(values, min_size=0, max_size=30)
    return st.tuples(
        st.dictionaries(
            st.sampled_from(
                ["pm25_ugm3", "pm10_ugm3", "so2_ugm3", "co_ugm3", "o3_ugm3", "no2_ugm3"]
            ),
            st.tuples(hour_values, st.sampled_from([0.0, 15.0, 40.0, 250.0, 1e308])),
            max_size=6,
        ),
        readings_of(["aq-1"], ["pm25_ugm3", "pm10_ugm3", "co_ugm3"], max_size=10),
    )


@EXAMPLES
@given(now=nows, data=hourly_pollutants())
@example(now=MAX_TS_MS, data=({"pm25_ugm3": ([], 40.0)}, []))
@example(now=0, data=({"pm10_ugm3": ([math.inf, -1.0], 1e308)}, []))
def test_air_on_edge_data(edges: Scenario, now: int, data: tuple) -> None:
    edges.reset()
    series, stray = data
    rows = []
    for metric, (odd, base) in series.items():
        # 24 hourly values ending just before now: `base` where no edge value is drawn.
        for h in range(24):
            v = odd[h] if h < len(odd) else base
            rows.append(("aq-1", metric, ("near", -(h + 1) * HOUR + 30 * MIN), v))
    write_all(edges, now, rows + stray)
    run_everything(edges, now)
    for ispu, category in edges.all("SELECT ispu, category FROM air_ispu_hourly"):
        assert 0 <= ispu <= 500  # type: ignore[operator]
        assert category in {"Baik", "Sedang", "Tidak Sehat", "Sangat Tidak Sehat", "Berbahaya"}


@EXAMPLES
@given(
    now=nows,
    rows=readings_of(["gate-in", "gate-out"], ["count_in", "count_out"], max_size=40),
    closing=st.sampled_from(["18:00", "00:00", "23:59", "24:00", "7", "late", "", "-1:30"]),
)
@example(
    now=MAX_TS_MS, rows=[("gate-in", "count_in", ("near", -MIN // 2), math.inf)], closing="23:59"
)
@example(now=0, rows=[("gate-out", "count_out", ("near", -1), 5.0)], closing="00:00")
def test_tourism_on_edge_data(edges: Scenario, now: int, rows: list, closing: str) -> None:
    edges.reset()
    edges.conn.execute(
        "UPDATE zones SET params = jsonb_build_object('closing', %s::text) WHERE zone_id = 'T-1'",
        (closing,),
    )
    edges.conn.commit()
    write_all(edges, now, rows)
    run_everything(edges, now)
    for occupancy, visitors in edges.all("SELECT occupancy, visitors_today FROM tourism_status"):
        assert math.isnan(occupancy) or occupancy >= 0  # type: ignore[arg-type,operator]
        assert visitors is not None


wills = st.dictionaries(
    st.sampled_from(["bin-fill", "aq-1", "aq-fast", "no-such-sensor"]),
    st.tuples(
        st.sampled_from(["offline", "online", "gone"]),
        st.one_of(offsets, st.sampled_from([-(2**62), 2**62, 0])),
    ),
    max_size=4,
)


@EXAMPLES
@given(
    now=nows,
    rows=readings_of(["bin-fill", "aq-1", "aq-fast"], ["battery_v", "fill_pct", "pm25_ugm3"]),
    heard=wills,
)
@example(
    now=MAX_TS_MS,
    rows=[("aq-1", "battery_v", ("far", FAR[1]), 3.0), ("bin-fill", "battery_v", ("near", 0), 0.0)],
    heard={"aq-1": ("offline", 2**62), "bin-fill": ("offline", 0)},
)
@example(now=0, rows=[("aq-fast", "pm25_ugm3", ("near", -1), math.nan)], heard={})
def test_health_and_alarms_on_edge_data(edges: Scenario, now: int, rows: list, heard: dict) -> None:
    edges.reset()
    write_all(edges, now, rows)
    # Will times relative to now, and absurd ones (a will no datetime holds is left out).
    at_ms = {sid: (state, now + t if abs(t) < 2**40 else t) for sid, (state, t) in heard.items()}
    run_everything(edges, now, at_ms)
    for reason, last_seen in edges.all("SELECT reason, last_seen FROM sensor_status"):
        assert reason in {"reporting", "silent", "last_will", "never_seen"}
        if reason == "never_seen":
            assert last_seen is None


def test_the_live_job_is_total_on_the_wall_clock_too(edges: Scenario) -> None:
    """A live run after hostile data: the arrival clock path, nothing fails."""
    now = now_ms()
    fills = [("bin-fill", "fill_pct", ("near", -i * MIN), v) for i, v in enumerate(SPECIAL)]
    far = [("aq-1", "battery_v", ("far", FAR[1]), 3.0), ("aq-1", "pm25_ugm3", ("far", FAR[0]), 1.0)]
    write_all(edges, now, fills + far)
    report = edges.run_live()
    assert report["failed"] == []
    assert edges.status("aq-1") == (True, "reporting")  # heard now, though its readings are not
