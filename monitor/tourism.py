"""Tourism: occupancy, density and crowding per zone now, and an hourly history with "typical".

A zone's entrances each have a counter; the zone's in/out per minute is the sum over its counters
(from the 1-minute rollups), so people entering at one gate and leaving at another balance out.
Occupancy is the cumulative in - out, clamped at 0 and reset at the zone's closing time
(:func:`processing.tourism.occupancy`). "Typical" for an hour is the median, over the previous
``typical_weeks`` weeks, of the visitors so far at the same hour of the week.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.db import Conn, maybe
from pantau.db.copy import fetch_columns
from pantau.timestamps import utc
from processing import tourism

MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WINDOW_MS = 2 * DAY_MS  # the current session and yesterday's, for the hourly history


def closing_minute(params: dict[str, Any], default: str) -> int:
    text = str(params.get("closing", default))
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def run_tourism(conn: Conn, now_ms: int, metric_ids: dict[str, int], settings: Any) -> int:
    """Update tourism_status and tourism_hourly as of ``now_ms``; returns zones updated."""
    zones = conn.execute(
        "SELECT z.zone_id, z.area_m2, z.capacity_persons, z.params FROM zones z "
        "WHERE EXISTS (SELECT FROM sensors s WHERE s.zone_id = z.zone_id "
        "AND s.kind = 'footfall' AND s.active) ORDER BY z.zone_id"
    ).fetchall()
    if not zones:
        return 0
    ids = [str(z[0]) for z in zones]
    area = np.array([np.nan if z[1] is None else float(z[1]) for z in zones])
    capacity = np.array([np.nan if z[2] is None else float(z[2]) for z in zones])
    closing = np.array([closing_minute(z[3] or {}, settings.closing_time) for z in zones])

    start = now_ms - now_ms % HOUR_MS - WINDOW_MS
    zone, metric, bucket, total = fetch_columns(
        conn,
        "SELECT array_position(%s::text[], s.zone_id) - 1, r.metric_id, r.bucket, sum(r.sum) "
        "FROM rollup_1m r JOIN sensors s USING (sensor_key) "
        "WHERE s.kind = 'footfall' AND s.active AND s.zone_id = ANY(%s) "
        "AND r.metric_id = ANY(%s) AND r.bucket >= %s AND r.bucket < %s "
        "GROUP BY 1, 2, 3 ORDER BY 1, 3",
        (ids, ids, [metric_ids["count_in"], metric_ids["count_out"]], utc(start), utc(now_ms)),
        ["int4", "int2", "timestamptz", "float8"],
    )
    zone = zone.astype(np.int64)
    # One row per (zone, minute) with both counts.
    key = zone * (1 << 40) + (bucket - start) // MIN_MS
    keys, inverse = np.unique(key, return_inverse=True)
    count_in = np.zeros(keys.shape[0])
    count_out = np.zeros(keys.shape[0])
    is_in = metric == metric_ids["count_in"]
    np.add.at(count_in, inverse[is_in], total[is_in])
    np.add.at(count_out, inverse[~is_in], total[~is_in])
    z = keys // (1 << 40)
    end_ms = start + (keys % (1 << 40)) * MIN_MS + MIN_MS  # interval end
    session = np.zeros(keys.shape[0], dtype=np.int64)
    for minute in np.unique(closing):
        sel = closing[z] == minute
        session[sel] = tourism.session_day(end_ms[sel], int(minute))
    occ = tourism.occupancy(z, session, end_ms, count_in, count_out)
    visitors = tourism.cumulative_in(z, session, end_ms, count_in)

    _write_hourly(conn, now_ms, ids, z, end_ms, count_in, occ, visitors, settings.typical_weeks)
    typical_now = _typical_now(conn, now_ms, ids, settings.typical_weeks)
    # Now: each zone's last interval in its current session (none yet: empty, 0 visitors).
    now_session = np.array(
        [tourism.session_day(np.array([now_ms]), int(c))[0] for c in closing], dtype=np.int64
    )
    current = session == now_session[z]
    occ_now = np.zeros(len(ids))
    visitors_now = np.zeros(len(ids))
    last_ts = np.full(len(ids), now_ms, dtype=np.int64)
    if current.any():
        # Rows are sorted by (zone, time): the last current row of each zone is its state now.
        cz = z[current]
        last = np.flatnonzero(np.append(cz[1:] != cz[:-1], True))
        occ_now[cz[last]] = occ[current][last]
        visitors_now[cz[last]] = visitors[current][last]
        last_ts[cz[last]] = end_ms[current][last]
    density = tourism.density_ppm2(occ_now, area)
    fruin = tourism.fruin_level(density)
    ratio, level = tourism.crowding(occ_now, capacity)
    rows = [
        (
            ids[i], utc(int(last_ts[i])), float(occ_now[i]), maybe(density[i]),
            tourism.FRUIN_LEVELS[fruin[i]].letter if fruin[i] >= 0 else None, maybe(ratio[i]),
            tourism.CROWDING_LEVELS[level[i]].name_en if level[i] >= 0 else "unknown",
            float(visitors_now[i]), maybe(typical_now[i]),
        )
        for i in range(len(ids))
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_STATUS, rows)
    return len(rows)


def _write_hourly(
    conn: Conn, now_ms: int, ids: list[str], z: np.ndarray, end_ms: np.ndarray,
    count_in: np.ndarray, occ: np.ndarray, visitors: np.ndarray, weeks: int,
) -> None:  # fmt: skip
    """tourism_hourly for every hour in the window: entries, visitors so far and occupancy at
    the end of the hour, and the typical visitors so far for that hour of the week."""
    if z.shape[0] == 0:
        return
    # Rows a day or more into the window belong to sessions that started inside it (a session
    # lasts at most a day); earlier ones lack the start of their session and are not written.
    complete_from = now_ms - now_ms % HOUR_MS - WINDOW_MS + DAY_MS
    hour = (end_ms - 1) - (end_ms - 1) % HOUR_MS  # the hour holding each interval
    key = z * (1 << 40) + hour // HOUR_MS
    keys, first = np.unique(key, return_index=True)
    inverse = np.searchsorted(keys, key)
    entries = np.zeros(keys.shape[0])
    np.add.at(entries, inverse, count_in)
    last = np.append(first[1:], key.shape[0]) - 1  # rows are sorted by (zone, time)
    hz, hh = keys // (1 << 40), (keys % (1 << 40)) * HOUR_MS
    typical = _typical_at(conn, ids, hz, hh, weeks)
    rows = [
        (ids[int(hz[i])], utc(int(hh[i])), float(entries[i]), float(visitors[last[i]]),
         float(occ[last[i]]), maybe(typical[i]))
        for i in range(keys.shape[0])
        if complete_from <= hh[i] < now_ms
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_HOURLY, rows)


def _typical_at(
    conn: Conn, ids: list[str], zone: np.ndarray, hour_ms: np.ndarray, weeks: int
) -> np.ndarray:
    """Median visitors so far at the same hour of the week in the ``weeks`` weeks before."""
    if zone.shape[0] == 0:
        return np.zeros(0)
    lo = int(hour_ms.min()) - weeks * 7 * DAY_MS
    hi = int(hour_ms.max()) - 7 * DAY_MS
    hz, hh, hv = fetch_columns(
        conn,
        "SELECT array_position(%s::text[], zone_id) - 1, hour, visitors_to_date "
        "FROM tourism_hourly WHERE zone_id = ANY(%s) AND hour >= %s AND hour <= %s",
        (ids, ids, utc(lo), utc(hi)),
        ["int4", "timestamptz", "float8"],
    )
    if hz.shape[0] == 0:
        return np.full(zone.shape[0], np.nan)
    # Each target hour's own previous weeks: lag in whole weeks within 1..weeks.
    out = np.full(zone.shape[0], np.nan)
    for target in np.unique(hour_ms):
        lag = target - hh
        sel = (lag > 0) & (lag % (7 * DAY_MS) == 0) & (lag <= weeks * 7 * DAY_MS)
        if not sel.any():
            continue
        tz, slot, median, _ = tourism.typical(
            hz[sel].astype(np.int64), np.zeros(int(sel.sum()), np.int64), hv[sel]
        )
        want = hour_ms == target
        out[want] = tourism.lookup(
            zone[want], np.zeros(int(want.sum()), np.int64), tz, slot, median
        )
    return out


def _typical_now(conn: Conn, now_ms: int, ids: list[str], weeks: int) -> np.ndarray:
    hour = now_ms - now_ms % HOUR_MS
    return _typical_at(
        conn, ids, np.arange(len(ids), dtype=np.int64), np.full(len(ids), hour, np.int64), weeks
    )


_UPSERT_STATUS = """
INSERT INTO tourism_status (zone_id, ts, occupancy, density_ppm2, fruin_level, capacity_ratio,
    crowding, visitors_today, typical_to_date, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (zone_id) DO UPDATE SET ts = EXCLUDED.ts, occupancy = EXCLUDED.occupancy,
    density_ppm2 = EXCLUDED.density_ppm2, fruin_level = EXCLUDED.fruin_level,
    capacity_ratio = EXCLUDED.capacity_ratio, crowding = EXCLUDED.crowding,
    visitors_today = EXCLUDED.visitors_today, typical_to_date = EXCLUDED.typical_to_date,
    updated_at = now()"""

_UPSERT_HOURLY = """
INSERT INTO tourism_hourly (zone_id, hour, visitors, visitors_to_date, occupancy, typical_to_date)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (zone_id, hour) DO UPDATE SET visitors = EXCLUDED.visitors,
    visitors_to_date = EXCLUDED.visitors_to_date, occupancy = EXCLUDED.occupancy,
    typical_to_date = EXCLUDED.typical_to_date"""
