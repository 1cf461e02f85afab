"""Air (DLH): hourly ISPU per station (Permen LHK P.14/2020) with US AQI beside it.

For each completed hour the ISPU uses the trailing mean of the hourly means of the last
``ispu_window_h`` hours (default 24: the regulation's breakpoints are 24-hour concentrations),
and only when at least ``ispu_min_hours`` of them have data (default 18, i.e. 75 % coverage: our
assumption, the regulation states none). Hourly means come from the 1-hour rollups, so late
readings are included when the hour is recomputed; each run recomputes the last
``ispu_recompute_h`` hours. The US AQI uses the same 24-hour PM2.5 mean (EPA's NowCast, which
weights recent hours more, is not implemented).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.db import Conn, fetch, maybe
from monitor.inputs import Inputs
from pantau.timestamps import utc
from processing import air

HOUR_MS = air.HOUR_MS
# Pollutants the catalog measures (HC has no metric yet).
MEASURED = ("pm25", "pm10", "so2", "co", "o3", "no2")


def run_air(
    conn: Conn, now_ms: int, metric_ids: dict[str, int], settings: Any, inputs: Inputs
) -> int:
    """Recompute air_ispu_hourly for the last hours before ``now_ms``; returns rows written."""
    window_h: int = settings.ispu_window_h
    min_hours: int = min(settings.ispu_min_hours, window_h)
    last_end = now_ms - now_ms % HOUR_MS  # end of the last completed hour
    first_end = last_end - (settings.ispu_recompute_h - 1) * HOUR_MS
    start = first_end - window_h * HOUR_MS
    pollutant_ids = [metric_ids[air.METRIC_OF[p]] for p in MEASURED]
    k, m, bucket, total, n = fetch(
        conn, inputs, "rollup_1h",
        "SELECT r.sensor_key, r.metric_id, r.bucket, r.sum, r.n FROM rollup_1h r "
        "JOIN sensors s USING (sensor_key) WHERE s.kind = 'air_quality' AND s.active "
        "AND r.metric_id = ANY(%s) AND r.bucket >= %s AND r.bucket < %s",
        (pollutant_ids, utc(start), utc(last_end)),
        sensor_key="int4", metric_id="int2", bucket_ms="timestamptz", sum="float8", n="int8",
    )  # fmt: skip
    stations = np.unique(k.astype(np.int64))
    if stations.shape[0] == 0:
        return 0
    ends = np.arange(first_end, last_end + 1, HOUR_MS, dtype=np.int64)
    at_station = np.repeat(stations, ends.shape[0])
    at_end = np.tile(ends, stations.shape[0])
    # trailing_mean windows end at an hour *start*: the hour ending at `end` starts at end - 1 h.
    conc = np.full((len(air.POLLUTANTS), at_station.shape[0]), np.nan)
    sub = np.full_like(conc, np.nan)
    beyond = np.zeros(at_station.shape[0], dtype=np.bool_)
    for p, metric_id in zip(MEASURED, pollutant_ids, strict=True):
        sel = m == metric_id
        mean, _ = air.trailing_mean(
            k[sel].astype(np.int64), bucket[sel], total[sel], n[sel],
            at_station, at_end - HOUR_MS, window_h=window_h, min_hours=min_hours,
        )  # fmt: skip
        row = air.POLLUTANTS.index(p)
        conc[row] = mean
        sub[row], b = air.ispu_subindex(p, mean)
        beyond |= b
    index, dominant = air.ispu_overall(sub)
    category = air.ispu_category(index)
    pm25 = conc[air.POLLUTANTS.index("pm25")]
    aqi, _ = air.us_aqi_pm25(pm25)
    us_cat = air.us_aqi_category(aqi)
    rows = [
        (
            int(at_station[i]), utc(int(at_end[i])), float(index[i]),
            air.ISPU_CATEGORIES[category[i]].name_id, air.POLLUTANTS[dominant[i]],
            bool(beyond[i]),
            *(maybe(sub[air.POLLUTANTS.index(p), i]) for p in MEASURED),
            maybe(pm25[i]), maybe(aqi[i]),
            air.US_AQI_CATEGORIES[us_cat[i]].name_en if us_cat[i] >= 0 else None,
            window_h,
        )
        for i in np.flatnonzero(~np.isnan(index))
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(_UPSERT, rows)
    return len(rows)


_UPSERT = """
INSERT INTO air_ispu_hourly (sensor_key, hour, ispu, category, dominant, beyond_index,
    pm25_ispu, pm10_ispu, so2_ispu, co_ispu, o3_ispu, no2_ispu, pm25_ugm3, us_aqi, us_category,
    window_h)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (sensor_key, hour) DO UPDATE SET
    ispu = EXCLUDED.ispu, category = EXCLUDED.category, dominant = EXCLUDED.dominant,
    beyond_index = EXCLUDED.beyond_index, pm25_ispu = EXCLUDED.pm25_ispu,
    pm10_ispu = EXCLUDED.pm10_ispu, so2_ispu = EXCLUDED.so2_ispu, co_ispu = EXCLUDED.co_ispu,
    o3_ispu = EXCLUDED.o3_ispu, no2_ispu = EXCLUDED.no2_ispu, pm25_ugm3 = EXCLUDED.pm25_ugm3,
    us_aqi = EXCLUDED.us_aqi, us_category = EXCLUDED.us_category, window_h = EXCLUDED.window_h"""
