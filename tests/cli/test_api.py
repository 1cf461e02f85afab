"""`pantau api` and `pantau api key`: the commands, against the real database, and on a local
stack of this module's own as a newcomer runs them (no URL: each command picks its login)."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import psycopg
import pytest

from api import apikeys
from cli.commands import api as command
from ops.stack.local import StackState
from ops.stack.processes import free_port
from pantau.db import roles
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


# --- the help ------------------------------------------------------------------------------------


def test_help_says_the_api_is_served_without_an_action():
    helped = run_pantau("api", "--help", env=pantau_env())
    assert helped.returncode == 0, helped.stderr
    usage = helped.stdout.split("\n\n")[0]
    assert usage == "usage: pantau api [-h]\n       pantau api key {create,list,revoke} ..."
    assert "With no action: serve the read API" in helped.stdout
    assert "actions (optional; with none, the API is served)" in helped.stdout
    assert 'pantau api key create --name "DLH field app" --role dlh' in helped.stdout
    assert "connect as the owner by\nthemselves" in helped.stdout
    key = run_pantau("api", "key", "--help", env=pantau_env())
    assert key.returncode == 0, key.stderr
    assert key.stdout.startswith("usage: pantau api key [-h] {create,list,revoke} ...\n")
    for action in ("create", "list", "revoke"):
        assert f"\n    {action} " in key.stdout
    create = run_pantau("api", "key", "create", "--help", env=pantau_env())
    assert "--role {dlh,tourism,engineer,admin}" in " ".join(create.stdout.split())
    missing = run_pantau("api", "key", env=pantau_env())
    assert missing.returncode == 2
    assert "required: {create,list,revoke}" in missing.stderr


def test_the_command_s_roles_and_owner_are_the_api_s_and_the_database_s():
    assert command.ROLES == apikeys.ROLES
    assert command.OWNER == roles.OWNER


# --- the key commands on the local stack ---------------------------------------------------------


def _local_env(state: StackState, **extra: str) -> dict[str, str]:
    """A shell after `pantau stack up` (PANTAU_STATE_DIR, no URL) with the schema migrated,
    and ``extra`` variables."""
    env = pantau_env(PANTAU_STATE_DIR=state.state_dir)
    migrated = run_pantau("db", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    return {**env, **extra}


def test_the_readme_s_key_example_works_on_the_local_stack(private_state):
    """As a newcomer runs it: the key commands connect as the owner by themselves, and the API,
    serving as its own login, takes the key."""
    env = _local_env(private_state)
    made = run_pantau("api", "key", "create", "--name", "DLH field app", "--role", "dlh", env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    key_id = key.split("_")[1]
    listed = run_pantau("api", "key", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if row.startswith(key_id))
    assert line.split()[1:3] == ["dlh", "active"]
    assert line.endswith("DLH field app")

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api"], env={**env, "PANTAU_API_PORT": str(port)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/v1"
        wait_for(lambda: _answers(f"{base}/health"), what="the API to answer")
        status, body = get(f"{base}/alarms", key)
        assert (status, body["items"]) == (200, [])
        status, body = get(f"{base}/sensors", key)
        assert status == 403
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    revoked = run_pantau("api", "key", "revoke", key_id, env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in run_pantau("api", "key", "list", env=env).stdout


@pytest.mark.parametrize(
    "arguments",
    [["create", "--name", "DLH field app", "--role", "dlh"], ["list"], ["revoke", "0123456789ab"]],
    ids=["create", "list", "revoke"],
)
def test_a_key_command_the_database_refuses_says_the_exact_command(private_state, arguments):
    """With a URL given (as in production) the command uses it; the API's own login may not
    write keys, and the fix is the command to run, as the owner."""
    api_url = private_state.database_urls["api"]
    owner_url = private_state.database_urls["owner"]
    env = _local_env(private_state, PANTAU_DATABASE_URL=api_url)
    refused = run_pantau("api", "key", *arguments, env=env)
    assert refused.returncode == 2, refused.stderr
    assert "pantau api: error: the database refused: permission denied" in refused.stderr
    assert urlsplit(api_url).password not in refused.stderr
    fix = next(line for line in refused.stderr.splitlines() if line.startswith("  fix: "))
    assert "pantau_api_user" in fix
    command = shlex.split(fix.split("with pantau_owner's password: ", 1)[1])
    assignment, program, *rest = command
    assert program == "pantau"
    assert rest == ["api", "key", *arguments]
    name, _, url = assignment.partition("=")
    assert name == "PANTAU_DATABASE_URL"
    given, owner = urlsplit(api_url), urlsplit(owner_url)
    assert urlsplit(url)._replace(netloc="") == given._replace(netloc="")
    assert (urlsplit(url).hostname, urlsplit(url).port) == (given.hostname, given.port)
    assert urlsplit(url).username == "pantau_owner"
    # The command as the fix says, with the owner's password: the database takes it.
    url = url.replace("OWNER_PASSWORD", owner.password or "")
    done = run_pantau(*rest, env={**env, "PANTAU_DATABASE_URL": url})
    if arguments[0] == "revoke":
        assert done.returncode == 2, done.stderr  # no such key, said by the owner's login
        assert "no active API key" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
