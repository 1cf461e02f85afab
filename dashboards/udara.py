"""Kualitas udara (DLH): ISPU per station, its category and dominant pollutant, the trends."""

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
from processing.air import ISPU_CATEGORIES

# Categories and colours of Permen LHK P.14/2020 (Baik hijau 0-50, Sedang biru 51-100, Tidak
# Sehat kuning 101-200, Sangat Tidak Sehat merah 201-300, Berbahaya hitam > 300), from the same
# table the ISPU computation uses. ISPU is a whole number, so the steps sit on 51, 101, ...
ISPU = steps(*((c.lower or None, c.hex) for c in ISPU_CATEGORIES))
CATEGORIES = value_colours({c.name_id: c.hex for c in ISPU_CATEGORIES})
POLLUTANTS = value_colours(
    dict.fromkeys(("pm25", "pm10", "so2", "co", "o3", "no2"), "text"),
    {"pm25": "PM2.5", "pm10": "PM10", "so2": "SO₂", "co": "CO", "o3": "O₃", "no2": "NO₂"},
)

_STATIONS = "s.kind = 'air_quality' AND s.active AND s.sensor_id IN ($station)"
# The newest hourly ISPU of each station within the dashboard's range.
_LATEST = """JOIN LATERAL (
        SELECT a.* FROM air_ispu_hourly a
        WHERE a.sensor_key = s.sensor_key AND $__timeFilter(a.hour)
        ORDER BY a.hour DESC LIMIT 1
    ) h ON true"""

STATIONS = sql("""
    SELECT s.sensor_id AS __value, coalesce(s.name, s.sensor_id) AS __text
    FROM sensors s
    WHERE s.kind = 'air_quality' AND s.active
    ORDER BY s.sensor_id
""")

POLLUTANT_METRICS = sql("""
    SELECT m.name AS __value, m.name AS __text
    FROM metrics m
    JOIN kind_metrics k USING (metric_id)
    WHERE k.kind = 'air_quality' AND m.unit = 'ug/m3'
    ORDER BY m.metric_id
""")

NOW = sql(f"""
    SELECT s.sensor_id AS "Stasiun", h.ispu AS "ISPU"
    FROM sensors s
    {_LATEST}
    WHERE {_STATIONS}
    ORDER BY s.sensor_id
""")

DETAIL = sql(f"""
    SELECT coalesce(s.name, s.sensor_id) AS "Stasiun", h.hour AS "Jam", h.ispu AS "ISPU",
           h.category AS "Kategori", h.dominant AS "Polutan dominan",
           h.pm25_ispu AS "PM2.5", h.pm10_ispu AS "PM10", h.so2_ispu AS "SO₂",
           h.co_ispu AS "CO", h.o3_ispu AS "O₃", h.no2_ispu AS "NO₂",
           h.us_aqi AS "US AQI", h.us_category AS "Kategori US", h.window_h AS "Jendela (jam)"
    FROM sensors s
    {_LATEST}
    WHERE {_STATIONS}
    ORDER BY h.ispu DESC
""")

MAP = sql(f"""
    SELECT coalesce(s.name, s.sensor_id) AS "Stasiun", s.lat, s.lon, h.ispu AS "ISPU",
           h.category AS "Kategori", h.dominant AS "Polutan dominan"
    FROM sensors s
    {_LATEST}
    WHERE {_STATIONS} AND s.lat IS NOT NULL AND s.lon IS NOT NULL
""")

TREND = sql(f"""
    SELECT a.hour AS "time", s.sensor_id AS metric, a.ispu AS value
    FROM air_ispu_hourly a
    JOIN sensors s USING (sensor_key)
    WHERE $__timeFilter(a.hour) AND {_STATIONS}
    ORDER BY 1
""")

POLLUTION = by_interval(
    sql("""
    SELECT time_bucket({step}, r.bucket) AS "time", s.sensor_id || ' ' || m.name AS metric,
           sum(r.sum) / sum(r.n) AS value
    FROM {rollup} r
    JOIN sensors s USING (sensor_key)
    JOIN metrics m USING (metric_id)
    WHERE {guard} AND $__timeFilter(r.bucket) AND m.name IN ($pollutant)
      AND s.kind = 'air_quality' AND s.sensor_id IN ($station)
    GROUP BY 1, 2
"""),
    finest_s=900,
)


def board() -> Board:
    b = Board(
        uid="pantau-udara",
        title="Kualitas udara",
        description="Air quality for DLH: ISPU (Permen LHK P.14/2020) per station, category, "
        "dominant pollutant, pollutant trends.",
        tags=["pantau", "dlh", "udara"],
        time_from="now-3d",
        variables=[
            variable("station", "Stasiun", STATIONS, "Air-quality stations."),
            variable(
                "pollutant",
                "Polutan",
                POLLUTANT_METRICS,
                "Pollutants charted in 'Tren polutan' (concentrations, ug/m3).",
                default=["pm25_ugm3", "pm10_ugm3"],
            ),
        ],
    )
    b.add(
        stat(
            "ISPU per stasiun",
            "The newest hourly ISPU of each station in the range, coloured by the official "
            "category: Baik (green) 0-50, Sedang (blue) 51-100, Tidak Sehat (yellow) 101-200, "
            "Sangat Tidak Sehat (red) 201-300, Berbahaya (black) above 300. Each hour's value "
            "is a trailing 24-hour mean of hourly means with at least 18 hours present.",
            Query(NOW),
            thresholds=ISPU,
            per_row="Stasiun",
            fields="/^ISPU$/",
            h=5,
        ),
        table(
            "Kategori dan polutan dominan",
            "Per station: the newest ISPU, its category, the dominant pollutant (the one with "
            "the highest sub-index, which the overall ISPU equals), every sub-index and the "
            "US AQI (2024 PM2.5 breakpoints) beside it.",
            Query(DETAIL),
            w=14,
            h=10,
            overrides=[
                override(
                    "ISPU",
                    thresholds=ISPU,
                    custom__cellOptions=coloured_cells(),
                    color={"mode": "thresholds"},
                ),
                override("Kategori", mappings=CATEGORIES, custom__cellOptions=coloured_cells()),
                override("Polutan dominan", mappings=POLLUTANTS),
            ],
        ),
        geomap(
            "Peta stasiun",
            "Stations at their sites, coloured by the newest ISPU category.",
            Query(MAP),
            layer="Stasiun",
            colour_by="ISPU",
            unit="none",
            thresholds=ISPU,
            w=10,
            h=10,
            size=10,
        ),
        timeseries(
            "Tren ISPU",
            "Hourly ISPU per station; the background bands are the categories.",
            [Query(TREND, "time_series")],
            unit="none",
            w=24,
            thresholds=ISPU,
            threshold_style="area",
        ),
        timeseries(
            "Tren polutan",
            "Mean concentration per station and pollutant (choose them above) from the "
            "15-minute rollups (hourly for long ranges), in ug/m3. The ISPU breakpoints are "
            "24-hour concentrations: a short peak above one is not a category change.",
            [Query(POLLUTION, "time_series")],
            unit="conμgm3",
            w=24,
            interval="15m",
        ),
    )
    return b
