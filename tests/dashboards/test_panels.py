"""The Grafana provisioning files: current, parseable, consistent, and structurally valid.

Grafana cannot run here, so the dashboards' JSON is held to a documented structural check
instead of Grafana's own loader: the fields Grafana needs to place and query every panel
(uid, title, schemaVersion, time zone, time range, templating, panels with unique ids and
non-overlapping gridPos on the 24-column grid, and targets with a refId, rawSql, a format and
the provisioned data source's uid). The SQL itself is run by `pantau dashboards check`
(tests/dashboards/test_check.py).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
import yaml

from dashboards import alerts, udara
from dashboards.macros import substitute_variables
from dashboards.panels import DS_TYPE, DS_UID, FOLDER_UID, TIMEZONE
from dashboards.provisioning import (
    CONTAINER_ROOT,
    DASHBOARD_DIR,
    DB_ENV,
    ROOT,
    boards,
    dashboard_file,
    differences,
    files,
)
from processing.air import ISPU_CATEGORIES

PANEL_TYPES = {"timeseries", "stat", "table", "geomap", "bargauge", "state-timeline"}


def load(path: str) -> Any:
    text = (ROOT / path).read_text(encoding="utf-8")
    return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)


DASHBOARDS = [load(dashboard_file(b)) for b in boards()]
RULES = load("alerting/pantau.yaml")


def test_committed_files_are_what_the_builder_makes():
    assert differences(ROOT) == [], "run `pantau dashboards build` and commit the result"


def test_differences_sees_a_changed_a_missing_and_a_stale_file(tmp_path):
    for path, text in files().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert differences(tmp_path) == []
    (tmp_path / "alerting/pantau.yaml").write_text("apiVersion: 1\n")
    (tmp_path / dashboard_file(boards()[0])).unlink()
    (tmp_path / DASHBOARD_DIR / "old.json").write_text("{}")
    assert sorted(differences(tmp_path)) == sorted(
        ["alerting/pantau.yaml", dashboard_file(boards()[0]), f"{DASHBOARD_DIR}/old.json"]
    )


def test_every_file_parses_and_is_provisioning_version_1():
    for path in files():
        document = load(path)
        assert isinstance(document, dict), path
        if path.endswith(".yaml"):
            assert document["apiVersion"] == 1, path


def test_data_source_is_postgres_read_only_login_from_the_environment():
    (ds,) = load("datasources/pantau.yaml")["datasources"]
    assert (ds["uid"], ds["type"]) == (DS_UID, DS_TYPE)
    assert ds["url"] == "${" + DB_ENV["url"] + "}"
    assert ds["user"] == "${" + DB_ENV["user"] + "}"
    assert ds["jsonData"]["database"] == "${" + DB_ENV["database"] + "}"
    assert ds["secureJsonData"] == {"password": "${" + DB_ENV["password"] + "}"}
    assert ds["jsonData"]["timescaledb"] is True  # $__timeGroup becomes time_bucket
    assert ds["editable"] is False


def test_provider_reads_the_directory_the_dashboards_are_written_to():
    (provider,) = load("dashboards/pantau.yaml")["providers"]
    assert provider["options"]["path"] == f"{CONTAINER_ROOT}/{DASHBOARD_DIR}"
    assert provider["folderUid"] == FOLDER_UID
    assert provider["allowUiUpdates"] is False
    for board in boards():
        assert dashboard_file(board).startswith(DASHBOARD_DIR + "/")


def datasource_refs(node: Any) -> list[str]:
    """Every data source uid a document refers to."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            found.append(node["datasource"]["uid"])
        if "datasourceUid" in node:
            found.append(node["datasourceUid"])
        for value in node.values():
            found += datasource_refs(value)
    elif isinstance(node, list):
        for value in node:
            found += datasource_refs(value)
    return found


def test_only_the_provisioned_data_source_is_referenced():
    for document in [*DASHBOARDS, RULES]:
        refs = datasource_refs(document)
        assert DS_UID in refs
        # Grafana's own: the built-in annotations and server-side expressions.
        assert set(refs) <= {DS_UID, "-- Grafana --", "__expr__"}


@pytest.mark.parametrize("board", DASHBOARDS, ids=lambda b: b["uid"])
def test_dashboard_structure(board):
    assert re.fullmatch(r"pantau-[a-z]+", board["uid"])
    assert board["title"]
    assert board["description"]
    assert isinstance(board["schemaVersion"], int)
    assert board["schemaVersion"] >= 36
    assert board["timezone"] == TIMEZONE
    assert set(board["time"]) == {"from", "to"}
    assert "pantau" in board["tags"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names
    assert len(set(names)) == len(names)
    for variable in board["templating"]["list"]:
        assert variable["type"] == "query"
        assert variable["datasource"]["uid"] == DS_UID
        assert "__value" in variable["query"]
        assert "__text" in variable["query"]
        assert variable["multi"]
        assert variable["includeAll"]
    panels = board["panels"]
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids)
    for panel in panels:
        assert panel["type"] in PANEL_TYPES
        assert panel["title"], panel["id"]
        assert panel["description"], panel["id"]
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) for k in ("h", "w", "x", "y"))
        assert pos["w"] > 0
        assert pos["h"] > 0
        assert pos["x"] + pos["w"] <= 24
        refs = [t["refId"] for t in panel["targets"]]
        assert refs
        assert len(set(refs)) == len(refs)
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DS_UID
            assert target["rawQuery"] is True
            assert target["rawSql"].strip()
            assert target["format"] in {"table", "time_series"}
        if panel["type"] == "geomap":
            location = panel["options"]["layers"][0]["location"]
            assert (location["latitude"], location["longitude"]) == ("lat", "lon")
    for a, b in itertools.combinations(panels, 2):
        assert not overlap(a["gridPos"], b["gridPos"]), (a["title"], b["title"])


def overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


@pytest.mark.parametrize("board", DASHBOARDS, ids=lambda b: b["uid"])
def test_queries_use_only_their_dashboards_variables_and_use_each(board):
    names = [v["name"] for v in board["templating"]["list"]]
    values = {name: ["x"] for name in names}
    used = set()
    for panel in board["panels"]:
        for target in panel["targets"]:
            substitute_variables(target["rawSql"], values, interval=60_000, multi=frozenset())
            used |= {n for n in names if f"${n}" in target["rawSql"]}
    assert used == set(names)


def test_the_four_dashboards_and_their_variables():
    by_uid = {b["uid"]: b for b in DASHBOARDS}
    variables = {u: [v["name"] for v in b["templating"]["list"]] for u, b in by_uid.items()}
    assert variables == {
        "pantau-sampah": ["village"],
        "pantau-udara": ["station", "pollutant"],
        "pantau-pariwisata": ["zone"],
        "pantau-operasional": ["kind"],
    }
    assert {p["type"] for b in DASHBOARDS for p in b["panels"]} == PANEL_TYPES
    for uid in ("pantau-sampah", "pantau-udara", "pantau-pariwisata"):
        assert "geomap" in {p["type"] for p in by_uid[uid]["panels"]}, uid


def test_ispu_colours_are_the_official_categories():
    expected = [("#34cc33", None), ("#0070c0", 51), ("#ffc100", 101), ("#ff0000", 201)]
    expected.append(("#000000", 301))
    assert [(s["color"], s["value"]) for s in udara.ISPU["steps"]] == expected
    mapping = udara.CATEGORIES[0]["options"]
    assert {k: v["color"] for k, v in mapping.items()} == {
        c.name_id: c.hex for c in ISPU_CATEGORIES
    }
    assert list(mapping) == ["Baik", "Sedang", "Tidak Sehat", "Sangat Tidak Sehat", "Berbahaya"]


def test_alert_rules_are_grafana_file_provisioning():
    uids = []
    for group in RULES["groups"]:
        assert group["folder"]
        assert group["interval"] == "1m"
        assert group["name"]
        for rule in group["rules"]:
            uids.append(rule["uid"])
            refs = [d["refId"] for d in rule["data"]]
            assert rule["condition"] in refs
            sql_data = [d for d in rule["data"] if d["datasourceUid"] == DS_UID]
            assert sql_data, rule["uid"]
            for data in sql_data:
                assert data["model"]["rawSql"]
                assert data["model"]["format"] == "table"
                assert data["relativeTimeRange"]["from"] > data["relativeTimeRange"]["to"]
            # Grafana expands $VAR in provisioned labels (not in queries or annotations).
            assert "$" not in json.dumps(rule["labels"]), rule["uid"]
            assert rule["noDataState"] in {"NoData", "Alerting", "OK", "KeepLast"}
            assert rule["execErrState"] in {"Error", "Alerting", "OK", "KeepLast"}
            assert re.fullmatch(r"\d+[smh]", rule["for"])
    assert len(set(uids)) == len(uids)
    assert set(uids) >= {
        "pantau-bin-full",
        "pantau-ispu-unhealthy",
        "pantau-crowding",
        "pantau-sensor-offline",
        "pantau-ingest-stalled",
    }


def threshold(uid: str) -> dict[str, Any]:
    for group in RULES["groups"]:
        for rule in group["rules"]:
            if rule["uid"] == uid:
                (condition,) = rule["data"][-1]["model"]["conditions"]
                return condition
    raise KeyError(uid)


def test_alert_thresholds_match_the_alarm_rules():
    # ISPU >= 101 (whole numbers) opens, <= 90 clears; crowding > capacity, < 90 % clears.
    assert threshold("pantau-ispu-unhealthy") == {
        "evaluator": {"type": "gt", "params": [100]},
        "unloadEvaluator": {"type": "lt", "params": [91]},
    }
    assert threshold("pantau-crowding")["evaluator"] == {"type": "gt", "params": [100]}
    assert threshold("pantau-crowding")["unloadEvaluator"] == {"type": "lt", "params": [90]}
    assert threshold("pantau-ingest-stalled")["evaluator"] == {"type": "gt", "params": [10]}


def test_api_group_is_the_http_provisioning_shape():
    group = RULES["groups"][0]
    body = alerts.api_group(group)
    assert body["folderUid"] == FOLDER_UID
    assert body["interval"] == 60
    assert body["title"] == group["name"]
    for rule, original in zip(body["rules"], group["rules"], strict=True):
        assert rule["ruleGroup"] == group["name"]
        assert rule["folderUID"] == FOLDER_UID
        assert rule["for"] == original["for"]
        assert rule["data"] == original["data"]
