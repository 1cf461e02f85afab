"""The API benchmark's database: a backfilled history of a scaled Jepara fleet, loaded fast.

The fleet is Jepara's zones with ``bins`` waste bins spread over its villages and kecamatan
(``simulators.scale.scale_fleet``), plus its footfall counters and air stations. Values are
generated with NumPy, not by the simulator, and loaded by binary COPY straight into
``readings``, one UTC day per transaction (two days at a time on two connections):

- every bin reports ``fill_pct`` every 15 minutes (its own second within the slot) over
  ``days`` days: a sawtooth that rises at the bin's rate, is emptied every 2 to 4 days at the
  bin's own phase, overflows up to ~100-125 %, with sensor noise;
- footfall counters report ``count_in``/``count_out`` each minute and air stations every
  5 minutes, over the last ``SIDE_DAYS`` days only (enough for ``pantau process``).

Each day's rollups (1m, 15m, 1h, 1d) are built in SQL from its raw rows (UTC days hold whole
buckets of every width), then ``latest`` from the last day, ``VACUUM ANALYZE``, and one run of
``pantau process`` (``Job.run_once``) so waste_status, tourism_status and air_ispu_hourly hold
rows, as after a day of production.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from monitor.job import Job
from monitor.settings import ProcessSettings
from pantau.db.pgcopy import encode_readings
from pantau.registry.fleet import Fleet, load_fleet
from pantau.registry.load import load_into
from processing.rollup import ROLLUPS
from simulators.scale import scale_fleet

MIN_MS = 60_000
SLOT_MS = 15 * MIN_MS
DAY_MS = 86_400_000
WIB_MS = 7 * 3_600_000
SIDE_DAYS = 4  # footfall and air history: ISPU needs 24 h windows over the last 48 h
LOADERS = 2  # connections loading days in parallel
COPY = "COPY readings (sensor_key, metric_id, ts, value) FROM STDIN (FORMAT BINARY)"
ROLLUP_TABLES = tuple((r.table, r.interval) for r in ROLLUPS)
ROLLUP = """INSERT INTO {table} (sensor_key, metric_id, bucket, n, sum, sum_sq, min, max,
    first_ts, first_value, last_ts, last_value)
SELECT sensor_key, metric_id, time_bucket(%(width)s::interval, ts), count(*), sum(value),
    sum(value * value), min(value), max(value), min(ts), first(value, ts), max(ts),
    last(value, ts)
FROM readings WHERE ts >= %(lo)s AND ts < %(hi)s GROUP BY 1, 2, 3"""
LATEST = """INSERT INTO latest (sensor_key, metric_id, ts, value)
SELECT DISTINCT ON (sensor_key, metric_id) sensor_key, metric_id, ts, value FROM readings
WHERE ts > %s ORDER BY sensor_key, metric_id, ts DESC"""
# Air metrics: typical level and relative diurnal swing (ug/m3, degC, %).
AIR = {"pm25_ugm3": (35, 0.4), "pm10_ugm3": (60, 0.4), "no2_ugm3": (30, 0.5),
       "so2_ugm3": (15, 0.3), "o3_ugm3": (50, -0.6), "co_ugm3": (800, 0.5),
       "temp_c": (29, -0.1), "rh_pct": (75, 0.15)}  # fmt: skip


@dataclass
class LoadStats:
    readings: int
    bins: int
    days: int
    copy_and_rollups_s: float
    latest_vacuum_s: float
    process_job_s: float
    total_s: float
    table_mb: dict[str, float]
    job_report: dict[str, str]


def api_fleet(bins: int) -> Fleet:
    """Jepara's zones, ``bins`` waste bins over its villages, its counters and stations."""
    jepara = load_fleet()
    waste = tuple(s for s in jepara.sensors if s.kind == "waste_bin")
    scaled = scale_fleet(Fleet(jepara.name, jepara.zones, waste), bins).sensors
    others = tuple(s for s in jepara.sensors if s.kind != "waste_bin")
    return Fleet(f"bench-api-{bins}", jepara.zones, scaled + others)


@dataclass(frozen=True)
class Streams:
    """Per-sensor parameters of the generated series (drawn once, seeded)."""

    bin_keys: np.ndarray
    offset_ms: np.ndarray
    period_h: np.ndarray
    phase_h: np.ndarray
    rate: np.ndarray
    residual: np.ndarray
    cap: np.ndarray
    ff_keys: np.ndarray
    ff_peak: np.ndarray
    air_keys: np.ndarray
    metric: dict[str, int]

    @classmethod
    def draw(cls, conn: psycopg.Connection[TupleRow], seed: int) -> Streams:
        rng = np.random.default_rng(seed)
        keys: dict[str, list[int]] = {"waste_bin": [], "footfall": [], "air_quality": []}
        for key, kind in conn.execute("SELECT sensor_key, kind FROM sensors ORDER BY sensor_key"):
            keys[str(kind)].append(int(key))
        metric = {str(n): int(i) for i, n in conn.execute("SELECT metric_id, name FROM metrics")}
        b = len(keys["waste_bin"])
        return cls(
            bin_keys=np.array(keys["waste_bin"], dtype=np.int32),
            offset_ms=rng.integers(0, SLOT_MS // 1000, b) * 1000,
            period_h=rng.choice([48.0, 72.0, 84.0, 96.0], b),
            phase_h=rng.uniform(0, 96, b),
            rate=rng.uniform(0.3, 1.6, b),
            residual=rng.uniform(0, 6, b),
            cap=rng.uniform(100, 125, b),
            ff_keys=np.array(keys["footfall"], dtype=np.int32),
            ff_peak=rng.uniform(1, 6, len(keys["footfall"])),
            air_keys=np.array(keys["air_quality"], dtype=np.int32),
            metric=metric,
        )


Day = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def bin_day(s: Streams, day_ms: int, lo: int, hi: int, rng: np.random.Generator) -> Day:
    """``fill_pct`` of every bin over one UTC day, kept where ``lo < ts <= hi``; time-major."""
    ts = day_ms + np.arange(96, dtype=np.int64)[:, None] * SLOT_MS + s.offset_ms[None, :]
    hours = ts / 3_600_000
    since = np.mod(hours - s.phase_h, s.period_h)
    fill = np.minimum(s.residual + s.rate * since, s.cap) + rng.normal(0, 1.2, ts.shape)
    keys = np.broadcast_to(s.bin_keys, ts.shape)
    keep = (ts > lo) & (ts <= hi)
    metric = np.full(int(keep.sum()), s.metric["fill_pct"], dtype=np.int16)
    return keys[keep], metric, ts[keep], np.clip(fill[keep], -5, 150)


def side_day(s: Streams, day_ms: int, lo: int, hi: int, rng: np.random.Generator) -> Day:
    """Footfall counts per minute and air readings per 5 minutes over one UTC day."""
    parts: list[Day] = []
    minute = day_ms + np.arange(1440, dtype=np.int64) * MIN_MS
    hour_wib = ((minute + WIB_MS) % DAY_MS) / 3_600_000
    open_ = np.clip(np.sin(np.pi * (hour_wib - 7) / 11), 0, None) ** 1.5
    leave = np.clip(np.sin(np.pi * (hour_wib - 9) / 9), 0, None) ** 1.5
    for name, shape in (("count_in", open_), ("count_out", leave)):
        lam = shape[:, None] * s.ff_peak[None, :]
        parts.append(_flat(s.ff_keys, s.metric[name], minute, rng.poisson(lam).astype(float)))
    five = minute[::5]
    diurnal = np.sin(2 * np.pi * (((five + WIB_MS) % DAY_MS) / DAY_MS - 0.3))
    for name, (level, swing) in AIR.items():
        base = level * (1 + swing * diurnal)[:, None]
        noise = rng.lognormal(0, 0.15, (five.shape[0], s.air_keys.shape[0]))
        parts.append(_flat(s.air_keys, s.metric[name], five, base * noise))
    k, m, t, v = (np.concatenate([p[i] for p in parts]) for i in range(4))
    keep = (t > lo) & (t <= hi)
    return k[keep], m[keep], t[keep], v[keep]


def _flat(keys: np.ndarray, metric: int, ts: np.ndarray, value: np.ndarray) -> Day:
    """Rows of a (time, sensor) grid; each sensor reports at its own second of the interval."""
    t = ts[:, None] + (np.arange(keys.shape[0], dtype=np.int64) * 7_000 % 60_000)[None, :]
    k = np.broadcast_to(keys, t.shape).ravel()
    return k, np.full(k.shape[0], metric, dtype=np.int16), t.ravel(), value.ravel()


def load_day(url: str, s: Streams, day_ms: int, start_ms: int, end_ms: int) -> int:
    """Generate, COPY and roll up one UTC day; returns the readings stored."""
    rng = np.random.default_rng(day_ms // DAY_MS)
    parts = [bin_day(s, day_ms, start_ms, end_ms, rng)]
    if day_ms + DAY_MS > end_ms - SIDE_DAYS * DAY_MS:
        parts.append(side_day(s, day_ms, max(start_ms, end_ms - SIDE_DAYS * DAY_MS), end_ms, rng))
    k, m, t, v = (np.concatenate([p[i] for p in parts]) for i in range(4))
    lo, hi = _utc(day_ms), _utc(day_ms + DAY_MS)
    with psycopg.connect(url) as conn:
        with conn.cursor().copy(COPY) as copy:
            copy.write(encode_readings(k.astype(np.int32), m, t.astype(np.int64), v))
        # Commit before the rollups: a transaction that created a chunk holds a lock on the
        # hypertable until it ends, which would make the other loader's COPY wait.
        conn.commit()
        for table, width in ROLLUP_TABLES:
            conn.execute(ROLLUP.format(table=table), {"width": width, "lo": lo, "hi": hi})
    return int(k.shape[0])


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def load(url: str, fleet: Fleet, days: int, end_ms: int, say: Callable[[str], None]) -> LoadStats:
    """Register ``fleet`` and fill ``url`` with ``days`` of history ending at ``end_ms``."""
    started = time.monotonic()
    start_ms = end_ms - days * DAY_MS
    with psycopg.connect(url) as conn:
        load_into(conn, fleet)
        streams = Streams.draw(conn, seed=20261128)
    first = start_ms - start_ms % DAY_MS
    day_list = list(range(first, end_ms, DAY_MS))
    rows = 0
    with ThreadPoolExecutor(LOADERS) as pool:
        futures = [pool.submit(load_day, url, streams, d, start_ms, end_ms) for d in day_list]
        for n, future in enumerate(futures, 1):
            rows += future.result()
            if n % 10 == 0 or n == len(futures):
                say(f"    {n}/{len(futures)} days, {rows:,} readings")
    copied = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LATEST, (_utc(end_ms - DAY_MS),))
        conn.execute("VACUUM ANALYZE")
    vacuumed = time.monotonic()
    with psycopg.connect(url) as conn:
        report = Job(conn, ProcessSettings(database_url=url)).run_once(end_ms)
        sizes = {
            t: round(float(r[0]) / 2**20, 1)
            for t in ("readings", "rollup_1m", "rollup_15m", "rollup_1h", "rollup_1d")
            for r in conn.execute("SELECT hypertable_size(%s::regclass)", (t,))
        }
    done = time.monotonic()
    return LoadStats(
        readings=rows,
        bins=int(streams.bin_keys.shape[0]),
        days=days,
        copy_and_rollups_s=round(copied - started, 1),
        latest_vacuum_s=round(vacuumed - copied, 1),
        process_job_s=round(done - vacuumed, 1),
        total_s=round(done - started, 1),
        table_mb=sizes,
        job_report={k: str(v) for k, v in report.items()},
    )
