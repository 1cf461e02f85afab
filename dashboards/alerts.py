"""Grafana alert rules: the README's alarm rules, evaluated by Grafana from the same tables.

Each rule's query returns one row per subject (bin, station, zone, sensor) with string
columns, which become the alert's labels, and one number, which a threshold expression
compares; Grafana's recovery threshold gives the same hysteresis as ``pantau process``.
Rules are written in Grafana's file-provisioning format (``apiVersion: 1``, ``groups``);
:func:`api_group` converts a group for the HTTP provisioning API.

Grafana expands ``$VAR`` in provisioned labels but not in queries or annotations, so labels
here hold no ``$`` and the queries may use the SQL macros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboards.panels import DATASOURCE, DS_UID, FOLDER_TITLE, FOLDER_UID, Json, sql

INTERVAL = "1m"

BIN_FULL = sql("""
    SELECT s.sensor_id AS bin, coalesce(s.zone_id, '') AS village,
           CASE WHEN w.overflowing THEN 2
                WHEN w.collection_reason = 'predicted_full' THEN 1
                ELSE 0 END AS state
    FROM waste_status w
    JOIN sensors s USING (sensor_key)
    WHERE s.active
""")

ISPU = sql("""
    SELECT s.sensor_id AS station, h.ispu
    FROM sensors s
    JOIN LATERAL (
        SELECT a.ispu FROM air_ispu_hourly a
        WHERE a.sensor_key = s.sensor_key AND $__timeFilter(a.hour)
        ORDER BY a.hour DESC LIMIT 1
    ) h ON true
    WHERE s.kind = 'air_quality' AND s.active
""")

CROWDING = sql("""
    SELECT t.zone_id AS zone, 100 * t.capacity_ratio AS occupancy_pct
    FROM tourism_status t
    WHERE t.capacity_ratio IS NOT NULL
""")

OFFLINE = sql("""
    SELECT s.sensor_id AS sensor, s.kind, CASE WHEN st.online THEN 0 ELSE 1 END AS offline
    FROM sensor_status st
    JOIN sensors s USING (sensor_key)
    WHERE s.active AND st.reason <> 'never_seen'
""")

# Minutes since the newest commit among readings timed in the window; the window's length when
# there is none, so a stalled ingest crosses the threshold instead of returning nothing.
INGEST_STALLED = sql("""
    SELECT coalesce(
             extract(epoch FROM $__timeTo()::timestamptz - max(received_at)) / 60, 15
           ) AS minutes_since_commit
    FROM readings
    WHERE $__timeFilter(ts)
""")

PROCESS_STALLED = sql("""
    SELECT extract(epoch FROM $__timeTo()::timestamptz - last_run_at) / 60 AS minutes_since_run
    FROM job_runs
    WHERE job = 'process'
""")


@dataclass(frozen=True)
class Rule:
    uid: str
    title: str
    query: str
    above: float  # fires when the value is above this
    recover_below: float | None  # and resolves only below this (None: when not above)
    for_: str
    window_s: int  # the query's time range: now - window_s .. now
    summary: str
    description: str
    labels: dict[str, str]
    no_data: str = "OK"  # NoData, Alerting, OK, KeepLast
    exec_err: str = "Error"


GROUPS: dict[str, list[Rule]] = {
    "sampah": [
        Rule(
            "pantau-bin-full",
            "Tempat sampah meluap atau segera penuh",
            BIN_FULL,
            above=0,
            recover_below=None,
            for_="15m",
            window_s=3600,
            summary="Tempat sampah {{ $labels.bin }} ({{ $labels.village }}) meluap atau penuh "
            "sebelum ronde berikutnya (status {{ with $values.A }}{{ .Value }}{{ end }})",
            description="State 2: overflowing (fill >= 100 %); 1: predicted full before the "
            "next collection round (waste_status, written by pantau process). Fires after 15 "
            "minutes, like the bin_overflow alarm.",
            labels={"team": "dlh", "severity": "critical"},
        )
    ],
    "udara": [
        Rule(
            "pantau-ispu-unhealthy",
            "ISPU Tidak Sehat atau lebih buruk",
            ISPU,
            above=100,
            recover_below=91,
            for_="0s",
            window_s=3 * 3600,
            summary="ISPU {{ with $values.A }}{{ .Value }}{{ end }} di stasiun "
            "{{ $labels.station }} (>= 101, Tidak Sehat)",
            description="The station's newest hourly ISPU (Permen LHK P.14/2020) is 101 or "
            "more; resolves at 90 or less, like the ispu_unhealthy alarm.",
            labels={"team": "dlh", "severity": "warning"},
        )
    ],
    "pariwisata": [
        Rule(
            "pantau-crowding",
            "Zona wisata melebihi kapasitas",
            CROWDING,
            above=100,
            recover_below=90,
            for_="10m",
            window_s=3600,
            summary="{{ $labels.zone }}: okupansi {{ with $values.A }}{{ .Value }}{{ end }} % "
            "dari kapasitas",
            description="Occupancy above the zone's capacity for 10 minutes; resolves below "
            "90 %, like the crowding alarm.",
            labels={"team": "pariwisata", "severity": "warning"},
        )
    ],
    "operasional": [
        Rule(
            "pantau-sensor-offline",
            "Sensor offline",
            OFFLINE,
            above=0,
            recover_below=None,
            for_="5m",
            window_s=3600,
            summary="Sensor {{ $labels.sensor }} ({{ $labels.kind }}) offline",
            description="Silent for 3 x its expected interval, or its last will said offline "
            "(sensor_status, written by pantau process). Never-seen sensors are left out.",
            labels={"team": "engineering", "severity": "warning"},
        ),
        Rule(
            "pantau-ingest-stalled",
            "Ingest berhenti",
            INGEST_STALLED,
            above=10,
            recover_below=None,
            for_="0s",
            window_s=900,
            summary="Tidak ada pembacaan baru selama "
            "{{ with $values.A }}{{ .Value }}{{ end }} menit",
            description="No reading committed for more than 10 minutes (the fleet's footfall "
            "counters report every minute). Check the ingest workers, the broker and the "
            "database; devices keep their messages while nothing acknowledges them.",
            labels={"team": "engineering", "severity": "critical"},
            no_data="Alerting",
            exec_err="Alerting",
        ),
        Rule(
            "pantau-process-stalled",
            "Job process berhenti",
            PROCESS_STALLED,
            above=5,
            recover_below=None,
            for_="0s",
            window_s=3600,
            summary="pantau process terakhir jalan {{ with $values.A }}{{ .Value }}{{ end }} "
            "menit lalu",
            description="The scheduled job (offline sensors, alarms, waste, ISPU, tourism) has "
            "not run for 5 minutes; every table the dashboards read goes stale.",
            labels={"team": "engineering", "severity": "critical"},
            no_data="Alerting",
        ),
    ],
}


def _threshold(rule: Rule) -> Json:
    condition: Json = {"evaluator": {"type": "gt", "params": [rule.above]}}
    if rule.recover_below is not None:
        condition["unloadEvaluator"] = {"type": "lt", "params": [rule.recover_below]}
    return {
        "refId": "B",
        "type": "threshold",
        "expression": "A",
        "datasource": {"type": "__expr__", "uid": "__expr__"},
        "conditions": [condition],
    }


def _data(rule: Rule) -> list[Json]:
    return [
        {
            "refId": "A",
            "relativeTimeRange": {"from": rule.window_s, "to": 0},
            "datasourceUid": DS_UID,
            "model": {
                "refId": "A",
                "datasource": DATASOURCE,
                "editorMode": "code",
                "format": "table",
                "rawQuery": True,
                "rawSql": rule.query,
                "intervalMs": 60_000,
                "maxDataPoints": 43_200,
            },
        },
        {
            "refId": "B",
            "relativeTimeRange": {"from": 0, "to": 0},
            "datasourceUid": "__expr__",
            "model": _threshold(rule),
        },
    ]


def _file_rule(rule: Rule) -> Json:
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "B",
        "data": _data(rule),
        "noDataState": rule.no_data,
        "execErrState": rule.exec_err,
        "for": rule.for_,
        "annotations": {"summary": rule.summary, "description": rule.description},
        "labels": {"pantau": "true", **rule.labels},
        "isPaused": False,
    }


def provisioning() -> Json:
    """The alert rules as a Grafana file-provisioning document."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": name,
                "folder": FOLDER_TITLE,
                "interval": INTERVAL,
                "rules": [_file_rule(rule) for rule in rules],
            }
            for name, rules in GROUPS.items()
        ],
    }


def api_group(group: Json) -> Json:
    """A provisioned group in the shape of PUT /api/v1/provisioning/folder/{uid}/rule-groups/."""
    rules = []
    for rule in group["rules"]:
        out: dict[str, Any] = {k: v for k, v in rule.items() if k != "for"}
        out.update(
            {"for": rule["for"], "folderUID": FOLDER_UID, "ruleGroup": group["name"], "orgID": 1}
        )
        rules.append(out)
    return {
        "title": group["name"],
        "folderUid": FOLDER_UID,
        "interval": _seconds(group["interval"]),
        "rules": rules,
    }


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(duration[:-1]) * units[duration[-1]]
