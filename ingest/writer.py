"""Writing a batch: one transaction holding its readings, its rejects and the latest values.

Readings go in by binary ``COPY`` into a temporary staging table, then
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` into ``readings``, itself run as a ``COPY ... TO``
so that the keys of the rows actually inserted come back as one binary stream. A redelivered
message therefore inserts nothing, and :attr:`WriteResult.inserted` tells downstream processing
exactly which readings are new (DESIGN.md 3.2). Those, and only those, are merged into the
rollups and run through the detectors in the same transaction (:mod:`ingest.derive`).
"""

from __future__ import annotations

import time

import numpy as np
import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from ingest.batch import Readings, RejectRow, WriteResult
from ingest.derive import Detection, create_temp_tables, merge_rollups
from ingest.snapshot import RegistrySnapshot, build_snapshot
from pantau.db.copy import copy_in, copy_out
from pantau.db.pgcopy import decode_keys, encode_readings
from pantau.timestamps import utc
from processing.arrays import BoolArray
from processing.keys import is_member, newest_per_series

Conn = psycopg.Connection[TupleRow]

_STAGING = """CREATE TEMP TABLE IF NOT EXISTS {} (
    sensor_key integer NOT NULL,
    metric_id  smallint NOT NULL,
    ts         timestamptz NOT NULL,
    value      double precision NOT NULL
) ON COMMIT DELETE ROWS"""

_INSERT = """COPY (
    INSERT INTO readings (sensor_key, metric_id, ts, value)
    SELECT sensor_key, metric_id, ts, value FROM ingest_staging
    ORDER BY sensor_key, metric_id, ts
    ON CONFLICT DO NOTHING
    RETURNING sensor_key, metric_id, ts
) TO STDOUT (FORMAT BINARY)"""

# Rows go in key order, so that workers writing the same keys take their locks in one order.
# "Latest" never moves backwards: a late reading only replaces an older one. The newest reading
# of each series in the batch is picked in NumPy, so only those few rows reach this statement.
_LATEST = """INSERT INTO latest (sensor_key, metric_id, ts, value)
SELECT sensor_key, metric_id, ts, value FROM ingest_latest ORDER BY sensor_key, metric_id
ON CONFLICT (sensor_key, metric_id) DO UPDATE
SET ts = EXCLUDED.ts, value = EXCLUDED.value
WHERE latest.ts < EXCLUDED.ts"""

# When Pantau last heard from each sensor of the batch's new readings (the arrival clock of sensor
# health, whatever the readings' own times); keys in order, as above; never moves backwards.
_HEARD = """INSERT INTO sensor_heard (sensor_key, heard_at)
SELECT k, now() FROM unnest(%s::integer[]) AS k ORDER BY k
ON CONFLICT (sensor_key) DO UPDATE SET heard_at = EXCLUDED.heard_at
WHERE sensor_heard.heard_at < EXCLUDED.heard_at"""

_REJECTS = """COPY rejects
    (received_at, topic, payload, payload_len, reason, detail, sensor_id, metric)
FROM STDIN"""


class Writer:
    """Writes batches on one connection (the caller owns reconnecting)."""

    def __init__(self, conn: Conn, detection: Detection | None = None) -> None:
        """``detection``: run the detectors on new readings (None: rollups only)."""
        self.conn = conn
        self.detection = detection
        for table in ("ingest_staging", "ingest_latest"):
            self.conn.execute(sql.SQL(_STAGING).format(sql.Identifier(table)))
        create_temp_tables(self.conn)
        self.conn.commit()

    def write(self, readings: Readings, rejects: list[RejectRow]) -> WriteResult:
        started = time.perf_counter()
        inserted: BoolArray = np.zeros(len(readings), dtype=np.bool_)
        rollup_rows = anomalies = 0
        with self.conn.transaction():
            cur = self.conn.cursor()
            if len(readings):
                copy_in(
                    cur,
                    "COPY ingest_staging FROM STDIN (FORMAT BINARY)",
                    encode_readings(
                        readings.sensor_key, readings.metric_id, readings.ts_ms, readings.value
                    ),
                )
                returned = copy_out(cur, _INSERT)
                if returned:
                    inserted = is_member(
                        readings.sensor_key,
                        readings.metric_id,
                        readings.ts_ms,
                        decode_keys(returned),
                    )
                newest = newest_per_series(readings.sensor_key, readings.metric_id, readings.ts_ms)
                copy_in(
                    cur,
                    "COPY ingest_latest FROM STDIN (FORMAT BINARY)",
                    encode_readings(
                        readings.sensor_key[newest],
                        readings.metric_id[newest],
                        readings.ts_ms[newest],
                        readings.value[newest],
                    ),
                )
                cur.execute(_LATEST)
                if inserted.any():
                    new = (
                        readings.sensor_key[inserted], readings.metric_id[inserted],
                        readings.ts_ms[inserted], readings.value[inserted],
                    )  # fmt: skip
                    cur.execute(_HEARD, (np.unique(new[0]).tolist(),))
                    rollup_rows = merge_rollups(cur, *new)
                    if self.detection is not None:
                        anomalies = self.detection.run(cur, *new)
            if rejects:
                with cur.copy(_REJECTS) as copy:
                    for r in rejects:
                        copy.write_row(
                            (
                                utc(r.received_ms),
                                r.topic,
                                r.payload,
                                r.payload_len,
                                r.reason,
                                r.detail,
                                r.sensor_id,
                                r.metric,
                            )
                        )
        return WriteResult(
            inserted=inserted,
            rejects=len(rejects),
            commit_s=time.perf_counter() - started,
            rollup_rows=rollup_rows,
            anomalies=anomalies,
        )


def load_snapshot(conn: Conn) -> RegistrySnapshot:
    """The registry as of now, read in one read-only REPEATABLE READ transaction on ``conn``, so
    that its queries see one state of the database (a kind, metric or sensor committed between
    two of them cannot make the parts disagree).

    ``conn`` must have no transaction open; it has none when this returns.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ValueError("load_snapshot needs a connection with no transaction open")
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        kinds = tuple(str(r[0]) for r in conn.execute("SELECT kind FROM sensor_kinds ORDER BY 1"))
        metrics = conn.execute(
            "SELECT metric_id, name, min_value, max_value FROM metrics ORDER BY metric_id"
        ).fetchall()
        kind_metrics = conn.execute("SELECT kind, metric_id FROM kind_metrics").fetchall()
        sensor_rows = conn.execute(
            "SELECT sensor_id, sensor_key, kind,"
            " (extract(epoch FROM installed_at) * 1000)::bigint FROM sensors WHERE active"
        ).fetchall()
    return build_snapshot(kinds, metrics, kind_metrics, sensor_rows)
