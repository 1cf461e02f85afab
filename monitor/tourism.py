"""Tourism: occupancy, density and crowding per zone now, and an hourly history with "typical".

A zone's entrances each have a counter; the zone's in/out per minute is the sum over its counters
(from the 1-minute rollups), so people entering at one gate and leaving at another balance out.
Occupancy is the cumulative in - out, clamped at 0 and reset at the zone's closing time
(:func:`processing.tourism.occupancy`). "Typical" for an hour is the median, over the previous
``typical_weeks`` weeks, of the visitors so far at the same hour of the week.
"""

from __future__ import annotations

import logging
import re
from datetime import time
from typing import Any

import numpy as np

from monitor.db import Conn, fetch, maybe
from monitor.inputs import Inputs
from pantau.timestamps import utc
from processing import baseline, tourism

logger = logging.getLogger(__name__)
MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WINDOW_MS = 2 * DAY_MS  # the current session and yesterday's, for the hourly history


def closing_minute(params: dict[str, Any], default: time) -> int:
    """A zone's closing time in minutes after local midnight: its ``params.closing`` (``HH:MM``,
    00:00 to 23:59) or else ``default`` (the setting ``closing_time``). A closing that is not
    such a time is logged (once per value) and the default used: the zone keeps its figures."""
    fallback = default.hour * 60 + default.minute
    if "closing" not in params:
        return fallback
    text = str(params["closing"])
    match = _HH_MM.fullmatch(text)
    if match is None:
        if text not in _warned:
            _warned.add(text)
            logger.warning(
                "tourism: zone params.closing %r is not HH:MM (00:00 to 23:59); using the "
                "setting closing_time %s",
                text[:40],
                default.strftime("%H:%M"),
            )
        return fallback
    return int(match[1]) * 60 + int(match[2])


_HH_MM = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
_warned: set[str] = set()


def run_tourism(
    conn: Conn, now_ms: int, metric_ids: dict[str, int], settings: Any, inputs: Inputs
) -> int:
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
    closing = np.array(
        [
            closing_minute(z[3] if isinstance(z[3], dict) else {}, settings.closing_time)
            for z in zones
        ],
        dtype=np.int64,
    )
    inputs.note("zones", zone_id=ids, area_m2=area, capacity=capacity, closing_minute=closing)

    start = now_ms - now_ms % HOUR_MS - WINDOW_MS
    # Each counter's minutes; the zone's sums are NumPy's (PostgreSQL's float8 sum raises on
    # overflow, where NumPy's gives an infinity, which the occupancy counts as no count).
    zone, metric, bucket, total = fetch(
        conn, inputs, "rollup_1m",
        "SELECT array_position(%s::text[], s.zone_id) - 1, r.metric_id, r.bucket, r.sum "
        "FROM rollup_1m r JOIN sensors s USING (sensor_key) "
        "WHERE s.kind = 'footfall' AND s.active AND s.zone_id = ANY(%s) "
        "AND r.metric_id = ANY(%s) AND r.bucket >= %s AND r.bucket < %s "
        "ORDER BY 1, 3, r.sensor_key",
        (ids, ids, [metric_ids["count_in"], metric_ids["count_out"]], utc(start), utc(now_ms)),
        zone="int4", metric_id="int2", bucket_ms="timestamptz", sum="float8",
    )  # fmt: skip
    # One row per (zone, minute) with both counts, from the zone's counters summed.
    minutes = tourism.intervals(
        zone.astype(np.int64), bucket, metric == metric_ids["count_in"], total, width_ms=MIN_MS
    )
    z, end_ms = minutes.series, minutes.ts_ms
    session = tourism.session_day(end_ms, closing[z])
    occ = tourism.occupancy(z, session, end_ms, minutes.count_in, minutes.count_out)
    visitors = tourism.cumulative_in(z, session, end_ms, minutes.count_in)

    hours = tourism.hourly(z, end_ms, minutes.count_in, visitors, occ)
    _write_hourly(conn, now_ms, ids, hours, settings.typical_weeks, inputs)
    typical_now = _typical_now(conn, ids, now_ms, settings.typical_weeks, inputs)
    # Now: each zone's last interval in its current session (none yet: empty, 0 visitors).
    now_session = tourism.session_day(np.full(len(ids), now_ms, dtype=np.int64), closing)
    state = tourism.state_now(z, session, end_ms, occ, visitors, now_session, now_ms)
    density = tourism.density_ppm2(state.occupancy, area)
    fruin = tourism.fruin_level(density)
    ratio, level = tourism.crowding(state.occupancy, capacity)
    # The current minute's interval ends after now; the state is as of now at the latest (and
    # stays a time a datetime holds on the last day of the year 9999).
    state_ms = np.minimum(state.ts_ms, now_ms)
    rows = [
        (
            ids[i], utc(int(state_ms[i])), float(state.occupancy[i]), maybe(density[i]),
            tourism.FRUIN_LEVELS[fruin[i]].letter if fruin[i] >= 0 else None, maybe(ratio[i]),
            tourism.CROWDING_LEVELS[level[i]].name_en if level[i] >= 0 else "unknown",
            float(state.visitors_to_date[i]), maybe(typical_now[i]),
        )
        for i in range(len(ids))
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_STATUS, rows)
    return len(rows)


def _write_hourly(
    conn: Conn, now_ms: int, ids: list[str], hours: tourism.Hourly, weeks: int, inputs: Inputs
) -> None:
    """tourism_hourly for every hour in the window: entries, visitors so far and occupancy at
    the end of the hour, and the typical visitors so far for that hour of the week."""
    if hours.series.shape[0] == 0:
        return
    # Rows a day or more into the window belong to sessions that started inside it (a session
    # lasts at most a day); earlier ones lack the start of their session and are not written.
    complete_from = now_ms - now_ms % HOUR_MS - WINDOW_MS + DAY_MS
    typical = _typical_at(conn, ids, hours.series, hours.hour_ms, weeks, inputs)
    rows = [
        (ids[int(hours.series[i])], utc(int(hours.hour_ms[i])), float(hours.entries[i]),
         float(hours.visitors_to_date[i]), float(hours.occupancy[i]), maybe(typical[i]))
        for i in np.flatnonzero((hours.hour_ms >= complete_from) & (hours.hour_ms < now_ms))
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_HOURLY, rows)


def _typical_now(conn: Conn, ids: list[str], now_ms: int, weeks: int, inputs: Inputs) -> np.ndarray:
    """Typical visitors so far by this instant of the week. An hourly row holds the visitors by
    the end of its hour, so this is the previous hour's figure (by the top of this hour) plus the
    elapsed share of this hour's entries: at 12:00 exactly, the visitors by 12:00, not by 13:00."""
    every_zone = np.arange(len(ids), dtype=np.int64)
    hour = np.full(len(ids), now_ms - now_ms % HOUR_MS, dtype=np.int64)
    by_top = _typical_at(conn, ids, every_zone, hour - HOUR_MS, weeks, inputs)
    by_end = _typical_at(conn, ids, every_zone, hour, weeks, inputs)
    share = (now_ms % HOUR_MS) / HOUR_MS
    # No row for the previous hour (before the zone's first hour, or a new session): the session
    # starts from 0 visitors.
    start = np.where(np.isnan(by_top), 0.0, by_top)
    return np.where(np.isnan(by_end), by_top, start + share * (by_end - start))


def _typical_at(
    conn: Conn, ids: list[str], zone: np.ndarray, hour_ms: np.ndarray, weeks: int, inputs: Inputs
) -> np.ndarray:
    """Median visitors so far at the same hour of the week in the ``weeks`` weeks before."""
    if zone.shape[0] == 0:
        return np.zeros(0)
    lo = int(hour_ms.min()) - weeks * 7 * DAY_MS
    hi = int(hour_ms.max()) - 7 * DAY_MS
    hz, hh, hv = fetch(
        conn, inputs, "tourism_hourly",
        "SELECT array_position(%s::text[], zone_id) - 1, hour, visitors_to_date "
        "FROM tourism_hourly WHERE zone_id = ANY(%s) AND hour >= %s AND hour <= %s",
        (ids, ids, utc(lo), utc(hi)),
        zone="int4", hour_ms="timestamptz", visitors_to_date="float8",
    )  # fmt: skip
    return baseline.typical_at(zone, hour_ms, hz.astype(np.int64), hh, hv, weeks=weeks)


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
