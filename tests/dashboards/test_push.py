"""`pantau dashboards push` against a stand-in Grafana: a local HTTP server that keeps what it is
sent and records every request (Grafana itself cannot run here). It answers the endpoints push
uses the way Grafana's HTTP API does: 404 for a missing uid, and a stored copy with ids,
versions and provenance added on GET.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cli.main import main
from dashboards.panels import DS_UID, FOLDER_UID
from dashboards.provisioning import boards

TOKEN = "glsa_test_token"
GROUPS = ["sampah", "udara", "pariwisata", "operasional"]


class FakeGrafana:
    def __init__(self) -> None:
        self.folders: dict[str, Any] = {}
        self.datasources: dict[str, Any] = {}
        self.dashboards: dict[str, Any] = {}
        self.groups: dict[str, Any] = {}
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self.auth: set[str] = set()
        self.provisioned: set[str] = set()
        self.refuse = False

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m != "GET"]

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        routes = [
            (r"/api/health", self.health),
            (r"/api/folders(?:/(?P<uid>[^/]+))?", self.folder),
            (r"/api/datasources(?:/uid/(?P<uid>[^/]+))?", self.datasource),
            (r"/api/dashboards/(?:db|uid/(?P<uid>[^/]+))", self.dashboard),
            (r"/api/v1/provisioning/folder/(?P<folder>[^/]+)/rule-groups/(?P<uid>[^/]+)",
             self.group),
        ]  # fmt: skip
        for pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match:
                return handler(method, match.groupdict(), body)
        return 404, {"message": "not found"}

    def health(self, method: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {"database": "ok", "version": "12.0.0"}

    def folder(self, method: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        uid = params.get("uid") or body["uid"]
        if method == "GET":
            return (200, self.folders[uid]) if uid in self.folders else (404, {"message": "x"})
        self.folders[uid] = {"id": 1, "uid": uid, "title": body["title"], "version": 1}
        return 200, self.folders[uid]

    def datasource(self, method: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        uid = params.get("uid") or body["uid"]
        if method == "GET":
            if uid not in self.datasources:
                return 404, {"message": "Data source not found"}
            return 200, self.datasources[uid]
        stored = {k: v for k, v in body.items() if k != "secureJsonData"}
        stored |= {"id": 7, "orgId": 1, "readOnly": False, "secureJsonFields": {"password": True}}
        self.datasources[uid] = stored
        return 200, {"datasource": stored, "id": 7, "message": "Datasource added"}

    def dashboard(self, method: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        if method == "GET":
            uid = params["uid"]
            if uid not in self.dashboards:
                return 404, {"message": "Dashboard not found"}
            meta = {"folderUid": FOLDER_UID, "provisioned": uid in self.provisioned}
            return 200, {"dashboard": self.dashboards[uid], "meta": meta}
        assert body["overwrite"] is True
        assert body["folderUid"] == FOLDER_UID
        dashboard = body["dashboard"]
        old = self.dashboards.get(dashboard["uid"], {"version": 0})
        self.dashboards[dashboard["uid"]] = dashboard | {"id": 3, "version": old["version"] + 1}
        return 200, {"status": "success", "uid": dashboard["uid"], "version": old["version"] + 1}

    def group(self, method: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        assert params["folder"] == FOLDER_UID
        name = params["uid"]
        if method == "GET":
            if name not in self.groups:
                return 404, {"message": "rule group does not exist"}
            return 200, self.groups[name]
        stored = copy.deepcopy(body)
        for i, rule in enumerate(stored["rules"]):
            rule |= {"id": i + 1, "updated": "2026-11-28T06:00:00Z", "provenance": "api"}
        self.groups[name] = stored
        return 200, stored


@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            path = self.path.split("?")[0]
            fake.requests.append((self.command, path, body))
            fake.auth.add(self.headers.get("Authorization", ""))
            status, answer = (401, {"message": "invalid API key"}) if fake.refuse else (
                fake.handle(self.command, path, body)
            )  # fmt: skip
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 (http.server's names)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    for name, value in {
        "PANTAU_GRAFANA_DB_HOST": "timescaledb:5432",
        "PANTAU_GRAFANA_DB_NAME": "pantau",
        "PANTAU_GRAFANA_DB_PASSWORD": "s3cret",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PANTAU_GRAFANA_TOKEN", raising=False)
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def push(url: str, *extra: str) -> int:
    return main(["dashboards", "push", "--url", url, "--token", TOKEN, *extra])


def test_first_push_creates_everything_by_uid(grafana, capsys):
    fake, url = grafana
    assert push(url) == 0
    uids = [b.uid for b in boards()]
    assert fake.writes() == [
        ("POST", "/api/folders"),
        ("POST", "/api/datasources"),
        *[("POST", "/api/dashboards/db")] * 4,
        *[("PUT", f"/api/v1/provisioning/folder/{FOLDER_UID}/rule-groups/{g}") for g in GROUPS],
    ]
    assert fake.auth == {f"Bearer {TOKEN}"}
    assert set(fake.dashboards) == set(uids)
    assert fake.folders[FOLDER_UID]["title"] == "Pantau"
    sent = next(b for m, p, b in fake.requests if (m, p) == ("POST", "/api/datasources"))
    assert sent["uid"] == DS_UID
    assert sent["url"] == "timescaledb:5432"
    assert sent["jsonData"]["database"] == "pantau"
    assert sent["secureJsonData"] == {"password": "s3cret"}
    assert sent["isDefault"] is False  # someone else's Grafana keeps its default data source
    rules = {r["uid"] for g in fake.groups.values() for r in g["rules"]}
    assert {"pantau-ispu-unhealthy", "pantau-ingest-stalled", "pantau-crowding"} <= rules
    assert capsys.readouterr().out.count("created") == 1 + 1 + 4 + 4


def test_second_push_changes_nothing(grafana, capsys):
    fake, url = grafana
    assert push(url) == 0
    dashboards, groups = copy.deepcopy(fake.dashboards), copy.deepcopy(fake.groups)
    fake.requests.clear()
    capsys.readouterr()
    assert push(url, "--no-datasource") == 0
    assert fake.writes() == []
    assert fake.dashboards == dashboards
    assert fake.groups == groups
    out = capsys.readouterr().out
    assert out.count("unchanged") == 1 + 4 + 4, out
    # With the password, the data source is written again (Grafana never returns it).
    assert push(url) == 0
    assert fake.writes() == [("PUT", f"/api/datasources/uid/{DS_UID}")]


def test_a_changed_dashboard_is_overwritten_and_a_provisioned_one_kept(grafana, capsys):
    fake, url = grafana
    assert push(url) == 0
    fake.dashboards["pantau-sampah"]["title"] = "edited by hand"
    fake.provisioned.add("pantau-udara")
    fake.dashboards["pantau-udara"]["title"] = "from a file"
    fake.requests.clear()
    assert push(url, "--no-datasource") == 0
    assert fake.writes() == [("POST", "/api/dashboards/db")]
    assert fake.dashboards["pantau-sampah"]["title"] == "Sampah"
    assert fake.dashboards["pantau-sampah"]["version"] == 2
    assert "kept (provisioned) dashboard pantau-udara" in capsys.readouterr().out


def test_refused_token_says_what_to_do(grafana, capsys):
    fake, url = grafana
    fake.refuse = True
    assert push(url) == 2
    err = capsys.readouterr().err
    assert "answered 401" in err
    assert "service account with the Admin role" in err


def test_no_password_for_a_new_data_source(grafana, capsys, monkeypatch):
    fake, url = grafana
    monkeypatch.delenv("PANTAU_GRAFANA_DB_PASSWORD")
    assert push(url) == 2
    assert "PANTAU_GRAFANA_DB_PASSWORD" in capsys.readouterr().err
    assert fake.datasources == {}


def test_unreachable_grafana(capsys, monkeypatch):
    # The data source's database comes from settings, not from a local stack: this test must
    # not depend on one running (a fresh clone has none).
    monkeypatch.setenv("PANTAU_GRAFANA_DB_HOST", "timescaledb:5432")
    monkeypatch.setenv("PANTAU_GRAFANA_DB_NAME", "pantau")
    assert push("http://127.0.0.1:9") == 2
    assert "check that Grafana runs at --url" in capsys.readouterr().err
