"""Waste (DLH): emptying events, bin status and per-village figures, from stored readings.

The rules are :mod:`processing.waste` (fill, temperature and battery trends:
:mod:`processing.trend`; matching readings and bins by key: :mod:`processing.join`); this
module loads their input and stores their output.
Each run looks back ``LOOKBACK`` from ``now``: events are keyed (bin, time) and inserted with
``ON CONFLICT DO NOTHING``, so running twice, or late data, never counts an emptying twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.db import Conn, fetch, maybe, maybe_utc
from monitor.inputs import Inputs
from pantau.timestamps import utc
from processing import join, trend, waste

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
LOOKBACK_MS = 3 * DAY_MS  # a bin is emptied at least every few days; a fit needs no more
TEMP_RISE_WINDOW_MS = 90 * 60_000
OVERFLOW_MAX_GAP_MS = 2 * 15 * 60_000  # 15-minute rollups: a missing bucket or two is a gap
NEVER_EMPTIED_MS = np.iinfo(np.int64).min

_READINGS = """
SELECT r.sensor_key, r.metric_id, r.ts, r.value
FROM readings r JOIN sensors s USING (sensor_key)
WHERE s.kind = 'waste_bin' AND s.active AND r.ts > %s AND r.ts <= %s
  AND r.metric_id = ANY(%s)"""


def run_waste(
    conn: Conn, now_ms: int, metric_ids: dict[str, int], settings: Any, inputs: Inputs
) -> dict[str, int]:
    """Update waste_events and waste_status as of ``now_ms``; returns counts for the log."""
    fill_id, tilt_id = metric_ids["fill_pct"], metric_ids["tilt"]
    temp_id, battery_id = metric_ids["temp_c"], metric_ids["battery_v"]
    t0 = now_ms - LOOKBACK_MS
    k, m, ts, v = fetch(
        conn, inputs, "readings", _READINGS,
        (utc(t0), utc(now_ms), [fill_id, tilt_id, temp_id, battery_id]),
        sensor_key="int4", metric_id="int2", ts_ms="timestamptz", value="float8",
    )  # fmt: skip
    k = k.astype(np.int64)
    is_fill, is_tilt = m == fill_id, m == tilt_id
    fk, ft, fv = k[is_fill], ts[is_fill], v[is_fill]
    # The tilt reported with each fill (same bin, same time), NaN without one.
    tilt_deg = join.lookup(
        join.pack(fk, ft), join.pack(k[is_tilt], ts[is_tilt]), v[is_tilt], np.nan
    )

    event, fill_before = waste.emptying_events(fk, ft, fv, tilt_deg)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO waste_events (sensor_key, ts, fill_before, fill_after) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (int(a), utc(int(b)), float(c), float(d))
                for a, b, c, d in zip(
                    fk[event], ft[event], fill_before[event], fv[event], strict=True
                )
            ],
        )
    ek, ets = fetch(
        conn, inputs, "waste_events",
        "SELECT sensor_key, max(ts) FROM waste_events WHERE ts > %s AND ts <= %s GROUP BY 1",
        (utc(now_ms - 30 * DAY_MS), utc(now_ms)),
        sensor_key="int4", emptied_ms="timestamptz",
    )  # fmt: skip
    ek = ek.astype(np.int64)
    # Fit the fill since each bin's last emptying (the emptying reading itself starts the line).
    since = ft >= join.lookup(fk, ek, ets, NEVER_EMPTIED_MS)
    fill = trend.linear_trend(fk[since], ft[since], fv[since])
    fill_pct, fill_pct_per_h = fill.last_value, fill.slope_per_h
    bin_key = fill.series
    hours_full = waste.time_to_full_h(fill_pct, fill_pct_per_h)
    with np.errstate(over="ignore"):  # a bin that barely fills is full beyond any date: inf
        full_at_ms = fill.last_ts_ms + hours_full * HOUR_MS
    next_round_h = waste.time_to_next_round_h(
        np.full(bin_key.shape[0], now_ms, dtype=np.int64), settings.collection_hour
    )
    reason = waste.needs_collection(
        fill_pct, hours_full, next_round_h, threshold_pct=settings.collection_threshold_pct
    )
    # Temperature now and its rise over the last 90 minutes, for the fire risk.
    recent = (m == temp_id) & (ts > now_ms - TEMP_RISE_WINDOW_MS)
    temp = trend.linear_trend(k[recent], ts[recent], v[recent])
    temp_c = join.lookup(bin_key, temp.series, temp.last_value, np.nan)
    temp_c_per_h = join.lookup(bin_key, temp.series, temp.slope_per_h, np.nan)
    fire = waste.fire_risk(temp_c, temp_c_per_h)  # no rise known (NaN): judged on temp_c alone
    is_battery = m == battery_id
    battery = trend.linear_trend(k[is_battery], ts[is_battery], v[is_battery])
    battery_v = join.lookup(bin_key, battery.series, battery.last_value, np.nan)
    emptied_ms = join.lookup(bin_key, ek, ets.astype(np.float64), np.nan)

    rows = [
        (
            int(bin_key[i]), utc(int(fill.last_ts_ms[i])), float(fill_pct[i]),
            maybe_utc(emptied_ms[i]), maybe(fill_pct_per_h[i]), maybe_utc(full_at_ms[i]),
            bool(reason[i] != waste.REASON_NONE), waste.COLLECTION_REASONS[reason[i]],
            bool(fill_pct[i] >= 100.0), maybe(temp_c[i]),
            waste.FIRE_RISK_LEVELS[int(fire[i]) + 1], maybe(battery_v[i]),
        )
        for i in np.flatnonzero(np.isfinite(fill_pct))
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_STATUS, rows)
    return {"bins": len(rows), "events": int(event.sum())}


_UPSERT_STATUS = """
INSERT INTO waste_status (sensor_key, ts, fill_pct, last_emptied_at, fill_rate_pct_per_h,
    predicted_full_at, needs_collection, collection_reason, overflowing, temp_c, fire_risk,
    battery_v, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (sensor_key) DO UPDATE SET
    ts = EXCLUDED.ts, fill_pct = EXCLUDED.fill_pct, last_emptied_at = EXCLUDED.last_emptied_at,
    fill_rate_pct_per_h = EXCLUDED.fill_rate_pct_per_h,
    predicted_full_at = EXCLUDED.predicted_full_at, needs_collection = EXCLUDED.needs_collection,
    collection_reason = EXCLUDED.collection_reason, overflowing = EXCLUDED.overflowing,
    temp_c = EXCLUDED.temp_c, fire_risk = EXCLUDED.fire_risk, battery_v = EXCLUDED.battery_v,
    updated_at = now()"""


def _days_reported(
    sensor_key: np.ndarray,
    bucket_ms: np.ndarray,
    bin_key: np.ndarray,
    bin_zone: np.ndarray,
    n_zones: int,
    now_ms: int,
    period_days: int,
) -> np.ndarray:
    """Per village, the days of the period its bins have reported fill for (from its first
    15-minute bucket in the period; at least one day, at most the period): a village whose
    bins are a week old is not averaged over a month."""  # fmt: skip
    zone = join.lookup(sensor_key.astype(np.int64), bin_key, bin_zone, -1)
    first = np.full(n_zones, float(now_ms))
    np.minimum.at(first, zone[zone >= 0], bucket_ms[zone >= 0].astype(np.float64))
    return np.clip((now_ms - first) / DAY_MS, 1.0, float(period_days))


def run_village_figures(
    conn: Conn, now_ms: int, metric_ids: dict[str, int], period_days: int, inputs: Inputs
) -> int:
    """Per village (the zone of its bins): collections, fill at collection, overflow hours."""
    start = now_ms - period_days * DAY_MS
    zones = [
        str(z)
        for (z,) in conn.execute(
            "SELECT DISTINCT zone_id FROM sensors WHERE kind = 'waste_bin' AND active "
            "AND zone_id IS NOT NULL ORDER BY 1"
        )
    ]
    if not zones:
        return 0
    index = {z: i for i, z in enumerate(zones)}
    members = conn.execute(
        "SELECT sensor_key, zone_id FROM sensors WHERE kind = 'waste_bin' AND active "
        "AND zone_id IS NOT NULL"
    ).fetchall()
    bin_key = np.array([int(key) for key, _ in members], dtype=np.int64)
    bin_zone = np.array([index[str(zone)] for _, zone in members], dtype=np.int64)
    inputs.note("bins", sensor_key=bin_key, zone_id=[str(zone) for _, zone in members])
    bins = np.bincount(bin_zone, minlength=len(zones))

    ek, efill = fetch(
        conn, inputs, "waste_events",
        "SELECT sensor_key, fill_before FROM waste_events WHERE ts > %s AND ts <= %s",
        (utc(start), utc(now_ms)),
        sensor_key="int4", fill_before="float8",
    )  # fmt: skip
    event_zone = join.lookup(ek.astype(np.int64), bin_key, bin_zone, -1)
    known = event_zone >= 0  # events of bins since removed or moved out of every village
    rk, rb, rv = fetch(
        conn, inputs, "rollup_15m",
        "SELECT sensor_key, bucket, last_value FROM rollup_15m WHERE metric_id = %s "
        "AND bucket > %s AND bucket <= %s",
        (metric_ids["fill_pct"], utc(start), utc(now_ms)),
        sensor_key="int4", bucket_ms="timestamptz", fill_pct="float8",
    )  # fmt: skip
    days = _days_reported(rk, rb, bin_key, bin_zone, len(zones), now_ms, period_days)
    figures = waste.village_figures(event_zone[known], efill[known], len(zones), days)
    ok, hours = waste.overflow_hours(rk.astype(np.int64), rb, rv, max_gap_ms=OVERFLOW_MAX_GAP_MS)
    overflow_zone = join.lookup(ok, bin_key, bin_zone, -1)
    known = overflow_zone >= 0
    overflow_h = np.bincount(overflow_zone[known], hours[known], minlength=len(zones))

    rows = [
        (
            z, period_days, int(bins[i]), int(figures.collections[i]),
            float(figures.collections_per_week[i]),
            maybe(figures.mean_fill_at_collection_pct[i]), int(figures.wasted_trips[i]),
            float(overflow_h[i]), float(days[i]),
        )
        for i, z in enumerate(zones)
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO waste_village_figures (zone_id, period_days, bins, collections,
                collections_per_week, mean_fill_at_collection_pct, wasted_trips, overflow_hours,
                days_reported, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())
            ON CONFLICT (zone_id) DO UPDATE SET period_days = EXCLUDED.period_days,
                bins = EXCLUDED.bins, collections = EXCLUDED.collections,
                collections_per_week = EXCLUDED.collections_per_week,
                mean_fill_at_collection_pct = EXCLUDED.mean_fill_at_collection_pct,
                wasted_trips = EXCLUDED.wasted_trips, overflow_hours = EXCLUDED.overflow_hours,
                days_reported = EXCLUDED.days_reported, updated_at = now()""",
            rows,
        )
    return len(rows)
