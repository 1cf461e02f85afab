"""Waste (DLH): emptying events, bin status and per-village figures, from stored readings.

The rules are :mod:`processing.waste`; this module loads their input and stores their output.
Each run looks back ``LOOKBACK`` from ``now``: events are keyed (bin, time) and inserted with
``ON CONFLICT DO NOTHING``, so running twice, or late data, never counts an emptying twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.db import Conn, maybe, maybe_utc
from pantau.db.copy import fetch_columns
from pantau.timestamps import utc
from processing import waste
from processing.tourism import WIB_OFFSET_S

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
LOOKBACK_MS = 3 * DAY_MS  # a bin is emptied at least every few days; a fit needs no more
TEMP_RISE_WINDOW_MS = 90 * 60_000
OVERFLOW_MAX_GAP_MS = 2 * 15 * 60_000  # 15-minute rollups: a missing bucket or two is a gap

_READINGS = """
SELECT r.sensor_key, r.metric_id, r.ts, r.value
FROM readings r JOIN sensors s USING (sensor_key)
WHERE s.kind = 'waste_bin' AND s.active AND r.ts > %s AND r.ts <= %s
  AND r.metric_id = ANY(%s)"""


def hours_to_next_round(now_ms: int, collection_hour: int) -> float:
    """Hours from ``now`` to the next daily collection round at ``collection_hour`` WIB."""
    local_ms = now_ms + WIB_OFFSET_S * 1000
    since_midnight = local_ms % DAY_MS
    round_ms = collection_hour * HOUR_MS
    wait = (round_ms - since_midnight) % DAY_MS
    return float(wait) / HOUR_MS


def _key(series: np.ndarray, ts_ms: np.ndarray, t0: int) -> np.ndarray:
    key: np.ndarray = (series.astype(np.int64) << 32) | (ts_ms - t0)
    return key


def _align(
    series: np.ndarray, ts_ms: np.ndarray, other: tuple[np.ndarray, np.ndarray, np.ndarray], t0: int
) -> np.ndarray:
    """The value of ``other`` (series, ts, value) at the same (series, ts), NaN where absent."""
    okey = _key(other[0], other[1], t0)
    order = np.argsort(okey, kind="stable")
    okey, ovalue = okey[order], other[2][order]
    want = _key(series, ts_ms, t0)
    at = np.searchsorted(okey, want)
    at_c = np.minimum(at, max(okey.shape[0] - 1, 0))
    hit = (
        (at < okey.shape[0]) & (okey[at_c] == want) if okey.shape[0] else np.zeros_like(want, bool)
    )
    out: np.ndarray = np.full(want.shape[0], np.nan)
    out[hit] = ovalue[at_c[hit]]
    return out


def run_waste(conn: Conn, now_ms: int, metric_ids: dict[str, int], settings: Any) -> dict[str, int]:
    """Update waste_events and waste_status as of ``now_ms``; returns counts for the log."""
    fill_id, tilt_id = metric_ids["fill_pct"], metric_ids["tilt"]
    temp_id, battery_id = metric_ids["temp_c"], metric_ids["battery_v"]
    t0 = now_ms - LOOKBACK_MS
    k, m, ts, v = fetch_columns(
        conn, _READINGS, (utc(t0), utc(now_ms), [fill_id, tilt_id, temp_id, battery_id]),
        ["int4", "int2", "timestamptz", "float8"],
    )  # fmt: skip
    k = k.astype(np.int64)
    is_fill = m == fill_id
    fk, ft, fv = k[is_fill], ts[is_fill], v[is_fill]
    tilt = _align(fk, ft, (k[m == tilt_id], ts[m == tilt_id], v[m == tilt_id]), t0)

    event, fill_before = waste.emptying_events(fk, ft, fv, tilt)
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
    ek, ets = fetch_columns(
        conn,
        "SELECT sensor_key, max(ts) FROM waste_events WHERE ts > %s AND ts <= %s GROUP BY 1",
        (utc(now_ms - 30 * DAY_MS), utc(now_ms)),
        ["int4", "timestamptz"],
    )
    # Fit the fill since each bin's last emptying (the emptying reading itself starts the line).
    last_emptied = np.full(fk.shape[0], np.iinfo(np.int64).min)
    if ek.shape[0]:
        order = np.argsort(ek)
        at = np.searchsorted(ek[order], fk)
        at_c = np.minimum(at, ek.shape[0] - 1)
        hit = (at < ek.shape[0]) & (ek[order][at_c] == fk)
        last_emptied[hit] = ets[order][at_c[hit]]
    since = ft >= last_emptied
    fit = waste.fill_rate(fk[since], ft[since], fv[since])
    hours_full = waste.time_to_full_h(fit.last_fill_pct, fit.slope_pct_per_h)
    next_round = np.full(fit.series.shape[0], hours_to_next_round(now_ms, settings.collection_hour))
    reason = waste.needs_collection(
        fit.last_fill_pct, hours_full, next_round, threshold_pct=settings.collection_threshold_pct
    )
    # Temperature now and its rise over the last 90 minutes, for the fire risk.
    recent = (m == temp_id) & (ts > now_ms - TEMP_RISE_WINDOW_MS)
    temp_fit = waste.fill_rate(k[recent], ts[recent], v[recent])
    temp_now = _per_series(fit.series, temp_fit.series, temp_fit.last_fill_pct)
    rise = _per_series(fit.series, temp_fit.series, temp_fit.slope_pct_per_h)
    fire = waste.fire_risk(temp_now, np.nan_to_num(rise, nan=0.0))
    bat = m == battery_id
    bat_fit = waste.fill_rate(k[bat], ts[bat], v[bat])
    battery = _per_series(fit.series, bat_fit.series, bat_fit.last_fill_pct)
    emptied = _per_series(fit.series, ek.astype(np.int64), ets.astype(np.float64))

    rows = []
    for i in range(fit.series.shape[0]):
        if not np.isfinite(fit.last_fill_pct[i]):
            continue
        full_at = fit.last_ts_ms[i] + hours_full[i] * HOUR_MS
        rows.append(
            (
                int(fit.series[i]), utc(int(fit.last_ts_ms[i])), float(fit.last_fill_pct[i]),
                maybe_utc(emptied[i]), maybe(fit.slope_pct_per_h[i]), maybe_utc(full_at),
                bool(reason[i] != waste.REASON_NONE), waste.COLLECTION_REASONS[reason[i]],
                bool(fit.last_fill_pct[i] >= 100.0), maybe(temp_now[i]),
                waste.FIRE_RISK_LEVELS[int(fire[i]) + 1], maybe(battery[i]),
            )
        )  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_STATUS, rows)
    return {"bins": len(rows), "events": int(event.sum())}


def _per_series(want: np.ndarray, series: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``value`` of each series in ``want`` (``series`` sorted and distinct), NaN where absent."""
    out: np.ndarray = np.full(want.shape[0], np.nan)
    if series.shape[0] == 0:
        return out
    at = np.searchsorted(series, want)
    at_c = np.minimum(at, series.shape[0] - 1)
    hit = (at < series.shape[0]) & (series[at_c] == want)
    out[hit] = value[at_c[hit]]
    return out


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


def run_village_figures(
    conn: Conn, now_ms: int, metric_ids: dict[str, int], period_days: int
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
    bins = dict.fromkeys(zones, 0)
    zone_of: dict[int, int] = {}
    for key, zone in conn.execute(
        "SELECT sensor_key, zone_id FROM sensors WHERE kind = 'waste_bin' AND active "
        "AND zone_id IS NOT NULL"
    ):
        zone_of[int(key)] = index[str(zone)]
        bins[str(zone)] += 1
    lookup = np.full(max(zone_of) + 1, -1, dtype=np.int64)
    lookup[list(zone_of)] = list(zone_of.values())

    ek, efill = fetch_columns(
        conn,
        "SELECT sensor_key, fill_before FROM waste_events WHERE ts > %s AND ts <= %s",
        (utc(start), utc(now_ms)),
        ["int4", "float8"],
    )
    ev_zone = lookup[np.minimum(ek, lookup.shape[0] - 1)] if ek.shape[0] else ek.astype(np.int64)
    keep = (ek < lookup.shape[0]) & (ev_zone >= 0)
    figures = waste.village_figures(ev_zone[keep], efill[keep], len(zones), float(period_days))

    rk, rb, rv = fetch_columns(
        conn,
        "SELECT sensor_key, bucket, last_value FROM rollup_15m WHERE metric_id = %s "
        "AND bucket > %s AND bucket <= %s",
        (metric_ids["fill_pct"], utc(start), utc(now_ms)),
        ["int4", "timestamptz", "float8"],
    )
    ok, hours = waste.overflow_hours(rk.astype(np.int64), rb, rv, max_gap_ms=OVERFLOW_MAX_GAP_MS)
    overflow = np.zeros(len(zones))
    valid = ok < lookup.shape[0]
    oz = lookup[ok[valid]]
    np.add.at(overflow, oz[oz >= 0], hours[valid][oz >= 0])

    rows = [
        (
            z, period_days, bins[z], int(figures.collections[i]),
            float(figures.collections_per_week[i]),
            maybe(figures.mean_fill_at_collection_pct[i]), int(figures.wasted_trips[i]),
            float(overflow[i]),
        )
        for i, z in enumerate(zones)
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO waste_village_figures (zone_id, period_days, bins, collections,
                collections_per_week, mean_fill_at_collection_pct, wasted_trips, overflow_hours,
                updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
            ON CONFLICT (zone_id) DO UPDATE SET period_days = EXCLUDED.period_days,
                bins = EXCLUDED.bins, collections = EXCLUDED.collections,
                collections_per_week = EXCLUDED.collections_per_week,
                mean_fill_at_collection_pct = EXCLUDED.mean_fill_at_collection_pct,
                wasted_trips = EXCLUDED.wasted_trips, overflow_hours = EXCLUDED.overflow_hours,
                updated_at = now()""",
            rows,
        )
    return len(rows)
