"""The registry snapshot: loaded from the real database in one step, and never changed after."""

from __future__ import annotations

import dataclasses

import numpy as np
import psycopg
import pytest

from ingest.snapshot import EMPTY, RegistrySnapshot
from ingest.writer import load_snapshot
from pantau.registry.fleet import load_fleet, parse_fleet
from pantau.registry.load import load_into

pytestmark = pytest.mark.integration

ZONE = {"id": "Z", "name": "Z", "kind": "village", "lat": -6.5, "lon": 110.7}


def loaded(url: str) -> RegistrySnapshot:
    with psycopg.connect(url) as conn:
        return load_snapshot(conn)


def test_the_snapshot_holds_the_fleet_and_the_catalog(db_url):
    fleet = load_fleet()
    with psycopg.connect(db_url) as conn:
        load_into(conn, fleet)
    snapshot = loaded(db_url)
    assert set(snapshot.sensors) == {s.id for s in fleet.sensors}
    assert snapshot.kinds == ("air_quality", "footfall", "waste_bin")
    for sensor in fleet.sensors:
        entry = snapshot.sensors[sensor.id]
        assert snapshot.kinds[entry.kind_idx] == entry.kind == sensor.kind
    allowed = snapshot.catalog.allowed
    fill, pm25 = snapshot.metric_ids["fill_pct"], snapshot.metric_ids["pm25_ugm3"]
    waste, air = snapshot.kinds.index("waste_bin"), snapshot.kinds.index("air_quality")
    assert [allowed[waste, fill], allowed[waste, pm25]] == [True, False]
    assert [allowed[air, pm25], allowed[air, fill]] == [True, False]


def test_a_snapshot_cannot_be_changed_in_place(db_url):
    with psycopg.connect(db_url) as conn:
        load_into(conn, load_fleet())
    snapshot = loaded(db_url)
    entry = next(iter(snapshot.sensors.values()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.sensors = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.sensors["NEW"] = entry  # type: ignore[index]
    with pytest.raises(TypeError):
        snapshot.metric_ids["new_metric"] = 99  # type: ignore[index]
    with pytest.raises(ValueError, match="read-only"):
        snapshot.catalog.max_value[1] = np.inf
    with pytest.raises(ValueError, match="read-only"):
        snapshot.catalog.allowed[0, 1] = True
    with pytest.raises(ValueError, match="read-only"):
        EMPTY.catalog.min_value[...] = 1.0  # the one every worker starts with, too


def test_a_registry_change_reaches_a_new_snapshot_only(db_url):
    fleet = {"zones": [ZONE], "sensors": [{"id": "A", "kind": "waste_bin", "zone": "Z"}]}
    with psycopg.connect(db_url) as conn:
        load_into(conn, parse_fleet(fleet))
        before = load_snapshot(conn)
        fleet["sensors"] = [{"id": "B", "kind": "air_quality", "zone": "Z"}]
        load_into(conn, parse_fleet(fleet))
        conn.commit()
        after = load_snapshot(conn)
    assert set(before.sensors) == {"A"}  # what a reader holds stays as it was
    assert set(after.sensors) == {"B"}
    assert after.loaded_at >= before.loaded_at


def test_loading_needs_a_connection_without_an_open_transaction(db_url):
    with psycopg.connect(db_url) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(ValueError, match="no transaction open"):
            load_snapshot(conn)
