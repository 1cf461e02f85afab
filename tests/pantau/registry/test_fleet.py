"""Fleet files: the shipped Jepara fleet, group expansion and errors that name the entry."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pantau.errors import ConfigError
from pantau.registry.fleet import METRES_PER_DEGREE, load_fleet, parse_fleet, scatter

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "reference" / "jepara_zones.json"


def test_jepara_fleet_has_the_promised_shape():
    fleet = load_fleet()
    kinds = [s.kind for s in fleet.sensors]
    assert 200 <= kinds.count("waste_bin") <= 1000
    assert kinds.count("air_quality") == 7
    assert kinds.count("footfall") >= 12
    zone_kinds = {z.kind for z in fleet.zones}
    assert zone_kinds == {"tourism", "village", "kecamatan", "disposal", "air_site"}
    tourism = [z for z in fleet.zones if z.kind == "tourism"]
    assert all(z.capacity_persons for z in tourism)
    # Every tourist zone has a counter; every village has bins.
    zones_with = {(s.kind, s.zone) for s in fleet.sensors}
    assert all(("footfall", z.id) in zones_with for z in tourism)
    assert all(("waste_bin", z.id) in zones_with for z in fleet.zones if z.kind == "village")


def test_jepara_fleet_matches_the_reference_places():
    reference = {z["id"]: z for z in json.loads(REFERENCE.read_text())["zones"]}
    fleet = load_fleet()
    assert {z.id for z in fleet.zones} == set(reference)
    for zone in fleet.zones:
        ref = reference[zone.id]
        assert (zone.lat, zone.lon) == (ref["lat"], ref["lon"])
        assert zone.capacity_persons == ref.get("capacity_persons")
        assert zone.area_m2 == ref.get("area_m2")


def test_every_tourist_zone_has_an_area_sourced_or_marked_an_estimate():
    """Density is occupancy / area: a tourist zone without an area has none. Every area names
    its source, or says it is an estimate and how it was reasoned, in the reference and in the
    fleet file's notes alike."""
    reference = {z["id"]: z for z in json.loads(REFERENCE.read_text())["zones"]}
    tourism = [z for z in load_fleet().zones if z.kind == "tourism"]
    assert len(tourism) == 12
    for zone in tourism:
        ref = reference[zone.id]
        assert zone.area_m2 is not None, zone.id
        assert zone.area_m2 > 0, zone.id
        assert zone.area_m2 == ref["area_m2"], zone.id
        assert zone.notes is not None, zone.id
        if ref.get("area_estimated"):
            assert "area_source" not in ref, zone.id
            assert ref["area_note"].startswith("Reasoned"), zone.id
            assert f"area estimate: {ref['area_note']}" in zone.notes, zone.id
        else:
            assert ref["area_source"], zone.id
            assert f"area source: {ref['area_source']}" in zone.notes, zone.id
            assert "area estimate:" not in zone.notes, zone.id
        # An estimate is consistent with the capacity: at capacity, no more than "busy"
        # (Fruin 0.5-2 persons/m2; reference metadata), and no emptier than 1 per 100 m2.
        assert zone.capacity_persons is not None, zone.id
        assert 0.01 <= zone.capacity_persons / zone.area_m2 <= 2.0, zone.id


def test_scatter_stays_within_the_spread():
    for i in range(200):
        lat, lon = scatter(-6.5, 110.7, 500.0, f"k{i}")
        dy = (lat + 6.5) * METRES_PER_DEGREE
        dx = (lon - 110.7) * METRES_PER_DEGREE * math.cos(math.radians(-6.5))
        assert math.hypot(dx, dy) <= 501.0
    assert scatter(-6.5, 110.7, 500.0, "same") == scatter(-6.5, 110.7, 500.0, "same")


ZONE = {"id": "Z1", "name": "Zone", "kind": "village", "lat": -6.5, "lon": 110.7}


def test_group_expansion_ids_and_defaults():
    fleet = parse_fleet(
        {
            "zones": [ZONE],
            "groups": [{"kind": "waste_bin", "id_prefix": "WB", "zones": ["Z1"], "count": 3}],
        }
    )
    assert [s.id for s in fleet.sensors] == ["WB-Z1-001", "WB-Z1-002", "WB-Z1-003"]
    assert {s.interval_s for s in fleet.sensors} == {900}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"zones": [{**ZONE, "kind": "moon"}]}, "zone kind 'moon' is unknown"),
        ({"zones": [ZONE, ZONE]}, "duplicate zone ids"),
        ({"zones": [ZONE], "sensors": [{"id": "A", "kind": "toaster"}]}, "sensor kind 'toaster'"),
        (
            {"zones": [ZONE], "sensors": [{"id": "A", "kind": "footfall", "zone": "Z9"}]},
            "zone 'Z9'",
        ),
        ({"sensors": [{"kind": "footfall"}]}, "sensors\\[0\\]: missing key 'id'"),
        (
            {
                "zones": [ZONE],
                "sensors": [{"id": "A", "kind": "footfall"}, {"id": "A", "kind": "footfall"}],
            },
            "duplicate sensor ids \\['A'\\]",
        ),
    ],
)
def test_errors_name_the_entry(doc, message):
    with pytest.raises(ConfigError, match=message):
        parse_fleet(doc)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_fleet(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[zones]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_fleet(bad)
