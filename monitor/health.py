"""Sensor health: online/offline from the last reading and the last will, on a schedule.

A silent sensor sends nothing, so this runs from ``pantau process`` every few seconds rather
than when data arrives. The last will (a retained ``<root>/<kind>/<sensor_id>/status`` message
``offline``/``online``) is heard by :mod:`monitor.status` and stored here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.db import Conn
from pantau.db.copy import fetch_columns
from pantau.timestamps import utc
from processing import health

_STATE = """
SELECT s.sensor_key, s.expected_interval_s::int8,
    coalesce((extract(epoch FROM l.last_ts) * 1000)::int8, -1),
    coalesce(CASE WHEN st.will_state = 'offline'
             THEN (extract(epoch FROM st.will_at) * 1000)::int8 END, -1),
    coalesce(CASE WHEN st.will_state = 'online'
             THEN (extract(epoch FROM st.will_at) * 1000)::int8 END, -1),
    coalesce(st.online::int, -1)::int8
FROM sensors s
LEFT JOIN (SELECT sensor_key, max(ts) AS last_ts FROM latest GROUP BY 1) l USING (sensor_key)
LEFT JOIN sensor_status st USING (sensor_key)
WHERE s.active
ORDER BY s.sensor_key"""

_UPSERT = """
INSERT INTO sensor_status (sensor_key, online, since, last_seen, reason, updated_at)
VALUES (%s, %s, %s, %s, %s, now())
ON CONFLICT (sensor_key) DO UPDATE SET
    since = CASE WHEN sensor_status.online = EXCLUDED.online THEN sensor_status.since
                 ELSE EXCLUDED.since END,
    online = EXCLUDED.online, last_seen = EXCLUDED.last_seen, reason = EXCLUDED.reason,
    updated_at = now()"""


def store_wills(conn: Conn, wills: dict[str, tuple[str, int]]) -> int:
    """Record last-will / birth messages heard on the status topics: sensor id -> (state, ms)."""
    rows = [(sensor_id, state, utc(at_ms)) for sensor_id, (state, at_ms) in wills.items()]
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO sensor_status (sensor_key, online, since, reason, will_state, will_at)
            SELECT sensor_key, false, %(at)s, 'never_seen', %(state)s, %(at)s
            FROM sensors WHERE sensor_id = %(id)s
            ON CONFLICT (sensor_key) DO UPDATE SET will_state = EXCLUDED.will_state,
                will_at = EXCLUDED.will_at
            WHERE sensor_status.will_at IS NULL OR sensor_status.will_at <= EXCLUDED.will_at""",
            [{"id": i, "state": s, "at": a} for i, s, a in rows],
        )
    return len(rows)


def run_health(conn: Conn, now_ms: int, settings: Any) -> dict[str, int]:
    """Update sensor_status as of ``now_ms``; returns how many went offline / came back."""
    key, interval_s, last_seen, will_off, will_on, prev = fetch_columns(
        conn, _STATE, (), ["int4", "int8", "int8", "int8", "int8", "int8"]
    )
    online, reason = health.sensor_online(
        now_ms, last_seen, interval_s, will_off, will_on, k=settings.offline_after_intervals
    )
    went_offline, came_back = health.transitions(prev == 1, prev >= 0, online)
    rows = [
        (
            int(key[i]), bool(online[i]), utc(now_ms),
            utc(int(last_seen[i])) if last_seen[i] >= 0 else None,
            health.HEALTH_REASONS[int(reason[i])],
        )
        for i in range(key.shape[0])
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(_UPSERT, rows)
    return {
        "sensors": int(key.shape[0]),
        "offline": int((~online).sum()),
        "went_offline": int(np.count_nonzero(went_offline)),
        "came_back": int(np.count_nonzero(came_back)),
    }
