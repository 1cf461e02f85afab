"""`pantau registry load`: upsert a fleet's zones and sensors into the database.

Loading is idempotent: a zone or sensor that exists is updated in place and keeps its
``sensor_key`` (the integer every time-series row refers to). Sensors are never deleted by a
load; a sensor missing from the file is marked inactive, so its history stays readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from pantau.registry.fleet import Fleet

Conn = psycopg.Connection[TupleRow]


@dataclass(frozen=True)
class LoadResult:
    zones: int
    sensors: int
    deactivated: int


def load_into(conn: Conn, fleet: Fleet) -> LoadResult:
    """Upsert ``fleet`` in one transaction on ``conn``."""
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE zones_in (LIKE zones INCLUDING DEFAULTS) ON COMMIT DROP")
        with conn.cursor().copy(
            "COPY zones_in (zone_id, name, kind, kecamatan, lat, lon, area_m2, capacity_persons,"
            " params, notes) FROM STDIN"
        ) as copy:
            for z in fleet.zones:
                copy.write_row(
                    (
                        z.id,
                        z.name,
                        z.kind,
                        z.kecamatan,
                        z.lat,
                        z.lon,
                        z.area_m2,
                        z.capacity_persons,
                        json.dumps(dict(z.params)),
                        z.notes,
                    )
                )
        conn.execute(
            """INSERT INTO zones (zone_id, name, kind, kecamatan, lat, lon, area_m2,
                                  capacity_persons, params, notes)
               SELECT zone_id, name, kind, kecamatan, lat, lon, area_m2, capacity_persons,
                      params, notes FROM zones_in
               ON CONFLICT (zone_id) DO UPDATE SET
                   name = EXCLUDED.name, kind = EXCLUDED.kind, kecamatan = EXCLUDED.kecamatan,
                   lat = EXCLUDED.lat, lon = EXCLUDED.lon, area_m2 = EXCLUDED.area_m2,
                   capacity_persons = EXCLUDED.capacity_persons, params = EXCLUDED.params,
                   notes = EXCLUDED.notes, updated_at = now()"""
        )
        conn.execute(
            "CREATE TEMP TABLE sensors_in (sensor_id text, kind text, zone_id text, name text,"
            " lat float8, lon float8, expected_interval_s int, params jsonb) ON COMMIT DROP"
        )
        with conn.cursor().copy("COPY sensors_in FROM STDIN") as copy:
            for s in fleet.sensors:
                copy.write_row(
                    (
                        s.id,
                        s.kind,
                        s.zone,
                        s.name,
                        s.lat,
                        s.lon,
                        s.interval_s,
                        json.dumps(dict(s.params)),
                    )
                )
        conn.execute(
            """INSERT INTO sensors (sensor_id, kind, zone_id, name, lat, lon,
                                    expected_interval_s, params, active)
               SELECT sensor_id, kind, zone_id, name, lat, lon, expected_interval_s, params, true
               FROM sensors_in
               ON CONFLICT (sensor_id) DO UPDATE SET
                   kind = EXCLUDED.kind, zone_id = EXCLUDED.zone_id, name = EXCLUDED.name,
                   lat = EXCLUDED.lat, lon = EXCLUDED.lon,
                   expected_interval_s = EXCLUDED.expected_interval_s,
                   params = EXCLUDED.params, active = true, updated_at = now()"""
        )
        deactivated = conn.execute(
            """UPDATE sensors SET active = false, updated_at = now()
               WHERE active AND sensor_id NOT IN (SELECT sensor_id FROM sensors_in)"""
        ).rowcount
    return LoadResult(zones=len(fleet.zones), sensors=len(fleet.sensors), deactivated=deactivated)
