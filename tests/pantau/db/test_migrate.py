"""Migrations against the real TimescaleDB: idempotent, hypertables, clear refusals."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from ops.stack.install import detect
from ops.stack.postgres import Cluster, ClusterConfig
from ops.stack.processes import ServiceUser, free_port
from pantau.db.migrate import available, migrate
from pantau.errors import PantauError
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.stack import make_state_dir

pytestmark = pytest.mark.integration

SCHEMA = """
SELECT table_name, column_name, data_type, is_nullable
FROM information_schema.columns WHERE table_schema = 'public'
ORDER BY table_name, ordinal_position"""


def snapshot(url: str) -> tuple[list[tuple[object, ...]], ...]:
    with psycopg.connect(url) as conn:
        return (
            conn.execute(SCHEMA).fetchall(),
            conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY 1").fetchall(),
            conn.execute("SELECT count(*) FROM metrics").fetchall(),
            conn.execute("SELECT count(*) FROM kind_metrics").fetchall(),
        )


def test_second_migrate_changes_nothing(db_url):
    before = snapshot(db_url)
    assert migrate(db_url) == []
    assert snapshot(db_url) == before
    assert [v for v, _ in before[1]] == [m.version for m in available()]


def test_time_series_tables_are_hypertables(db_url):
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1"
        ).fetchall()
    assert {r[0] for r in rows} >= {"readings", "rollup_1m", "rollup_1h", "anomalies", "rejects"}


def test_an_edited_migration_is_refused(db_url):
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    with pytest.raises(PantauError, match="was changed after it was applied"):
        migrate(db_url)


def test_roles_exist_with_least_privilege(db_url):
    with psycopg.connect(db_url) as conn:
        reader_insert = conn.execute(
            "SELECT has_table_privilege('pantau_reader', 'readings', 'INSERT')"
        ).fetchone()
        writer_insert = conn.execute(
            "SELECT has_table_privilege('pantau_writer', 'readings', 'INSERT')"
        ).fetchone()
        writer_sensors = conn.execute(
            "SELECT has_table_privilege('pantau_writer', 'sensors', 'UPDATE')"
        ).fetchone()
    assert reader_insert == (False,)
    assert writer_insert == (True,)
    assert writer_sensors == (False,)


def test_migrate_without_timescaledb_names_the_fix():
    toolchain = detect()
    assert toolchain.pg_bindir is not None
    state_dir = make_state_dir("pantau-plainpg-")
    config = ClusterConfig(port=free_port(), directory=state_dir, timescaledb=False, fsync=False)
    cluster = Cluster(toolchain.pg_bindir, config, ServiceUser.for_service("postgres"))
    try:
        cluster.start()
        result = run_pantau("db", "migrate", env=pantau_env(PANTAU_DATABASE_URL=config.url()))
    finally:
        cluster.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    assert result.returncode == 3
    assert "TimescaleDB is installed but not preloaded" in result.stderr
    assert "shared_preload_libraries = 'timescaledb'" in result.stderr
