"""`pantau dashboards check` and `db-user` against the real database.

The data is the API tests' (tests/fixtures/api.py): two simulated days of the Jepara
fleet, faults included, through the real ingest writer and `pantau process`, ending Friday
2026-11-27 14:00 WIB. Every panel, variable and alert query must run as the read-only role
and return rows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from dashboards import check
from dashboards.alerts import GROUPS
from dashboards.board import Board, variable
from dashboards.panels import Query, table
from dashboards.provisioning import boards
from pantau.errors import PantauError
from tests.fixtures.api import END_MS, ApiData
from tests.fixtures.commands import pantau_env, run_pantau

pytestmark = pytest.mark.integration

END = datetime.fromtimestamp(END_MS / 1000, UTC).isoformat()  # Friday 14:00 WIB
MARK = f"test-dashboards-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def with_rejects(api_data: ApiData) -> Iterator[str]:
    """A few rejected messages in the last hour of the data, removed afterwards.

    The simulated days hold no rejects (the fixture writes valid readings only), and the
    Operasional dashboard's reject panels should show some.
    """
    rows = [
        (END_MS - 50 * 60_000, "invalid_json", "expected a JSON object"),
        (END_MS - 20 * 60_000, "unknown_sensor", "WB-NOPE is not registered"),
        (END_MS - 5 * 60_000, "out_of_range", "fill_pct 900 above 150"),
    ]
    with psycopg.connect(api_data.url) as conn:
        for ms, reason, detail in rows:
            conn.execute(
                "INSERT INTO rejects (received_at, topic, payload, payload_len, reason, detail) "
                "VALUES (to_timestamp(%s / 1000.0), %s, 'x', 1, %s, %s)",
                (ms, MARK, reason, detail),
            )
    try:
        yield api_data.url
    finally:
        with psycopg.connect(api_data.url) as conn:
            conn.execute("DELETE FROM rejects WHERE topic = %s", (MARK,))


def expected_queries() -> int:
    per_board = [len(b.variables) + 2 * sum(len(p.queries) for p in b.panels) for b in boards()]
    return sum(per_board) + sum(len(rules) for rules in GROUPS.values())


def test_every_query_runs_and_returns_rows(with_rejects):
    result = run_pantau(
        "dashboards", "check", "--at", END, env=pantau_env(PANTAU_DATABASE_URL=with_rejects)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith(("FAIL", "empty"))]
    assert f"{expected_queries()} queries: {expected_queries()} ok" in result.stdout
    for title in ("Sampah", "Kualitas udara", "Pariwisata", "Operasional"):
        assert any(line.startswith(f"ok     {title} / ") for line in lines), title
    assert "Operasional: 2026-11-27T08:00+07:00 .. 2026-11-27T14:00+07:00" in lines
    assert "ok     Operasional / Penolakan per alasan [A]" in result.stdout


def test_an_explicit_range_over_the_history(api_data):
    result = run_pantau(
        "dashboards", "check", "--from", "2026-11-25T14:00:00+07:00", "--to", END,
        env=pantau_env(PANTAU_DATABASE_URL=api_data.url),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Sampah: 2026-11-25T14:00+07:00 .. 2026-11-27T14:00+07:00" in result.stdout
    assert "FAIL" not in result.stdout


NO_SUCH = "no_such_column"


def broken_board() -> Board:
    board = Board("pantau-rusak", "Rusak", "d", ["pantau"], "now-1h")
    board.variables.append(
        variable("kind", "Jenis", "SELECT kind AS __value, kind AS __text FROM sensor_kinds", "k")
    )
    board.add(
        table("Kolom salah", "d", Query(f"SELECT {NO_SUCH} FROM sensors WHERE kind IN ($kind)")),
        table("Kosong", "d", Query("SELECT sensor_id FROM sensors WHERE false")),
        table("Boleh kosong", "d", Query("SELECT 1 WHERE false", may_be_empty="by design")),
        table("Kunci API", "d", Query("SELECT key_id FROM api_keys")),
    )  # fmt: skip
    return board


def test_failures_name_dashboard_panel_and_error(api_data):
    lines: list[str] = []
    with psycopg.connect(api_data.url, autocommit=True) as conn:
        check.act_as(conn, "pantau_grafana")
        with pytest.raises(PantauError, match="5 of 15 dashboard and alert queries failed"):
            check.report(conn, [broken_board()], to_ms=END_MS, explicit=None, write=lines.append)
    text = "\n".join(lines)
    assert 'FAIL   Rusak / Kolom salah [A]: column "no_such_column" does not exist' in text
    # The expanded SQL follows, with the variable's three values quoted.
    assert re.search(
        rf"\n +SELECT {NO_SUCH} FROM sensors WHERE kind IN \('\w+','\w+','\w+'\)", text
    )
    assert "FAIL   Rusak / Kosong [A]: no rows, where the data should give some" in text
    assert "empty  Rusak / Boleh kosong [A]: no rows (allowed: by design)" in text
    # The read-only role cannot read the API's keys.
    assert "FAIL   Rusak / Kunci API [A]: permission denied for table api_keys" in text


def test_the_grafana_role_reads_no_keys_no_payloads_and_writes_nothing(api_data):
    with psycopg.connect(api_data.url, autocommit=True) as conn:
        check.act_as(conn, "pantau_grafana")
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] > 0
        for statement in (
            "SELECT payload FROM rejects",
            "SELECT * FROM api_keys",
            "SELECT * FROM detector_state",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE alarms SET state = 'cleared'")


def as_login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


def test_db_user_makes_a_read_only_login_grafana_can_check_with(api_data):
    login = f"grafana_{uuid.uuid4().hex[:8]}"
    env = pantau_env(
        PANTAU_DATABASE_URL=api_data.url,
        PANTAU_GRAFANA_DB_USER=login,
        PANTAU_GRAFANA_DB_PASSWORD="first",
    )
    try:
        first = run_pantau("dashboards", "db-user", env=env)
        assert first.returncode == 0, first.stderr
        assert f"created login {login}" in first.stdout
        again = run_pantau("dashboards", "db-user", env=env | {"PANTAU_GRAFANA_DB_PASSWORD": "2"})
        assert f"updated login {login}" in again.stdout
        with psycopg.connect(api_data.url) as conn:
            (secret,) = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (login,)
            ).fetchone()
        assert secret.startswith("SCRAM-SHA-256$")  # never the password in clear
        with psycopg.connect(as_login(api_data.url, login, "2")) as conn:
            assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        # Grafana's own login runs every query, without switching roles.
        grafana = run_pantau(
            "dashboards", "check", "--at", END, "--role", "none",
            env=pantau_env(PANTAU_DATABASE_URL=as_login(api_data.url, login, "2")),
        )  # fmt: skip
        assert grafana.returncode == 0, grafana.stdout + grafana.stderr
    finally:
        with psycopg.connect(api_data.url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{login}"')


def test_db_user_refuses_the_owner(api_data):
    owner = urlsplit(api_data.url).username or ""
    env = pantau_env(
        PANTAU_DATABASE_URL=api_data.url,
        PANTAU_GRAFANA_DB_USER=owner,
        PANTAU_GRAFANA_DB_PASSWORD="x",
    )
    result = run_pantau("dashboards", "db-user", env=env)
    assert result.returncode == 2
    assert "give each service a login of its own, never a superuser" in result.stderr
