"""`pantau api` and `pantau api key`: the commands, against the real database."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import psycopg
import pytest

from ops.stack.processes import free_port
from pantau.db.migrate import available
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.integration


def get(url: str, key: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_keys_are_created_listed_and_revoked_and_stored_hashed(db_url):
    env = pantau_env(PANTAU_DATABASE_URL=db_url)
    made = run_pantau("api", "key", "create", "--name", "DLH field app", "--role", "dlh", env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("pantau_")
    key_id = key.split("_")[1]
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT role, name, secret_sha256 FROM api_keys").fetchone()
    assert row is not None
    assert row[:2] == ("dlh", "DLH field app")
    assert key.split("_", 2)[2].encode() not in bytes(row[2])  # only the digest is stored
    listed = run_pantau("api", "key", "list", env=env)
    assert key_id in listed.stdout
    assert "active" in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout
    assert run_pantau("api", "key", "revoke", key_id, env=env).returncode == 0
    assert "revoked" in run_pantau("api", "key", "list", env=env).stdout
    again = run_pantau("api", "key", "revoke", key_id, env=env)
    assert again.returncode == 2
    assert "no active API key" in again.stderr
    assert "fix:" in again.stderr
    bad_role = run_pantau("api", "key", "create", "--name", "x", "--role", "mayor", env=env)
    assert bad_role.returncode == 2
    assert "invalid choice: 'mayor'" in bad_role.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_server_answers_and_stops_on_sigint(db_url, workers):
    port = free_port()
    env = pantau_env(
        PANTAU_DATABASE_URL=db_url, PANTAU_API_PORT=str(port), PANTAU_API_WORKERS=workers
    )
    key = run_pantau("api", "key", "create", "--name", "ops", "--role", "engineer", env=env)
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/v1"
        wait_for(lambda: _answers(f"{base}/health"), what="the API to answer")
        latest = max(m.version for m in available())
        assert get(f"{base}/ready") == (
            200, {"status": "ready", "database": "reachable", "schema_version": latest}
        )  # fmt: skip
        status, body = get(f"{base}/sensors")
        assert status == 401
        assert body["title"] == "Unauthorized"
        status, body = get(f"{base}/sensors", key.stdout.strip())
        assert (status, body["items"]) == (200, [])
        status, body = get(f"{base}/waste/bins", key.stdout.strip())
        assert status == 403
        assert "needs one of admin, dlh" in str(body["detail"])
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/docs" in out
    assert server.returncode == 0, err


def _answers(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except OSError:
        return False


def test_the_server_refuses_to_start_on_an_old_schema(stack):
    port = free_port()
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS api_empty")
        conn.execute("CREATE DATABASE api_empty")
    url = stack.database_url.rsplit("/", 1)[0] + "/api_empty"
    env = pantau_env(PANTAU_DATABASE_URL=url, PANTAU_API_PORT=str(port))
    result = run_pantau("api", env=env, timeout=60)
    assert result.returncode != 0
    assert "pantau db migrate" in result.stderr
