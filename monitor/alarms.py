"""Alarms: domain rules and anomalies turned into open -> acknowledged -> cleared alarms.

Each rule gives every subject (a sensor, or a tourist zone) a value now; the hysteresis and
minimum durations of :func:`processing.alarms.evaluate` decide when an alarm opens or clears,
so a value hovering around its threshold, or a sensor spiking every few minutes, keeps one
alarm open instead of opening twenty. Acknowledging (API) only changes the state; the alarm
still clears by itself when its condition has been good long enough.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from monitor.db import Conn
from monitor.inputs import Inputs
from pantau.timestamps import utc
from processing import alarms

ANOMALY_WINDOW = "30 minutes"
# The part of the job whose table gives each rule its value (the others read what ingest keeps:
# `latest`, `anomalies`). When that part failed in this run its table holds the previous run's
# figures, or none: those rules are held, neither opened nor cleared nor their streaks moved.
SOURCE: dict[str, str] = {
    "sensor_offline": "health",
    "bin_overflow": "waste",
    "bin_predicted_full": "waste",
    "bin_fire_risk": "waste",
    "ispu_unhealthy": "air",
    "crowding": "tourism",
}


_VALUES = f"""
SELECT 's:' || sensor_key, 'sensor_offline',
    CASE WHEN reason = 'never_seen' THEN NULL WHEN online THEN 0 ELSE 1 END::float8
    FROM sensor_status
UNION ALL
SELECT 's:' || l.sensor_key, 'battery_low', l.value FROM latest l JOIN metrics m USING (metric_id)
    WHERE m.name = 'battery_v'
UNION ALL
SELECT 's:' || sensor_key, 'bin_overflow', fill_pct FROM waste_status
UNION ALL
SELECT 's:' || sensor_key, 'bin_predicted_full',
    CASE WHEN collection_reason = 'predicted_full' THEN 1 ELSE 0 END FROM waste_status
UNION ALL
SELECT 's:' || sensor_key, 'bin_fire_risk',
    CASE fire_risk WHEN 'alert' THEN 2 WHEN 'watch' THEN 1 WHEN 'none' THEN 0 END FROM waste_status
UNION ALL
(SELECT DISTINCT ON (sensor_key) 's:' || sensor_key, 'ispu_unhealthy', ispu FROM air_ispu_hourly
    WHERE hour > %(now)s - interval '3 hours' AND hour <= %(now)s ORDER BY sensor_key, hour DESC)
UNION ALL
SELECT 'z:' || zone_id, 'crowding', capacity_ratio FROM tourism_status
UNION ALL
SELECT 's:' || s.sensor_key, 'anomaly_' || k.kind, count(a.kind)::float8
    FROM (SELECT DISTINCT sensor_key FROM detector_state) s
    CROSS JOIN unnest(%(kinds)s::text[]) AS k (kind)
    LEFT JOIN anomalies a ON a.sensor_key = s.sensor_key AND a.kind = k.kind
        AND a.ts > %(now)s - interval '{ANOMALY_WINDOW}' AND a.ts <= %(now)s
    GROUP BY s.sensor_key, k.kind
"""


def run_alarms(
    conn: Conn, now_ms: int, settings: Any, inputs: Inputs, *, failed: Collection[str] = ()
) -> dict[str, Any]:
    """Evaluate every rule for every subject; open and clear alarms. Returns counts, and the
    rules ``held`` because their part of the job is in ``failed`` (see :data:`SOURCE`)."""
    table = alarms.rules(battery_low_v=float(settings.battery_low_v))
    held = sorted(rule for rule, part in SOURCE.items() if part in failed)
    index = {rule.name: i for i, rule in enumerate(table) if rule.name not in held}
    now = utc(now_ms)
    values: dict[tuple[str, str], float] = {}
    for subject, rule, value in conn.execute(
        _VALUES, {"now": now, "kinds": list(alarms.ANOMALY_RULE_KINDS)}
    ):
        if subject is not None:
            values[(str(subject), str(rule))] = np.nan if value is None else float(value)
    inputs.note(
        "values",
        subject=[s for s, _ in values],
        rule=[r for _, r in values],
        value=np.array(list(values.values()), dtype=np.float64),
    )
    state = {
        (str(s), str(r)): (bad, good)
        for s, r, bad, good in conn.execute(
            "SELECT subject, rule, coalesce((extract(epoch FROM bad_since) * 1000)::int8, -1), "
            "coalesce((extract(epoch FROM good_since) * 1000)::int8, -1) FROM alarm_conditions"
        )
    }
    active = {
        (("s:" + str(k)) if k is not None else ("z:" + str(z)), str(r))
        for k, z, r in conn.execute(
            "SELECT sensor_key, zone_id, rule FROM alarms WHERE state <> 'cleared'"
        )
    }
    # Subjects with an active alarm but no value now (e.g. a zone removed) keep their alarm.
    keys = [k for k in values if k[1] in index]
    if not keys:
        return {"conditions": 0, "opened": 0, "cleared": 0, "held": held}
    rule_of = [table[index[k[1]]] for k in keys]
    result = alarms.evaluate_rules(
        now_ms,
        table,
        np.array([index[k[1]] for k in keys], dtype=np.int64),
        np.array([values[k] for k in keys]),
        np.array([state.get(k, (-1, -1))[0] for k in keys], dtype=np.int64),
        np.array([state.get(k, (-1, -1))[1] for k in keys], dtype=np.int64),
        np.array([k in active for k in keys]),
    )
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO alarm_conditions (subject, rule, bad_since, good_since, value,
                updated_at) VALUES (%s, %s, %s, %s, %s, now())
            ON CONFLICT (subject, rule) DO UPDATE SET bad_since = EXCLUDED.bad_since,
                good_since = EXCLUDED.good_since, value = EXCLUDED.value, updated_at = now()""",
            [
                (s, r, _ts(result.bad_since_ms[i]), _ts(result.good_since_ms[i]),
                 None if np.isnan(values[(s, r)]) else values[(s, r)])
                for i, (s, r) in enumerate(keys)
            ],
        )  # fmt: skip
        opened = list(np.flatnonzero(result.open))
        cur.executemany(
            """INSERT INTO alarms (sensor_key, zone_id, rule, severity, state, message,
                opened_at, last_value) VALUES (%s, %s, %s, %s, 'open', %s, %s, %s)
            ON CONFLICT DO NOTHING""",
            [
                (*_subject(keys[i][0]), keys[i][1], rule_of[i].severity,
                 rule_of[i].describe(values[keys[i]]), now, values[keys[i]])
                for i in opened
            ],
        )  # fmt: skip
        cleared = list(np.flatnonzero(result.clear))
        cur.executemany(
            """UPDATE alarms SET state = 'cleared', cleared_at = %s, last_value = %s
            WHERE coalesce(sensor_key, -1) = coalesce(%s, -1)
              AND coalesce(zone_id, '') = coalesce(%s, '') AND rule = %s
              AND state <> 'cleared'""",
            [(now, values[keys[i]], *_subject(keys[i][0]), keys[i][1]) for i in cleared],
        )
        still = [
            i for i in np.flatnonzero(result.active & ~result.open) if not np.isnan(values[keys[i]])
        ]
        cur.executemany(
            """UPDATE alarms SET last_value = %s
            WHERE coalesce(sensor_key, -1) = coalesce(%s, -1)
              AND coalesce(zone_id, '') = coalesce(%s, '') AND rule = %s
              AND state <> 'cleared'""",
            [(values[keys[i]], *_subject(keys[i][0]), keys[i][1]) for i in still],
        )
    return {"conditions": len(keys), "opened": len(opened), "cleared": len(cleared), "held": held}


def _ts(ms: int) -> object:
    return utc(int(ms)) if ms >= 0 else None


def _subject(subject: str) -> tuple[int | None, str | None]:
    kind, _, ident = subject.partition(":")
    return (int(ident), None) if kind == "s" else (None, ident)
