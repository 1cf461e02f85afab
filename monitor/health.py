"""Sensor health: online/offline from the last reading, when it was heard and the last will.

A silent sensor sends nothing, so this runs from ``pantau process`` every few seconds rather
than when data arrives. The last will (a retained ``<root>/<kind>/<sensor_id>/status`` message
``offline``/``online``) is heard by :mod:`monitor.status` and stored here.

Two clocks (:func:`processing.health.sensor_online`). Live, silence is how long ago the
sensor was last heard (``sensor_heard``, the commit time of its newest new reading, on the
database's clock), so a backlog of old readings arriving now is not silent. In simulated time
(``pantau process --at``) it is how long before that time the newest reading *taken by then*
was: readings and wills timed after it are not known yet as of that time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.db import Conn, fetch, maybe_utc
from monitor.inputs import Inputs
from pantau.timestamps import utc
from processing import health


def _ms(column: str) -> str:
    """SQL: a timestamptz as Unix ms (int8), -1 when NULL or infinite."""
    ms = f"(extract(epoch FROM {column}) * 1000)::int8"
    return f"coalesce(CASE WHEN isfinite({column}) THEN {ms} END, -1)"


# The newest reading of each series up to now (live: all of them): `latest` holds the newest
# overall; only a series with a reading after a simulated now looks back in `readings`, by its
# primary key, newest first (the time a literal: chunks after it are excluded when planning).
_STATE = f"""
WITH p AS (SELECT %s::timestamptz AS now, %s::boolean AS live)
SELECT s.sensor_key, s.expected_interval_s::int8, {_ms("l.last_ts")}, {_ms("h.heard_at")},
    {_ms("CASE WHEN st.will_state = 'offline' AND st.will_at <= p.now THEN st.will_at END")},
    {_ms("CASE WHEN st.will_state = 'online' AND st.will_at <= p.now THEN st.will_at END")},
    coalesce(st.online::int, -1)::int8
FROM p CROSS JOIN sensors s
LEFT JOIN (
    SELECT l.sensor_key, max(CASE WHEN p.live OR l.ts <= p.now THEN l.ts ELSE (
        SELECT r.ts FROM readings r WHERE r.sensor_key = l.sensor_key
            AND r.metric_id = l.metric_id AND r.ts <= %s::timestamptz
        ORDER BY r.ts DESC LIMIT 1) END) AS last_ts
    FROM p CROSS JOIN latest l GROUP BY 1
) l USING (sensor_key)
LEFT JOIN sensor_heard h USING (sensor_key)
LEFT JOIN sensor_status st USING (sensor_key)
WHERE s.active
ORDER BY s.sensor_key"""

_UPSERT = """
INSERT INTO sensor_status (sensor_key, online, since, last_seen, last_heard, reason, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, now())
ON CONFLICT (sensor_key) DO UPDATE SET
    since = CASE WHEN sensor_status.online = EXCLUDED.online THEN sensor_status.since
                 ELSE EXCLUDED.since END,
    online = EXCLUDED.online, last_seen = EXCLUDED.last_seen, last_heard = EXCLUDED.last_heard,
    reason = EXCLUDED.reason, updated_at = now()"""

STATES = frozenset({"online", "offline"})


def store_wills(conn: Conn, wills: dict[str, tuple[str, int]], inputs: Inputs) -> int:
    """Record last-will / birth messages heard on the status topics: sensor id -> (state, ms).

    A state other than ``online``/``offline``, or a time no datetime holds, is left out.
    Returns how many were stored."""
    ids = list(wills)
    inputs.note(
        "wills",
        sensor_id=ids,
        state=[wills[i][0] for i in ids],
        at_ms=np.array([wills[i][1] for i in ids], dtype=np.float64),
    )
    rows = [
        {"id": sensor_id, "state": state, "at": at}
        for sensor_id, (state, at_ms) in wills.items()
        if state in STATES and (at := maybe_utc(at_ms)) is not None
    ]
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO sensor_status (sensor_key, online, since, reason, will_state, will_at)
            SELECT sensor_key, false, %(at)s, 'never_seen', %(state)s, %(at)s
            FROM sensors WHERE sensor_id = %(id)s
            ON CONFLICT (sensor_key) DO UPDATE SET will_state = EXCLUDED.will_state,
                will_at = EXCLUDED.will_at
            WHERE sensor_status.will_at IS NULL OR sensor_status.will_at <= EXCLUDED.will_at""",
            rows,
        )
    return len(rows)


def run_health(
    conn: Conn, now_ms: int, settings: Any, inputs: Inputs, *, live: bool
) -> dict[str, Any]:
    """Update sensor_status as of ``now_ms``; returns how many went offline / came back.

    ``live``: ``now_ms`` is the wall clock's now, and silence is judged on the arrival clock;
    otherwise it is a simulated time, judged by the readings' times."""
    now = utc(now_ms)
    key, interval_s, last_seen, heard, will_off, will_on, prev = fetch(
        conn, inputs, "sensors", _STATE, (now, live, now),
        sensor_key="int4", expected_interval_s="int8", last_seen_ms="int8", heard_ms="int8",
        will_offline_ms="int8", will_online_ms="int8", prev_online="int8",
    )  # fmt: skip
    clock: dict[str, Any] = {}
    if live:
        row = conn.execute(f"SELECT {_ms('now()')}").fetchone()
        clock = {"heard_ms": heard, "heard_now_ms": int(row[0]) if row else -1}
    online, reason = health.sensor_online(
        now_ms, last_seen, interval_s, will_off, will_on,
        k=settings.offline_after_intervals, **clock,
    )  # fmt: skip
    went_offline, came_back = health.transitions(prev == 1, prev >= 0, online)
    rows = [
        (
            int(key[i]), bool(online[i]), now,
            maybe_utc(last_seen[i]) if last_seen[i] != health.MISSING_MS else None,
            maybe_utc(heard[i]) if heard[i] != health.MISSING_MS else None,
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
        "clock": "arrival" if live else "readings",
    }
