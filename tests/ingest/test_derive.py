"""Rollups and detector state written by the ingest Writer, checked against the real database.

Every rollup table must equal a recomputation from ``readings`` in SQL, whatever the batching,
lateness, order, redelivery or number of writers (DESIGN.md 3.2, 3.5, 3.6); the detector state
must carry over a restart, and a redelivered batch must change nothing.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.pq import TransactionStatus

from ingest.batch import Readings, WriteResult
from ingest.dberrors import is_transient
from ingest.derive import Detection
from ingest.writer import Writer
from processing.detect import KIND_NAMES, State, detect
from processing.rules import metric_rules
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.integration

Reading = tuple[int, int, int, float]  # sensor_key, metric_id, ts_ms, value
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_764_028_800_000 - 5 * HOUR - 1234  # 2025-11-24 19:00 UTC, a little before a midnight
WIDTHS = {"rollup_1m": "1 minute", "rollup_15m": "15 minutes", "rollup_1h": "1 hour",
          "rollup_1d": "1 day"}  # fmt: skip

RECOMPUTE = """SELECT sensor_key, metric_id, time_bucket(%s::interval, ts) AS bucket,
    count(*), sum(value), sum(value * value), min(value), max(value),
    (array_agg(ts ORDER BY ts))[1], (array_agg(value ORDER BY ts))[1],
    (array_agg(ts ORDER BY ts DESC))[1], (array_agg(value ORDER BY ts DESC))[1]
FROM readings GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
STORED = """SELECT sensor_key, metric_id, bucket, n, sum, sum_sq, min, max,
    first_ts, first_value, last_ts, last_value FROM {} ORDER BY 1, 2, 3"""
STATE = """SELECT sensor_key, metric_id, n, mean, var, last_value,
    (extract(epoch FROM last_ts) * 1000)::bigint, run, pending_value,
    (extract(epoch FROM pending_ts) * 1000)::bigint, pending_z, cusum_pos, cusum_neg
FROM detector_state ORDER BY 1, 2"""
ANOMALIES = """SELECT sensor_key, metric_id, (extract(epoch FROM ts) * 1000)::bigint, kind, score,
    observed, expected FROM anomalies ORDER BY 1, 2, 3, 4"""


# --- Streams and batches ---------------------------------------------------------------------


def metric_ids(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {str(n): int(i) for n, i in conn.execute("SELECT name, metric_id FROM metrics")}


def detection(url: str) -> Detection:
    return Detection(metric_rules(metric_ids(url)))


def random_stream(
    rng: np.random.Generator, sensors: int = 3, per_series: int = 120
) -> list[Reading]:
    """Readings of several sensors and metrics at random millisecond times over three days."""
    levels = {1: 40.0, 4: 29.0, 6: 30.0, 7: 55.0, 12: 80.0}  # fill, temp, pm2.5, pm10, rh
    rows: list[Reading] = []
    for k in range(1, sensors + 1):
        for m, level in levels.items():
            n = int(rng.integers(per_series // 2, per_series + 1))
            ts = np.unique(T0 + rng.integers(0, 3 * DAY, n))
            # Some bursts inside one minute, to fill a bucket with several readings.
            ts = np.unique(
                np.concatenate([ts, ts[:10] + rng.integers(1, 50_000, min(10, ts.size))])
            )
            x = level + rng.normal(0, level / 20, ts.size)
            x[rng.integers(0, ts.size, 2)] *= 3  # spikes (and, for temp_c, out of range)
            rows += [(k, m, int(t), float(v)) for t, v in zip(ts, x, strict=True)]
        # PM2.5 above PM10 at three of the PM10 times: impossible.
        keys = {r[:3] for r in rows}
        pm10 = [r for r in rows if r[:2] == (k, 7)]
        for _, _, t, v in pm10[5:8]:
            if (k, 6, t) not in keys:
                rows.append((k, 6, t, v + 10.0))
    return rows


def arrival_batches(
    rows: list[Reading], rng: np.random.Generator, redelivered: float = 0.15
) -> list[list[Reading]]:
    """Batches as a worker would get them: mostly in time order, some readings hours late,
    each batch in its own order, and some readings again in another batch (MQTT redelivery).
    A batch never holds one key twice (the batcher deduplicates)."""
    delay = np.where(rng.random(len(rows)) < 0.2, rng.exponential(6 * HOUR, len(rows)), 0.0)
    arrival = np.argsort(np.array([r[2] for r in rows]) + delay, kind="stable")
    cuts = np.sort(rng.choice(np.arange(1, len(rows)), size=min(40, len(rows) - 1), replace=False))
    batches = [[rows[i] for i in part] for part in np.split(arrival, cuts)]
    for i in np.flatnonzero(rng.random(len(rows)) < redelivered):
        target = batches[int(rng.integers(0, len(batches)))]
        if all(r[:3] != rows[i][:3] for r in target):
            target.append(rows[i])
    for b in batches:
        order = rng.permutation(len(b))
        b[:] = [b[j] for j in order]
    return batches


def readings(rows: list[Reading]) -> Readings:
    return Readings(
        np.array([r[0] for r in rows], dtype=np.int32),
        np.array([r[1] for r in rows], dtype=np.int16),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=np.float64),
    )


def write_retrying(writer: Writer, rows: list[Reading]) -> WriteResult:
    """Write one batch, retrying transient errors (deadlocks) as the ingest worker does."""
    for _ in range(50):
        try:
            return writer.write(readings(rows), [])
        except psycopg.Error as exc:
            if not is_transient(exc):
                raise
    raise AssertionError("a batch kept failing with transient errors")


def ms(dt: datetime) -> int:
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def run_detect(
    det: Detection, rows: list[Reading], state: State | None = None
) -> tuple[State, Any]:
    r = readings(rows)
    new, anomalies, _ = detect(
        state if state is not None else State.empty(), det.rules, det.params,
        r.sensor_key, r.metric_id, r.ts_ms, r.value,
    )  # fmt: skip
    return new, anomalies


# --- Checks ----------------------------------------------------------------------------------


def fetch(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def assert_rollups_match_readings(url: str) -> None:
    total = fetch(url, "SELECT count(*) FROM readings")[0][0]
    assert total > 0
    for table, width in WIDTHS.items():
        want = fetch(url, RECOMPUTE, width)
        got = fetch(url, STORED.format(table))
        assert [g[:3] for g in got] == [w[:3] for w in want], f"{table}: buckets differ"
        assert sum(g[3] for g in got) == total, table
        for g, w in zip(got, want, strict=True):
            exact = (
                3,
                6,
                7,
                8,
                9,
                10,
                11,
            )  # n, min, max, first_ts, first_value, last_ts, last_value
            assert [g[i] for i in exact] == [w[i] for i in exact], (table, g, w)
            for i in (4, 5):  # sum, sum of squares
                assert math.isclose(g[i], w[i], rel_tol=1e-9, abs_tol=1e-9), (table, g, w)


def assert_readings_are(url: str, rows: list[Reading]) -> None:
    distinct = {r[:3]: r[3] for r in rows}
    got = fetch(url, "SELECT sensor_key, metric_id, ts, value FROM readings")
    assert {(k, m, ms(t)): v for k, m, t, v in got} == distinct
    assert len(got) == len(distinct)


def assert_state_ends_at_the_newest_reading(url: str, rows: list[Reading]) -> None:
    newest: dict[tuple[int, int], tuple[int, float]] = {}
    for k, m, t, v in rows:
        if (k, m) not in newest or t > newest[(k, m)][0]:
            newest[(k, m)] = (t, v)
    state = fetch(url, STATE)
    assert [(s[0], s[1]) for s in state] == sorted(newest)
    for s in state:
        assert (s[6], s[5]) == newest[(s[0], s[1])]
        assert 1 <= s[2] <= len({r[2] for r in rows if r[:2] == (s[0], s[1])})


def db_state(url: str) -> list[tuple[Any, ...]]:
    return fetch(url, STATE)


def state_rows(state: State) -> list[tuple[Any, ...]]:
    cols = [state.sensor_key, state.metric_id, state.n, state.mean, state.var, state.last_value,
            state.last_ts_ms, state.run, state.pending_value, state.pending_ts_ms, state.pending_z,
            state.cusum_pos, state.cusum_neg]  # fmt: skip
    return list(zip(*(c.tolist() for c in cols), strict=True))


def assert_same_state(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert [g[i] for i in (0, 1, 2, 6, 7, 9)] == [w[i] for i in (0, 1, 2, 6, 7, 9)], (g, w)
        for i in (3, 4, 5, 8, 10, 11, 12):
            assert (math.isnan(g[i]) and math.isnan(w[i])) or g[i] == w[i], (i, g, w)


def anomaly_rows(a: dict[str, np.ndarray]) -> list[tuple[Any, ...]]:
    return sorted(
        zip(
            a["sensor_key"].tolist(), a["metric_id"].tolist(), a["ts_ms"].tolist(),
            [KIND_NAMES[k] for k in a["kind"].tolist()], a["score"].tolist(),
            a["observed"].tolist(), a["expected"].tolist(), strict=True,
        )
    )  # fmt: skip


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived table, NaN written as a string so that snapshots compare equal."""
    out = {t: fetch(url, STORED.format(t)) for t in WIDTHS}
    out["detector_state"] = fetch(url, STATE)
    out["anomalies"] = fetch(url, ANOMALIES)
    out["readings"] = fetch(url, "SELECT * FROM readings ORDER BY 1, 2, 3")
    out["latest"] = fetch(url, "SELECT * FROM latest ORDER BY 1, 2")
    return {
        name: [tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row)
               for row in rows]
        for name, rows in out.items()
    }  # fmt: skip


# --- Rollups ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_rollups_equal_a_recomputation_after_late_shuffled_and_redelivered_batches(db_url, seed):
    rng = np.random.default_rng(seed)
    rows = random_stream(rng)
    batches = arrival_batches(rows, rng)
    det = detection(db_url)
    inserted = 0
    with psycopg.connect(db_url) as conn:
        writer = Writer(conn, det)
        # The same batches through the detectors in NumPy, fed only the new readings.
        state, found = State.empty(), []
        for batch in batches:
            result = writer.write(readings(batch), [])
            inserted += int(result.inserted.sum())
            new = [r for r, new in zip(batch, result.inserted, strict=True) if new]
            state, a = run_detect(det, new, state)
            found += anomaly_rows(a.arrays())
            assert result.anomalies == len(anomaly_rows(a.arrays()))
    distinct = {r[:3] for r in rows}
    assert inserted == len(distinct), "each reading is inserted exactly once"
    assert sum(len(b) for b in batches) > len(distinct), "the stream holds redeliveries"
    assert_readings_are(db_url, rows)
    assert_rollups_match_readings(db_url)
    assert_state_ends_at_the_newest_reading(db_url, rows)
    assert_same_state(db_state(db_url), state_rows(state))
    stored = fetch(db_url, ANOMALIES)
    assert [s[:4] for s in stored] == [f[:4] for f in sorted(found)]
    for s, f in zip(stored, sorted(found), strict=True):
        assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(s[4:], f[4:], strict=True))


def test_rollups_of_readings_before_1970_and_across_midnight(db_url):
    # Day buckets start at 00:00 UTC on both sides of the epoch.
    rows = [(9, 4, t, float(i)) for i, t in enumerate(
        [-DAY - 1, -DAY, -1, 0, 1, DAY - 1, DAY, -30 * MIN - 7, 59_999, 60_000]
    )]  # fmt: skip
    with psycopg.connect(db_url) as conn:
        writer = Writer(conn, None)
        writer.write(readings(rows[::2]), [])
        writer.write(readings(rows[1::2][::-1]), [])
    assert_rollups_match_readings(db_url)
    days = fetch(db_url, "SELECT bucket, n FROM rollup_1d ORDER BY 1")
    assert [(ms(b), n) for b, n in days] == [(-2 * DAY, 1), (-DAY, 3), (0, 5), (DAY, 1)]


def test_two_writers_on_two_connections_keep_rollups_exact(db_url):
    rng = np.random.default_rng(7)
    rows = random_stream(rng, sensors=4)
    batches = arrival_batches(rows, rng, redelivered=0.3)
    det = detection(db_url)
    conns = [psycopg.connect(db_url) for _ in range(2)]
    try:
        writers = [Writer(c, det) for c in conns]
        start = threading.Barrier(2)
        inserted = [0, 0]
        errors: list[Exception] = []

        def work(w: int) -> None:
            try:
                start.wait(10)
                for batch in batches[w::2]:  # interleaved: even batches here, odd ones there
                    inserted[w] += int(write_retrying(writers[w], batch).inserted.sum())
            except Exception as exc:  # noqa: BLE001 - reported by the test thread below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
        assert not errors, errors
    finally:
        for c in conns:
            c.close()
    assert sum(inserted) == len({r[:3] for r in rows})
    assert_readings_are(db_url, rows)
    assert_rollups_match_readings(db_url)
    assert_state_ends_at_the_newest_reading(db_url, rows)


# --- Detector state --------------------------------------------------------------------------


def spiky_series(n: int, spike_at: int | None, sensor: int, metric: int) -> list[Reading]:
    x = 28.0 + np.random.default_rng(sensor).normal(0, 0.2, n)
    if spike_at is not None:
        x[spike_at] = 36.0  # 8 degC: 16 deviations at the 0.5 degC floor
    return [(sensor, metric, T0 + i * MIN, float(v)) for i, v in enumerate(x)]


def test_detector_state_survives_a_restart_and_redelivery_changes_nothing(db_url):
    ids = metric_ids(db_url)
    temp = ids["temp_c"]
    n, spike_at = 300, 250
    rows = spiky_series(n, spike_at, 1, temp) + spiky_series(n, None, 2, temp)
    first = [r for r in rows if r[2] <= T0 + spike_at * MIN]  # ends with the spike
    second = [r for r in rows if r[2] > T0 + spike_at * MIN]
    det = detection(db_url)

    with psycopg.connect(db_url) as conn:
        Writer(conn, det).write(readings(first), [])
    state = {s[0]: s for s in db_state(db_url)}
    assert state[1][2] == spike_at + 1
    assert state[1][8] == 36.0, "the spike is pending until the next reading"
    assert state[1][9] == T0 + spike_at * MIN
    assert fetch(db_url, ANOMALIES) == []

    # A restarted worker: a new connection and a new Writer resume from the stored state.
    with psycopg.connect(db_url) as conn:
        writer = Writer(conn, detection(db_url))
        half = len(second) // 2
        writer.write(readings(second[:half]), [])
        writer.write(readings(second[half:]), [])
        before = snapshot(db_url)
        # Redelivery of a whole batch, and of a batch mixing old readings with one new one.
        again = writer.write(readings(second[half:]), [])
        assert not again.inserted.any()
        assert again.anomalies == 0
        assert again.rollup_rows == 0
        assert snapshot(db_url) == before
        late_new = (1, temp, T0 + n * MIN, 28.1)
        mixed = writer.write(readings([*second[:5], late_new]), [])
        assert mixed.inserted.tolist() == [False] * 5 + [True]

    state = {s[0]: s for s in db_state(db_url)}
    assert state[1][2] == n + 1
    assert state[2][2] == n
    assert math.isnan(state[1][8])
    # The same as the detectors over the whole stream in one batch, without any restart.
    whole = [*rows, late_new]
    want, a = run_detect(det, whole)
    assert_same_state(db_state(db_url), state_rows(want))
    stored = fetch(db_url, ANOMALIES)
    assert [s[:4] for s in stored] == [r[:4] for r in anomaly_rows(a.arrays())]
    assert [(s[0], s[2], s[3], s[5]) for s in stored] == [(1, T0 + spike_at * MIN, "spike", 36.0)]
    assert_rollups_match_readings(db_url)
    counts = fetch(db_url, "SELECT sum(n) FROM rollup_1m")
    assert counts == [(2 * n + 1,)]


def test_a_second_writer_waits_for_the_first_on_a_new_series(db_url):
    # Two workers get the first readings of one series at once: the second transaction must see
    # the state the first commits, not start the series afresh (DESIGN.md 3.6).
    temp = metric_ids(db_url)["temp_c"]
    rows = spiky_series(20, None, 5, temp)
    batch_a = rows[:10]
    batch_b = [(k, m, t + DAY, v) for k, m, t, v in rows[10:]]  # other buckets, even the day
    det = detection(db_url)
    with psycopg.connect(db_url) as conn:
        # Another sensor on both days first, so that the hypertable chunks exist: creating a
        # chunk would itself make the second writer wait.
        Writer(conn, None).write(readings([(99, temp, batch_a[0][2], 1.0),
                                           (99, temp, batch_b[0][2], 1.0)]), [])  # fmt: skip
    with (
        psycopg.connect(db_url) as conn_a,
        psycopg.connect(db_url) as conn_b,
        psycopg.connect(db_url, autocommit=True) as watch,
    ):
        writer_a, writer_b = Writer(conn_a, det), Writer(conn_b, det)
        conn_a.execute("SELECT 1")  # a transaction stays open: A's write is not yet committed
        writer_a.write(readings(batch_a), [])
        assert conn_a.info.transaction_status == TransactionStatus.INTRANS
        outcome: list[Any] = []
        thread = threading.Thread(
            target=lambda: outcome.append(_call(lambda: writer_b.write(readings(batch_b), [])))
        )
        thread.start()
        pid = conn_b.info.backend_pid
        wait_for(
            lambda: (
                watch.execute(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                == (True,)
                or not thread.is_alive()
            ),
            what="the second writer to wait for the first",
        )
        assert thread.is_alive(), "the second writer must wait for the first to commit"
        conn_a.commit()
        thread.join(60)
        assert not thread.is_alive()
    assert not isinstance(outcome[0], Exception), outcome[0]
    all_rows = batch_a + batch_b
    want, _ = run_detect(det, all_rows)
    state = [s for s in db_state(db_url) if s[0] == 5]
    assert state[0][2] == 20
    assert_same_state(state, state_rows(want))
    assert_rollups_match_readings(db_url)


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - handed to the test thread
        return exc
