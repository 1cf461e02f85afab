"""What the writer derives from newly stored readings, in the same transaction (DESIGN.md 3.2).

- Rollups: the partial aggregates of the new readings at every width (computed in NumPy by
  :mod:`processing.rollup`) are merged into the rollup tables by ``INSERT ... ON CONFLICT DO
  UPDATE``, whose merge is exact for counts, min/max and first/last.
- Detection: the state of every series in the batch is read ``FOR UPDATE``, advanced by
  :func:`processing.detect.detect` and written back, and the anomalies inserted. Workers that
  receive readings of the same series are serialised by row locks, so the state is the same as
  with one worker, and it is always on disk: a restarted worker resumes where the last commit
  left off. For a series seen for the first time there is no state row to lock yet; the lock
  that serialises is then the ``latest`` row of the series, upserted earlier in the same
  transaction (``tests/ingest/test_derive.py`` checks that a second writer waits).
- PM2.5 > PM10 is checked between readings of the same batch only.

Rows are sent in key order so that concurrent workers take their row locks in the same order.
"""

from __future__ import annotations

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from pantau.db.copy import copy_in, copy_out
from pantau.db.pgcopy import decode_rows, encode_rows
from processing.detect import KIND_NAMES, MetricRules, Params, State, detect
from processing.keys import series_key
from processing.rollup import TABLES, BucketStats, all_widths

Conn = psycopg.Connection[TupleRow]

_ROLLUP_COLUMNS = (
    "sensor_key", "metric_id", "bucket", "n", "sum", "sum_sq", "min", "max", "first_ts",
    "first_value", "last_ts", "last_value",
)  # fmt: skip
_ROLLUP_TYPES = [
    "int4", "int2", "timestamptz", "int8", "float8", "float8", "float8", "float8", "timestamptz",
    "float8", "timestamptz", "float8",
]  # fmt: skip
_MERGE = """INSERT INTO {table} AS r ({columns})
SELECT {columns} FROM {staging} ORDER BY sensor_key, metric_id, bucket
ON CONFLICT (sensor_key, metric_id, bucket) DO UPDATE SET
    n = r.n + EXCLUDED.n,
    sum = r.sum + EXCLUDED.sum,
    sum_sq = r.sum_sq + EXCLUDED.sum_sq,
    min = LEAST(r.min, EXCLUDED.min),
    max = GREATEST(r.max, EXCLUDED.max),
    first_ts = LEAST(r.first_ts, EXCLUDED.first_ts),
    first_value = CASE WHEN EXCLUDED.first_ts < r.first_ts
                       THEN EXCLUDED.first_value ELSE r.first_value END,
    last_ts = GREATEST(r.last_ts, EXCLUDED.last_ts),
    last_value = CASE WHEN EXCLUDED.last_ts > r.last_ts
                      THEN EXCLUDED.last_value ELSE r.last_value END"""

_STATE_COLUMNS = (
    "sensor_key", "metric_id", "n", "mean", "var", "last_value", "last_ts", "run",
    "pending_value", "pending_ts", "pending_z", "cusum_pos", "cusum_neg",
)  # fmt: skip
_STATE_FIELDS = (
    "sensor_key", "metric_id", "n", "mean", "var", "last_value", "last_ts_ms", "run",
    "pending_value", "pending_ts_ms", "pending_z", "cusum_pos", "cusum_neg",
)  # fmt: skip
_STATE_TYPES = [
    "int4", "int2", "int8", "float8", "float8", "float8", "timestamptz", "int8", "float8",
    "timestamptz", "float8", "float8", "float8",
]  # fmt: skip
_STATE_LOAD = """COPY (
    SELECT {columns} FROM detector_state s JOIN ingest_series USING (sensor_key, metric_id)
    ORDER BY sensor_key, metric_id FOR UPDATE OF s
) TO STDOUT (FORMAT BINARY)"""
_STATE_SAVE = """INSERT INTO detector_state AS d ({columns})
SELECT {columns} FROM ingest_state ORDER BY sensor_key, metric_id
ON CONFLICT (sensor_key, metric_id) DO UPDATE SET {updates}"""
# Anomaly kinds travel as codes (processing.anomalies.KIND_NAMES) and become names in SQL.
_ANOMALY_COLUMNS = ("sensor_key", "metric_id", "ts_ms", "kind", "score", "observed", "expected")
_ANOMALY_TYPES = ["int4", "int2", "timestamptz", "int2", "float8", "float8", "float8"]
_ANOMALIES = """INSERT INTO anomalies (sensor_key, metric_id, ts, kind, score, observed, expected)
SELECT sensor_key, metric_id, ts, (%s::text[])[kind + 1], score, observed, expected
FROM ingest_anomalies
ON CONFLICT DO NOTHING"""

_ROLLUP_STAGING = (
    "sensor_key integer, metric_id smallint, bucket timestamptz, n bigint, "
    "sum float8, sum_sq float8, min float8, max float8, first_ts timestamptz, "
    "first_value float8, last_ts timestamptz, last_value float8"
)
TEMP_TABLES = {
    **{f"ingest_{table}": _ROLLUP_STAGING for table in TABLES.values()},
    "ingest_series": "sensor_key integer, metric_id smallint",
    "ingest_state": "sensor_key integer, metric_id smallint, n bigint, mean float8, var float8, "
    "last_value float8, last_ts timestamptz, run bigint, pending_value float8, "
    "pending_ts timestamptz, pending_z float8, cusum_pos float8, cusum_neg float8",
    "ingest_anomalies": "sensor_key integer, metric_id smallint, ts timestamptz, kind smallint, "
    "score float8, observed float8, expected float8",
}


def create_temp_tables(conn: Conn) -> None:
    for name, columns in TEMP_TABLES.items():
        conn.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
                sql.Identifier(name), sql.SQL(columns)
            )
        )


def _rollup_rows(stats: BucketStats) -> bytes:
    return encode_rows(
        list(
            zip(
                _ROLLUP_TYPES,
                [
                    stats.sensor_key, stats.metric_id, stats.bucket_ms, stats.n, stats.sum,
                    stats.sum_sq, stats.min, stats.max, stats.first_ts_ms, stats.first_value,
                    stats.last_ts_ms, stats.last_value,
                ],
                strict=True,
            )
        )
    )  # fmt: skip


def merge_rollups(
    cur: psycopg.Cursor[TupleRow], sensor_key: np.ndarray, metric_id: np.ndarray,
    ts_ms: np.ndarray, value: np.ndarray,
) -> int:  # fmt: skip
    """Merge the new readings into every rollup table; returns the bucket rows written."""
    written = 0
    columns = sql.SQL(", ").join(map(sql.Identifier, _ROLLUP_COLUMNS))
    for width_ms, stats in all_widths(sensor_key, metric_id, ts_ms, value).items():
        if not len(stats):
            continue
        table = TABLES[width_ms]
        staging = sql.Identifier(f"ingest_{table}")  # emptied at commit: no TRUNCATE needed
        copy_in(
            cur, sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(staging), _rollup_rows(stats)
        )
        cur.execute(
            sql.SQL(_MERGE).format(table=sql.Identifier(table), columns=columns, staging=staging)
        )
        written += len(stats)
    return written


class Detection:
    """Runs the detectors on new readings inside the writer's transaction."""

    def __init__(self, rules: MetricRules, params: Params | None = None) -> None:
        self.rules = rules
        self.params = params or Params()
        cols = sql.SQL(", ").join(map(sql.Identifier, _STATE_COLUMNS))
        self.load_sql = sql.SQL(_STATE_LOAD).format(columns=cols)
        updates = sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in _STATE_COLUMNS[2:]
        )
        self.save_sql = sql.SQL(_STATE_SAVE).format(columns=cols, updates=updates)

    def run(
        self, cur: psycopg.Cursor[TupleRow], sensor_key: np.ndarray, metric_id: np.ndarray,
        ts_ms: np.ndarray, value: np.ndarray,
    ) -> int:  # fmt: skip
        """Load, advance and save the state of the batch's series; returns anomalies found."""
        series = np.unique(series_key(sensor_key, metric_id))
        copy_in(
            cur,
            "COPY ingest_series FROM STDIN (FORMAT BINARY)",
            encode_rows([("int4", (series >> 16).astype(np.int32)), ("int2", series & 0xFFFF)]),
        )
        returned = copy_out(cur, self.load_sql)
        # decode_rows gives the native dtypes State holds (int4 -> int32, timestamptz -> ms).
        state = (
            State(**dict(zip(_STATE_FIELDS, decode_rows(returned, _STATE_TYPES), strict=True)))
            if returned
            else State.empty()
        )
        new_state, anomalies, _ = detect(
            state, self.rules, self.params, sensor_key, metric_id, ts_ms, value
        )
        copy_in(
            cur,
            "COPY ingest_state FROM STDIN (FORMAT BINARY)",
            encode_rows(
                [
                    (t, getattr(new_state, f))
                    for t, f in zip(_STATE_TYPES, _STATE_FIELDS, strict=True)
                ]
            ),
        )
        cur.execute(self.save_sql)
        rows = anomalies.arrays()
        if rows["kind"].shape[0]:
            copy_in(
                cur,
                "COPY ingest_anomalies FROM STDIN (FORMAT BINARY)",
                encode_rows(
                    [(t, rows[c]) for t, c in zip(_ANOMALY_TYPES, _ANOMALY_COLUMNS, strict=True)]
                ),
            )
            cur.execute(_ANOMALIES, (list(KIND_NAMES),))
        return int(rows["kind"].shape[0])
