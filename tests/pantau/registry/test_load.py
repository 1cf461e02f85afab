"""Loading fleets into the real database."""

from __future__ import annotations

import psycopg
import pytest

from pantau.registry.fleet import load_fleet, parse_fleet
from pantau.registry.load import load_into
from tests.fixtures.commands import pantau_env, run_pantau

pytestmark = pytest.mark.integration


def keys(url: str) -> dict[str, tuple[int, bool]]:
    with psycopg.connect(url) as conn:
        return {
            r[0]: (r[1], r[2])
            for r in conn.execute("SELECT sensor_id, sensor_key, active FROM sensors")
        }


def test_cli_loads_the_jepara_fleet(db_url):
    result = run_pantau("registry", "load", env=pantau_env(PANTAU_DATABASE_URL=db_url))
    assert result.returncode == 0, result.stderr
    fleet = load_fleet()
    assert f"{len(fleet.zones)} zones, {len(fleet.sensors)} sensors loaded" in result.stdout
    with psycopg.connect(db_url) as conn:
        kartini = conn.execute(
            "SELECT name, capacity_persons, area_m2 FROM zones WHERE zone_id = 'T-KARTINI'"
        ).fetchone()
        by_kind = dict(conn.execute("SELECT kind, count(*) FROM sensors GROUP BY kind").fetchall())
    assert kartini == ("Pantai Kartini", 3500, 35000.0)
    assert by_kind == {
        kind: sum(1 for s in fleet.sensors if s.kind == kind)
        for kind in ("waste_bin", "air_quality", "footfall")
    }


def test_reload_keeps_keys_and_deactivates_what_left(db_url):
    doc = {
        "zones": [{"id": "Z", "name": "Z", "kind": "village", "lat": -6.5, "lon": 110.7}],
        "sensors": [
            {"id": "A", "kind": "waste_bin", "zone": "Z"},
            {"id": "B", "kind": "waste_bin", "zone": "Z"},
        ],
    }
    with psycopg.connect(db_url) as conn:
        load_into(conn, parse_fleet(doc))
        first = keys(db_url)
        doc["sensors"] = [{"id": "A", "kind": "waste_bin", "zone": "Z", "interval_s": 600}]
        result = load_into(conn, parse_fleet(doc))
    second = keys(db_url)
    assert result.deactivated == 1
    assert second["A"] == (first["A"][0], True)
    assert second["B"] == (first["B"][0], False)


def test_bad_fleet_file_is_a_clear_cli_error(db_url, tmp_path):
    bad = tmp_path / "fleet.toml"
    bad.write_text('[[zones]]\nid = "Z"\nname = "Z"\nkind = "moon"\n')
    result = run_pantau("registry", "load", str(bad), env=pantau_env(PANTAU_DATABASE_URL=db_url))
    assert result.returncode == 2
    assert "zone kind 'moon' is unknown" in result.stderr
    assert "fix: use one of" in result.stderr
