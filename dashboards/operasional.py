"""Operasional (engineers): ingest rate, rejects, latency, sensor health, alarms, the job."""

from __future__ import annotations

from dashboards.board import Board, variable
from dashboards.panels import (
    Query,
    coloured_cells,
    override,
    sql,
    stat,
    steps,
    table,
    timeseries,
    value_colours,
)
from dashboards.rollups import by_interval

KINDS = sql("SELECT kind AS __value, kind AS __text FROM sensor_kinds ORDER BY kind")

# Window for "since the last commit": the fleet's footfall counters report every minute.
COMMIT_WINDOW = "15 minutes"

SUMMARY = sql(f"""
    SELECT
      (SELECT count(*) FROM sensor_status st JOIN sensors s USING (sensor_key)
        WHERE NOT st.online AND s.active AND s.kind IN ($kind)) AS "Sensor offline",
      (SELECT count(*) FROM alarms a LEFT JOIN sensors s USING (sensor_key)
        WHERE a.state <> 'cleared' AND (a.sensor_key IS NULL OR s.kind IN ($kind)))
        AS "Alarm aktif",
      (SELECT count(*) FROM rejects WHERE $__timeFilter(received_at)) AS "Penolakan",
      (SELECT greatest(0, extract(epoch FROM $__timeTo()::timestamptz - max(received_at)))
         FROM readings
        WHERE ts > $__timeTo()::timestamptz - interval '{COMMIT_WINDOW}')
        AS "Sejak commit terakhir"
""")

READINGS_RATE = by_interval(
    sql("""
    SELECT time_bucket({step}, r.bucket) AS "time", s.kind AS metric,
           sum(r.n) / {step_s} AS value
    FROM {rollup} r
    JOIN sensors s USING (sensor_key)
    WHERE {guard} AND $__timeFilter(r.bucket) AND s.kind IN ($kind)
    GROUP BY 1, 2
""")
)

REJECTS = sql("""
    SELECT $__timeGroupAlias(received_at, $__interval), reason AS metric, count(*) AS value
    FROM rejects
    WHERE $__timeFilter(received_at)
    GROUP BY 1, 2
    ORDER BY 1
""")

LATEST_REJECTS = sql("""
    SELECT received_at AS "Diterima", reason AS "Alasan", detail AS "Rincian", topic AS "Topik",
           sensor_id AS "Sensor", metric AS "Metrik", payload_len AS "Ukuran"
    FROM rejects
    WHERE $__timeFilter(received_at)
    ORDER BY received_at DESC
    LIMIT 200
""")

LATENCY = sql("""
    SELECT $__timeGroupAlias(r.ts, $__interval),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.received_at - r.ts))
             AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM r.received_at - r.ts))
             AS p95,
           max(extract(epoch FROM r.received_at - r.ts)) AS maks
    FROM readings r
    JOIN sensors s USING (sensor_key)
    WHERE $__timeFilter(r.ts) AND s.kind IN ($kind)
    GROUP BY 1
    ORDER BY 1
""")

ANOMALIES = sql("""
    SELECT $__timeGroupAlias(a.ts, $__interval), a.kind AS metric, count(*) AS value
    FROM anomalies a
    JOIN sensors s USING (sensor_key)
    WHERE $__timeFilter(a.ts) AND s.kind IN ($kind)
    GROUP BY 1, 2
    ORDER BY 1
""")

OFFLINE = sql("""
    SELECT s.sensor_id AS "Sensor", s.kind AS "Jenis", z.name AS "Zona", st.reason AS "Alasan",
           st.since AS "Sejak", st.last_seen AS "Terakhir terlihat"
    FROM sensor_status st
    JOIN sensors s USING (sensor_key)
    LEFT JOIN zones z USING (zone_id)
    WHERE NOT st.online AND s.active AND s.kind IN ($kind)
    ORDER BY st.since
""")

OPEN_ALARMS = sql("""
    SELECT a.opened_at AS "Dibuka", a.severity AS "Tingkat", a.rule AS "Aturan",
           coalesce(s.sensor_id, a.zone_id) AS "Subjek", coalesce(s.kind, 'zona') AS "Jenis",
           a.state AS "Status", a.message AS "Pesan", a.last_value AS "Nilai",
           a.acknowledged_by AS "Di-ack oleh"
    FROM alarms a
    LEFT JOIN sensors s USING (sensor_key)
    WHERE a.state <> 'cleared' AND (a.sensor_key IS NULL OR s.kind IN ($kind))
    ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
             a.opened_at DESC
""")

JOBS = sql("""
    SELECT job AS "Job", last_run_at AS "Terakhir jalan", duration_ms AS "Durasi",
           detail::text AS "Rincian"
    FROM job_runs
    ORDER BY job
""")

_SEVERITY = value_colours({"critical": "red", "warning": "orange", "info": "blue"})


def board() -> Board:
    b = Board(
        uid="pantau-operasional",
        title="Operasional",
        description="For engineers: ingest rate, rejects, latency, in-flight backlog, sensor "
        "health, open alarms and the processing job.",
        tags=["pantau", "operasional"],
        time_from="now-6h",
        refresh="30s",
        variables=[variable("kind", "Jenis sensor", KINDS, "Sensor kinds.")],
    )
    b.add(
        stat(
            "Ringkasan",
            "Now: sensors offline, alarms not yet cleared, rejected messages or readings in the "
            "range, and seconds since the newest commit. The last is the database's closest "
            "measure of messages in flight: the worker acknowledges a message only after its "
            "transaction commits, so while devices send and this grows, delivered messages "
            "wait unacknowledged. The exact count is the worker's Prometheus gauge "
            "pantau_ingest_unacked_messages (PANTAU_INGEST_METRICS_PORT); it is not stored in "
            "the database. Empty when nothing was committed in the last "
            f"{COMMIT_WINDOW}.",
            Query(SUMMARY),
            thresholds=steps((None, "green"), (1, "orange")),
            overrides=[
                override(
                    "Sejak commit terakhir",
                    unit="s",
                    thresholds=steps((None, "green"), (120, "orange"), (600, "red")),
                ),
            ],
        ),
        timeseries(
            "Pembacaan per detik",
            "Readings stored per second by kind, from the rollups (1-minute buckets for short "
            "ranges, 15-minute and hourly for long ones), by the readings' own time. Live, "
            "this is the ingest rate; after a backfill it shows the history's rate, not when "
            "it arrived.",
            [Query(READINGS_RATE, "time_series")],
            unit="reqps",
            w=12,
            interval="1m",
        ),
        timeseries(
            "Penolakan per alasan",
            "Rejected messages or readings per reason code (rejects table). Usually empty: "
            "only malformed payloads, unknown sensors or metrics, out-of-range values and "
            "timestamps far in the future land here.",
            [Query(REJECTS, "time_series", may_be_empty="no message was rejected in the range")],
            unit="short",
            w=12,
            interval="1m",
            bars=True,
        ),
        timeseries(
            "Latensi sampai commit",
            "Seconds from each reading's timestamp to its commit (received_at - ts), "
            "percentiles per bucket. It includes device-side delay: gateways batch up to 15 "
            "minutes, and device clocks drift. Pure database time per batch is the worker's "
            "Prometheus histogram pantau_ingest_commit_seconds. After a backfill it is the "
            "backfill's delay.",
            [Query(LATENCY, "time_series")],
            unit="s",
            w=12,
            interval="1m",
        ),
        timeseries(
            "Anomali per jenis",
            "Anomalies found by the detectors in the ingest transaction, per kind (spike, "
            "level_shift, stuck, out_of_range, impossible, drift).",
            [Query(ANOMALIES, "time_series")],
            unit="short",
            w=12,
            interval="5m",
            bars=True,
        ),
        table(
            "Sensor offline",
            "Sensors offline now: silent for 3 x their expected interval, or their last will "
            "(retained status 'offline') came after their last reading.",
            Query(OFFLINE),
            w=12,
        ),
        table(
            "Alarm aktif",
            "Alarms open or acknowledged (not cleared), critical first. They open and clear "
            "with hysteresis and minimum durations (README, Health and alarms); acknowledge "
            "them through the API.",
            Query(OPEN_ALARMS),
            w=12,
            overrides=[
                override("Tingkat", mappings=_SEVERITY, custom__cellOptions=coloured_cells())
            ],
        ),
        table(
            "Penolakan terakhir",
            "The newest 200 rejects in the range with their reason and detail (the payload "
            "itself is not readable from Grafana).",
            Query(LATEST_REJECTS, may_be_empty="no message was rejected in the range"),
            w=12,
            h=8,
        ),
        table(
            "Job terakhir",
            "When each scheduled job last ran (pantau process runs every 30 s by default), "
            "how long it took and what it did.",
            Query(JOBS),
            w=12,
            h=8,
            overrides=[override("Durasi", unit="ms", decimals=0)],
        ),
    )
    return b
