"""(b) The database's limits: binary COPY into ``readings``, the staging upsert, Pantau's Writer.

Each measurement gets a fresh database migrated with Pantau's schema. Batches are built before
the clock starts (except for the Writer, whose own encoding is part of what it costs), and each
batch is one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from bench.procs import CpuMeter, family_cpu_seconds, own_cpu_seconds
from bench.stack import fresh_database
from bench.workloads import STEP_MS, now_ms
from ingest.batch import Readings
from ingest.writer import Writer
from ops.stack.local import StackState
from pantau.db.pgcopy import encode_readings

Conn = psycopg.Connection[TupleRow]
Run = Callable[[], None]

COPY = "COPY readings (sensor_key, metric_id, ts, value) FROM STDIN (FORMAT BINARY)"
STAGING = """CREATE TEMP TABLE bench_staging (
    sensor_key integer NOT NULL,
    metric_id  smallint NOT NULL,
    ts         timestamptz NOT NULL,
    value      double precision NOT NULL
) ON COMMIT DELETE ROWS"""
COPY_STAGING = "COPY bench_staging FROM STDIN (FORMAT BINARY)"
UPSERT = """INSERT INTO readings (sensor_key, metric_id, ts, value)
SELECT sensor_key, metric_id, ts, value FROM bench_staging
ON CONFLICT DO NOTHING"""

METHODS = {
    "copy": "binary COPY into readings",
    "upsert": "COPY to temp staging + INSERT .. ON CONFLICT DO NOTHING",
    "writer": "Pantau Writer.write (upsert + RETURNING keys + latest)",
}


@dataclass(frozen=True)
class DbResult:
    method: str
    batch_rows: int
    rows: int
    stored: int
    seconds: float
    rows_per_s: float
    cpu_percent: dict[str, float]


def synthetic_readings(rows: int, sensors: int) -> Readings:
    """``rows`` readings in arrival order: every sensor once per second, ending a minute ago."""
    steps = -(-rows // sensors)
    first = now_ms() - 60_000 - steps * STEP_MS
    return Readings(
        sensor_key=np.tile(np.arange(1, sensors + 1, dtype=np.int32), steps)[:rows],
        metric_id=np.ones(rows, dtype=np.int16),
        ts_ms=first + np.repeat(np.arange(steps, dtype=np.int64) * STEP_MS, sensors)[:rows],
        value=(np.arange(rows, dtype=np.float64) * 37 % 1000) / 10,
    )


def split(readings: Readings, size: int) -> list[Readings]:
    return [
        Readings(
            sensor_key=readings.sensor_key[i : i + size],
            metric_id=readings.metric_id[i : i + size],
            ts_ms=readings.ts_ms[i : i + size],
            value=readings.value[i : i + size],
        )
        for i in range(0, len(readings), size)
    ]


def encoded(batches: Sequence[Readings]) -> list[bytes]:
    return [encode_readings(b.sensor_key, b.metric_id, b.ts_ms, b.value) for b in batches]


def prepare_copy(conn: Conn, batches: Sequence[Readings]) -> Run:
    streams = encoded(batches)

    def run() -> None:
        for data in streams:
            with conn.transaction(), conn.cursor().copy(COPY) as copy:
                copy.write(data)

    return run


def prepare_upsert(conn: Conn, batches: Sequence[Readings]) -> Run:
    streams = encoded(batches)
    conn.execute(STAGING)
    conn.commit()

    def run() -> None:
        for data in streams:
            with conn.transaction():
                with conn.cursor().copy(COPY_STAGING) as copy:
                    copy.write(data)
                conn.execute(UPSERT)

    return run


def prepare_writer(conn: Conn, batches: Sequence[Readings]) -> Run:
    writer = Writer(conn)

    def run() -> None:
        for batch in batches:
            writer.write(batch, [])

    return run


PREPARE: dict[str, Callable[[Conn, Sequence[Readings]], Run]] = {
    "copy": prepare_copy,
    "upsert": prepare_upsert,
    "writer": prepare_writer,
}


def measure_db(state: StackState, method: str, readings: Readings, batch_rows: int) -> DbResult:
    """Rows per second of ``method`` writing ``readings`` in batches of ``batch_rows``."""
    assert state.postgres_pid is not None
    postmaster = state.postgres_pid
    with fresh_database(state, method) as url, psycopg.connect(url) as conn:
        run = PREPARE[method](conn, split(readings, batch_rows))
        meter = CpuMeter(
            {"postgres": lambda: family_cpu_seconds(postmaster), "bench": own_cpu_seconds}
        )
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        cpu = meter.percent(seconds)
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
        conn.commit()
    return DbResult(
        method=method,
        batch_rows=batch_rows,
        rows=len(readings),
        stored=int(row[0]) if row else 0,
        seconds=round(seconds, 3),
        rows_per_s=round(len(readings) / seconds),
        cpu_percent=cpu,
    )
