"""A database filled the way production fills it, for the API tests (a pytest plugin).

Two simulated days of the Jepara fleet, faults included, go through the ingest writer (rollups
and detectors), then ``pantau process`` runs as of the end, so every table the API reads holds
data. One key per role is created.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from api import keys
from api.app import create_app
from ingest.derive import Detection
from ingest.registry import Registry
from ingest.writer import Readings, Writer
from pantau.monitor.job import Job
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from pantau.settings import ApiSettings, ProcessSettings
from pantau.stack.local import StackState
from processing.rules import metric_rules
from simulators.scenario import generate_columns
from tests.services import fresh_database

# Two days ending on Friday 2026-11-27 at 14:00 WIB: tourist zones open, bins mid-round.
DAYS = 2
START_S = 1_795_798_800 - 10 * 3600 - DAYS * 86_400
END_MS = (START_S + DAYS * 86_400) * 1000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class ApiData:
    url: str
    keys: dict[str, str]  # role -> key
    end_ms: int  # the simulated "now" the job ran at


def fill(url: str) -> None:
    fleet = load_fleet()
    with psycopg.connect(url) as conn:
        load_into(conn, fleet)
        conn.commit()
        registry = Registry()
        registry.load(conn)
    columns, _ = generate_columns(
        fleet, seed=11, start_s=START_S, duration_s=DAYS * 86_400, fault_rate=0.5
    )
    key_of = np.array([registry.sensors[s].sensor_key for s in columns.sensor_ids], dtype=np.int32)
    metric_of = np.array([registry.metric_ids[m] for m in columns.metric_names], dtype=np.int16)
    order = np.argsort(columns.publish_ms, kind="stable")
    k, m = key_of[columns.sensor_idx[order]], metric_of[columns.metric_id[order]]
    t, v, p = columns.ts_ms[order], columns.value[order], columns.publish_ms[order]
    with psycopg.connect(url) as conn:
        writer = Writer(conn, Detection(metric_rules(registry.metric_ids)))
        hours = p // HOUR_MS
        for lo, hi in zip(*_runs(hours), strict=True):
            sel = slice(lo, hi)
            first = np.unique(
                np.stack([k[sel].astype(np.int64), m[sel].astype(np.int64), t[sel]]), axis=1,
                return_index=True,
            )[1]  # fmt: skip
            idx = np.arange(lo, hi)[np.sort(first)]  # one reading per key (duplicates: first)
            writer.write(Readings(k[idx], m[idx], t[idx], v[idx]), [])
    with psycopg.connect(url) as conn:
        job = Job(conn, ProcessSettings(database_url=url))
        for at in (END_MS - HOUR_MS, END_MS - 20 * 60_000, END_MS):
            job.run_once(at)


def _runs(hours: np.ndarray) -> tuple[list[int], list[int]]:
    cuts = (np.flatnonzero(np.diff(hours)) + 1).tolist()
    return [0, *cuts], [*cuts, hours.shape[0]]


@pytest.fixture(scope="session")
def api_data(stack: StackState) -> Iterator[ApiData]:
    with fresh_database(stack) as url:
        fill(url)
        made = {}
        with psycopg.connect(url) as conn:
            for role in keys.ROLES:
                made[role] = keys.create(conn, f"test {role}", role).key
            conn.commit()
        yield ApiData(url, made, END_MS)


@pytest.fixture(scope="session")
def api_client(api_data: ApiData) -> Iterator[TestClient]:
    # Rate limit off: the content tests send hundreds of requests per key at machine speed;
    # test_api_limits.py tests the limits.
    app = create_app(ApiSettings(database_url=api_data.url, rate_per_s=0))
    with TestClient(app) as client:
        yield client
