"""Pariwisata: visitors, occupancy and density of the tourist zones against their capacity."""

from __future__ import annotations

from dashboards.board import Board, variable
from dashboards.panels import (
    Query,
    bargauge,
    coloured_cells,
    geomap,
    override,
    sql,
    state_timeline,
    steps,
    table,
    timeseries,
    value_colours,
)

# Crowding levels against capacity (processing/tourism.py): normal < 70 %, ramai < 90 %,
# padat <= 100 %, above that melebihi kapasitas.
CAPACITY = steps((None, "green"), (70, "yellow"), (90, "orange"), (100.001, "red"))
CROWDING = value_colours(
    {"normal": "green", "ramai": "yellow", "padat": "orange", "melebihi kapasitas": "red"}
)

_ZONES = "z.kind = 'tourism' AND z.zone_id IN ($zone)"

ZONES = sql("""
    SELECT zone_id AS __value, name AS __text FROM zones WHERE kind = 'tourism' ORDER BY name
""")

OCCUPANCY_NOW = sql(f"""
    SELECT z.name AS "Zona", 100 * t.capacity_ratio AS "Okupansi"
    FROM tourism_status t
    JOIN zones z USING (zone_id)
    WHERE {_ZONES}
    ORDER BY t.capacity_ratio DESC NULLS LAST
""")

ZONE_TABLE = sql(f"""
    SELECT z.name AS "Zona", t.crowding AS "Kepadatan", t.occupancy AS "Di dalam",
           z.capacity_persons AS "Kapasitas", 100 * t.capacity_ratio AS "Okupansi",
           t.density_ppm2 AS "Orang per m²", t.fruin_level AS "Fruin",
           t.visitors_today AS "Pengunjung hari ini", t.typical_to_date AS "Biasanya",
           a.opened_at AS "Peringatan sejak", t.ts AS "Data sampai"
    FROM tourism_status t
    JOIN zones z USING (zone_id)
    LEFT JOIN alarms a ON a.zone_id = t.zone_id AND a.rule = 'crowding' AND a.state <> 'cleared'
    WHERE {_ZONES}
    ORDER BY a.opened_at NULLS LAST, t.capacity_ratio DESC NULLS LAST
""")

HOURLY_PCT = sql(f"""
    SELECT h.hour AS "time", z.name AS metric, 100 * h.occupancy / z.capacity_persons AS value
    FROM tourism_hourly h
    JOIN zones z USING (zone_id)
    WHERE $__timeFilter(h.hour) AND {_ZONES} AND z.capacity_persons IS NOT NULL
    ORDER BY 1
""")

# "Today" is the WIB day of the end of the range, whatever the range is.
TODAY_VS_TYPICAL = sql(f"""
    SELECT h.hour AS "time", sum(h.visitors_to_date) AS "Hari ini",
           sum(h.typical_to_date) AS "Biasanya"
    FROM tourism_hourly h
    JOIN zones z USING (zone_id)
    WHERE {_ZONES}
      AND h.hour >= date_trunc('day', $__timeTo()::timestamptz AT TIME ZONE 'Asia/Jakarta')
                    AT TIME ZONE 'Asia/Jakarta'
      AND h.hour < $__timeTo()::timestamptz
    GROUP BY 1
    ORDER BY 1
""")

VISITORS = sql(f"""
    SELECT $__timeGroupAlias(h.hour, $__interval), z.name AS metric, sum(h.visitors) AS value
    FROM tourism_hourly h
    JOIN zones z USING (zone_id)
    WHERE $__timeFilter(h.hour) AND {_ZONES}
    GROUP BY 1, 2
    ORDER BY 1
""")

MAP = sql(f"""
    SELECT z.name AS "Zona", z.lat, z.lon, 100 * t.capacity_ratio AS "Okupansi",
           t.occupancy AS "Di dalam", t.crowding AS "Kepadatan"
    FROM zones z
    JOIN tourism_status t USING (zone_id)
    WHERE {_ZONES} AND z.lat IS NOT NULL AND z.lon IS NOT NULL
""")


def board() -> Board:
    b = Board(
        uid="pantau-pariwisata",
        title="Pariwisata",
        description="Tourist zones for the tourism office: occupancy and density against "
        "capacity, today against a typical day, crowding.",
        tags=["pantau", "pariwisata"],
        time_from="now/d",
        variables=[variable("zone", "Zona", ZONES, "Tourist zones with people counters.")],
    )
    b.add(
        bargauge(
            "Okupansi terhadap kapasitas",
            "People inside each zone now (cumulative in - out of its gates since opening, "
            "clamped at 0) as a share of its capacity. Capacities are reasoned estimates "
            "(see the fleet file), not official figures.",
            Query(OCCUPANCY_NOW),
            name="Zona",
            value="Okupansi",
            unit="percent",
            thresholds=CAPACITY,
            max_value=120,
            w=10,
            h=10,
        ),
        table(
            "Kepadatan dan peringatan",
            "Per zone now: crowding level (normal < 70 %, ramai < 90 %, padat <= 100 %, "
            "melebihi kapasitas), density in persons per m2 with Fruin's walkway level where "
            "the area is known, visitors today against the typical count by this hour (median "
            "of the same hour of the week over the previous 4 weeks), and since when a "
            "crowding alarm (over capacity for 10 min) is open.",
            Query(ZONE_TABLE),
            w=14,
            h=10,
            overrides=[
                override("Kepadatan", mappings=CROWDING, custom__cellOptions=coloured_cells()),
                override(
                    "Okupansi",
                    unit="percent",
                    decimals=0,
                    thresholds=CAPACITY,
                    custom__cellOptions=coloured_cells("color-text"),
                ),
                override("Orang per m²", decimals=3),
                override(
                    "Peringatan sejak",
                    custom__cellOptions=coloured_cells("color-text"),
                    color={"mode": "fixed", "fixedColor": "red"},
                ),
            ],
        ),
        timeseries(
            "Okupansi per jam",
            "People inside at the end of each hour as a share of capacity; the dashed line "
            "is the capacity.",
            [Query(HOURLY_PCT, "time_series")],
            unit="percent",
            w=12,
            thresholds=steps((None, "transparent"), (100, "red")),
            threshold_style="dashed",
        ),
        timeseries(
            "Hari ini vs hari biasa",
            "Visitors since opening, summed over the chosen zones, hour by hour on the WIB "
            "day the range ends in, against the typical count by the same hour (empty until "
            "the zones have a few weeks of history).",
            [Query(TODAY_VS_TYPICAL, "time_series")],
            unit="short",
            w=12,
        ),
        state_timeline(
            "Riwayat kepadatan",
            "Each zone's occupancy against capacity hour by hour, coloured by crowding level: "
            "when zones were ramai (yellow), padat (orange) or over capacity (red).",
            Query(HOURLY_PCT, "time_series"),
            unit="percent",
            thresholds=CAPACITY,
            w=12,
        ),
        timeseries(
            "Pengunjung per jam",
            "Entries per zone (sum of the count_in of its gates).",
            [Query(VISITORS, "time_series")],
            unit="short",
            w=12,
            interval="1h",
            bars=True,
        ),
        geomap(
            "Peta zona wisata",
            "Tourist zones coloured by occupancy against capacity. Coordinates come from a "
            "third-party dataset (see the fleet file).",
            Query(MAP),
            layer="Zona",
            colour_by="Okupansi",
            unit="percent",
            thresholds=CAPACITY,
            w=24,
            h=12,
            size=10,
        ),
    )
    return b
