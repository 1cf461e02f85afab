"""Sampah (DLH): the waste bins of the desa mandiri sampah villages and the kecamatan TPS."""

from __future__ import annotations

from dashboards.board import Board, variable
from dashboards.panels import (
    Query,
    coloured_cells,
    geomap,
    override,
    sql,
    stat,
    steps,
    table,
    timeseries,
    value_colours,
)
from dashboards.rollups import by_interval

# Fill colours: collection at 80 % (README, Waste), overflow at 100 %.
FILL = steps((None, "green"), (60, "yellow"), (80, "orange"), (100, "red"))

_BINS = "s.kind = 'waste_bin' AND s.active AND s.zone_id IN ($village)"

VILLAGES = sql("""
    SELECT z.zone_id AS __value, z.name AS __text
    FROM zones z
    WHERE EXISTS (SELECT 1 FROM sensors s WHERE s.zone_id = z.zone_id AND s.kind = 'waste_bin')
    ORDER BY z.name
""")

SUMMARY = sql(f"""
    SELECT count(*) AS "Tempat sampah",
           count(*) FILTER (WHERE w.needs_collection) AS "Perlu diangkut",
           count(*) FILTER (WHERE w.overflowing) AS "Meluap",
           count(*) FILTER (WHERE w.fire_risk IN ('watch', 'alert')) AS "Risiko kebakaran",
           count(*) FILTER (WHERE NOT st.online) AS "Offline",
           count(*) FILTER (WHERE bl.alarm_id IS NOT NULL) AS "Baterai lemah"
    FROM sensors s
    LEFT JOIN waste_status w USING (sensor_key)
    LEFT JOIN sensor_status st USING (sensor_key)
    LEFT JOIN alarms bl
           ON bl.sensor_key = s.sensor_key AND bl.rule = 'battery_low' AND bl.state <> 'cleared'
    WHERE {_BINS}
""")

MAP = sql(f"""
    SELECT s.sensor_id AS "Tempat sampah", z.name AS "Desa", s.lat, s.lon,
           w.fill_pct AS "Terisi", w.predicted_full_at AS "Perkiraan penuh",
           CASE WHEN st.online THEN 'online' ELSE 'offline' END AS "Status"
    FROM sensors s
    JOIN waste_status w USING (sensor_key)
    LEFT JOIN zones z USING (zone_id)
    LEFT JOIN sensor_status st USING (sensor_key)
    WHERE {_BINS} AND s.lat IS NOT NULL AND s.lon IS NOT NULL
""")

TO_COLLECT = sql(f"""
    SELECT s.sensor_id AS "Tempat sampah", z.name AS "Desa", w.fill_pct AS "Terisi",
           w.fill_rate_pct_per_h AS "Laju", w.predicted_full_at AS "Perkiraan penuh",
           w.collection_reason AS "Alasan", w.fire_risk AS "Risiko kebakaran",
           w.ts AS "Pembacaan terakhir"
    FROM waste_status w
    JOIN sensors s USING (sensor_key)
    LEFT JOIN zones z USING (zone_id)
    WHERE w.needs_collection AND {_BINS}
    ORDER BY w.overflowing DESC, w.predicted_full_at NULLS LAST, w.fill_pct DESC
""")

VILLAGE_FIGURES = sql("""
    SELECT z.name AS "Desa", z.kecamatan AS "Kecamatan", f.bins AS "Tempat sampah",
           f.collections_per_week AS "Pengangkutan per minggu",
           f.mean_fill_at_collection_pct AS "Terisi saat diangkut",
           f.wasted_trips AS "Angkut sia-sia", f.overflow_hours AS "Jam meluap",
           f.period_days AS "Periode (hari)"
    FROM waste_village_figures f
    JOIN zones z USING (zone_id)
    WHERE f.zone_id IN ($village)
    ORDER BY f.overflow_hours DESC, z.name
""")

FILL_TREND = by_interval(
    sql("""
    SELECT time_bucket({step}, r.bucket) AS "time", z.name AS metric,
           sum(r.sum) / sum(r.n) AS value
    FROM {rollup} r
    JOIN sensors s USING (sensor_key)
    JOIN zones z USING (zone_id)
    JOIN metrics m USING (metric_id)
    WHERE {guard} AND $__timeFilter(r.bucket) AND m.name = 'fill_pct'
      AND s.kind = 'waste_bin' AND s.zone_id IN ($village)
    GROUP BY 1, 2
"""),
    finest_s=900,
)

EMPTYINGS = sql("""
    SELECT $__timeGroupAlias(e.ts, $__interval), z.name AS metric, count(*) AS value
    FROM waste_events e
    JOIN sensors s USING (sensor_key)
    JOIN zones z USING (zone_id)
    WHERE $__timeFilter(e.ts) AND s.zone_id IN ($village)
    GROUP BY 1, 2
    ORDER BY 1
""")

EVENTS = sql("""
    SELECT e.ts AS "Waktu", s.sensor_id AS "Tempat sampah", z.name AS "Desa",
           e.fill_before AS "Sebelum", e.fill_after AS "Sesudah"
    FROM waste_events e
    JOIN sensors s USING (sensor_key)
    LEFT JOIN zones z USING (zone_id)
    WHERE $__timeFilter(e.ts) AND s.zone_id IN ($village)
    ORDER BY e.ts DESC
    LIMIT 500
""")

HEALTH = sql(f"""
    SELECT s.sensor_id AS "Tempat sampah", z.name AS "Desa",
           CASE WHEN st.online THEN 'online' ELSE 'offline' END AS "Status",
           st.last_seen AS "Terakhir terlihat", w.battery_v AS "Baterai",
           bl.opened_at AS "Baterai lemah sejak"
    FROM sensors s
    JOIN sensor_status st USING (sensor_key)
    LEFT JOIN waste_status w USING (sensor_key)
    LEFT JOIN zones z USING (zone_id)
    LEFT JOIN alarms bl
           ON bl.sensor_key = s.sensor_key AND bl.rule = 'battery_low' AND bl.state <> 'cleared'
    WHERE {_BINS} AND (NOT st.online OR bl.alarm_id IS NOT NULL)
    ORDER BY st.online, w.battery_v
""")

_REASONS = value_colours(
    {"overflow": "red", "over_threshold": "orange", "predicted_full": "yellow"},
    {"overflow": "meluap", "over_threshold": "≥ 80 %", "predicted_full": "penuh sebelum ronde"},
)
_FIRE = value_colours(
    {"alert": "red", "watch": "orange", "none": "transparent", "unknown": "transparent"},
    {"alert": "waspada", "watch": "pantau", "none": "-", "unknown": "?"},
)
_ONLINE = value_colours({"offline": "red", "online": "green"})


def board() -> Board:
    b = Board(
        uid="pantau-sampah",
        title="Sampah",
        description="Waste bins for DLH: fill, collection needs, villages compared, sensor health.",
        tags=["pantau", "dlh", "sampah"],
        time_from="now-7d",
        variables=[
            variable(
                "village",
                "Desa / kecamatan",
                VILLAGES,
                "Villages (desa mandiri sampah) and kecamatan TPS sites that have bins.",
            )
        ],
    )
    b.add(
        stat(
            "Ringkasan",
            "Bins now: how many need collection (fill >= 80 %, overflowing, or predicted full "
            "before the next round), overflow (>= 100 %), fire risk (watch or alert), offline "
            "(silent for 3 x their interval, or last will) and with an active battery_low alarm.",
            Query(SUMMARY),
            thresholds=steps((None, "green"), (1, "orange")),
            overrides=[override("Tempat sampah", color={"mode": "fixed", "fixedColor": "blue"})],
        ),
        geomap(
            "Peta tempat sampah",
            "Every bin at its coordinates, coloured by its latest fill: green < 60 %, yellow "
            "< 80 %, orange needs collection, red overflowing. Bins of a village are scattered "
            "around the village point (planned deployment, not surveyed).",
            Query(MAP),
            layer="Tempat sampah",
            colour_by="Terisi",
            unit="percent",
            thresholds=FILL,
            w=12,
            h=13,
        ),
        table(
            "Perlu diangkut",
            "Bins that need collection now, overflowing first, then by predicted full time "
            "(the least-squares fill rate since the last emptying, extended to 100 %).",
            Query(TO_COLLECT),
            w=12,
            h=13,
            overrides=[
                override(
                    "Terisi",
                    unit="percent",
                    decimals=0,
                    thresholds=FILL,
                    custom__cellOptions=coloured_cells(),
                ),
                override("Laju", unit="suffix: %/jam", decimals=1),
                override("Alasan", mappings=_REASONS, custom__cellOptions=coloured_cells()),
                override(
                    "Risiko kebakaran",
                    mappings=_FIRE,
                    custom__cellOptions=coloured_cells("color-text"),
                ),
            ],
        ),
        table(
            "Desa dibandingkan",
            "Per village over the last 28 days: collections per week, mean fill when collected "
            "(collecting below 40 % is a wasted trip), wasted trips and hours spent "
            "overflowing. Recomputed by pantau process.",
            Query(VILLAGE_FIGURES),
            w=24,
            h=10,
            overrides=[
                override(
                    "Terisi saat diangkut",
                    unit="percent",
                    decimals=0,
                    thresholds=steps((None, "red"), (40, "yellow"), (60, "green")),
                    custom__cellOptions=coloured_cells(),
                ),
                override(
                    "Jam meluap",
                    unit="h",
                    decimals=1,
                    thresholds=steps((None, "green"), (0.25, "orange"), (12, "red")),
                    custom__cellOptions=coloured_cells("color-text"),
                ),
                override("Pengangkutan per minggu", decimals=1),
            ],
        ),
        timeseries(
            "Tren pengisian",
            "Mean fill per village from the 15-minute rollups (hourly for long ranges). A saw "
            "tooth is normal: bins fill, then drop when emptied.",
            [Query(FILL_TREND, "time_series")],
            unit="percent",
            w=12,
            interval="15m",
            thresholds=steps((None, "transparent"), (80, "orange"), (100, "red")),
            threshold_style="dashed",
        ),
        timeseries(
            "Pengosongan",
            "Emptying events per village: a drop of >= 30 points, or >= 15 with the lid tilted "
            ">= 45 degrees.",
            [Query(EMPTYINGS, "time_series")],
            unit="short",
            w=12,
            interval="1h",
            bars=True,
        ),
        table(
            "Riwayat pengosongan",
            "The latest 500 emptying events in the range, with the fill before and after.",
            Query(EVENTS),
            w=12,
            overrides=[
                override("Sebelum", unit="percent", decimals=0),
                override("Sesudah", unit="percent", decimals=0),
            ],
        ),
        table(
            "Offline dan baterai lemah",
            "Bins that are offline now or have an active battery_low alarm (<= 3.4 V for "
            "30 min), offline first, then by battery voltage.",
            Query(HEALTH),
            w=12,
            overrides=[
                override("Status", mappings=_ONLINE, custom__cellOptions=coloured_cells()),
                override(
                    "Baterai",
                    unit="volt",
                    decimals=2,
                    thresholds=steps((None, "red"), (3.5, "green")),
                    custom__cellOptions=coloured_cells("color-text"),
                ),
            ],
        ),
    )
    return b
