"""Fault drills on a private stack: killed workers, a database outage, a broker restart,
redelivery after a crash between commit and ack, and several workers sharing the load.

Each drill counts rows at the end: every reading published is in `readings` exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ingest.worker import Worker
from ops.stack.local import StackState
from pantau.db.scratch import scratch_database
from pantau.registry.fleet import parse_fleet
from pantau.registry.load import load_into
from tests.fixtures.broker import Publisher
from tests.fixtures.commands import pantau_env
from tests.fixtures.ingest import start_worker
from tests.fixtures.polling import wait_for
from tests.fixtures.stack import count_readings

pytestmark = pytest.mark.integration

N_SENSORS = 50
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: 100k readings 10 s apart stay in the past


@pytest.fixture
def drill_db(private_state: StackState) -> Iterator[str]:
    zones = [{"id": "Z", "name": "Z", "kind": "village", "lat": -6.5, "lon": 110.7}]
    sensors = [{"id": f"B{i:03d}", "kind": "waste_bin", "zone": "Z"} for i in range(N_SENSORS)]
    with scratch_database(private_state.database_url, "drill") as url:
        with psycopg.connect(url) as conn:
            load_into(conn, parse_fleet({"zones": zones, "sensors": sensors}))
        yield url


def gateway_payload(n: int, per_message: int) -> bytes:
    """Message ``n``: ``per_message`` fill readings of one bin at distinct times."""
    base = T0_MS + n * per_message * 1000
    items = ",".join(
        f'{{"ts": {base + k * 1000}, "fill_pct": {(n + k) % 100}}}' for k in range(per_message)
    )
    return f"[{items}]".encode()


def stream(
    publisher: Publisher, root: str, messages: int, per_message: int, rate: float, first: int = 0
) -> None:
    """Publish gateway messages ``first`` ... ``first + messages - 1`` at about ``rate`` per s."""
    start = time.monotonic()
    for n in range(first, first + messages):
        topic = f"{root}/waste_bin/B{n % N_SENSORS:03d}"
        publisher.publish(topic, gateway_payload(n, per_message))
        ahead = (n - first) / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)


def stream_in_background(
    publisher: Publisher, root: str, messages: int, per_message: int, rate_per_s: float
) -> threading.Thread:
    thread = threading.Thread(
        target=stream, args=(publisher, root, messages, per_message, rate_per_s), daemon=True
    )
    thread.start()
    return thread


def spawn_worker(state: StackState, url: str, root: str, client_id: str) -> subprocess.Popen[bytes]:
    env = pantau_env(
        PANTAU_DATABASE_URL=url,
        PANTAU_MQTT_URL=state.mqtt_url,
        PANTAU_TOPIC_ROOT=root,
        PANTAU_INGEST_CLIENT_ID=client_id,
        PANTAU_INGEST_BATCH_MAX_AGE_MS="50",
    )
    with open(f"{state.state_dir}/{client_id}.log", "ab") as log:  # the child keeps its copy
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "ingest"], env=env, stdout=log, stderr=log
        )


def test_sigkill_the_worker_repeatedly_during_100k_readings(private_state, drill_db, topic_root):
    messages, per_message = 10_000, 10
    client_id = f"drill-kill-{uuid.uuid4().hex[:6]}"
    worker = spawn_worker(private_state, drill_db, topic_root, client_id)
    # The broker keeps messages only for a session that exists: wait for the first worker to
    # have subscribed (a fixed sleep was too short on a loaded machine: the worker was killed
    # before it ever connected, and every message went to no one).
    log = Path(private_state.state_dir) / f"{client_id}.log"
    wait_for(
        lambda: log.exists() and "subscribed to" in log.read_text(errors="replace"),
        timeout_s=60,
        what="the first worker's subscription",
    )
    publisher = Publisher(private_state.mqtt_url)
    streaming = stream_in_background(publisher, topic_root, messages, per_message, rate_per_s=2000)
    kills = 0
    try:
        while streaming.is_alive() or kills < 3:
            time.sleep(0.7)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            kills += 1
            worker = spawn_worker(private_state, drill_db, topic_root, client_id)
        publisher.wait_all()
        expected = messages * per_message
        wait_for(
            lambda: count_readings(drill_db) == expected, timeout_s=120, what=f"{expected} readings"
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            pytest.fail("the ingest worker did not stop within 30 s of SIGTERM")
        publisher.close()
    assert kills >= 3
    with psycopg.connect(drill_db) as conn:
        distinct = conn.execute(
            "SELECT count(DISTINCT (sensor_key, metric_id, ts)) FROM readings"
        ).fetchone()
    assert distinct == (expected,)


def test_database_outage_loses_nothing_and_memory_stays_bounded(
    private_stack, private_state, drill_db, topic_root, worker_factory
):
    receive_maximum = 100
    running = worker_factory(
        drill_db, topic_root, receive_maximum=receive_maximum, mqtt_url=private_state.mqtt_url
    )
    messages = 6_000
    publisher = Publisher(private_state.mqtt_url)
    streaming = stream_in_background(publisher, topic_root, messages, 1, rate_per_s=400)
    _, cluster = private_stack.parts()
    pending: list[int] = []
    try:
        wait_for(lambda: count_readings(drill_db) > 100, what="readings before the outage")
        cluster.stop()
        outage_end = time.monotonic() + 10
        while time.monotonic() < outage_end:
            worker = running.worker
            pending.append(worker.inbox.qsize() + len(worker.pipeline.batch.messages))
            time.sleep(0.1)
        cluster.start()
        streaming.join()
        publisher.wait_all()
        wait_for(lambda: count_readings(drill_db) == messages, timeout_s=120, what="every reading")
    finally:
        publisher.close()
    counters = running.shutdown()
    assert counters.db_retries > 0
    # Messages waiting in the worker never exceed what the broker may send unacknowledged.
    assert max(pending) <= receive_maximum
    assert max(pending) > 0


def test_broker_restart_loses_nothing(
    private_stack, private_state, drill_db, topic_root, worker_factory
):
    running = worker_factory(drill_db, topic_root, mqtt_url=private_state.mqtt_url)
    messages = 4_000
    publisher = Publisher(private_state.mqtt_url)
    streaming = stream_in_background(publisher, topic_root, messages, 1, rate_per_s=500)
    broker, _ = private_stack.parts()
    try:
        wait_for(lambda: count_readings(drill_db) > 200, what="readings before the restart")
        broker.stop()
        time.sleep(1.0)
        broker.start()
        streaming.join()
        publisher.wait_all()
        wait_for(lambda: count_readings(drill_db) == messages, timeout_s=120, what="every reading")
    finally:
        publisher.close()
    running.shutdown()


def test_redelivery_after_a_crash_between_commit_and_ack(private_state, drill_db, topic_root):
    class CrashBeforeAck(Worker):
        def _ack(self, acks: list[tuple[int, int, int]]) -> None:
            """Committed, then gone before any PUBACK."""

    client_id = f"drill-ack-{uuid.uuid4().hex[:6]}"
    first = start_worker(
        private_state, drill_db, topic_root, client_id=client_id, worker_class=CrashBeforeAck
    )
    publisher = Publisher(private_state.mqtt_url)
    stream(publisher, topic_root, 1, 3, rate=1000)
    publisher.wait_all()
    wait_for(lambda: first.worker.counters.inserted == 3, what="the first commit")
    first.shutdown()

    second = start_worker(private_state, drill_db, topic_root, client_id=client_id)
    wait_for(lambda: second.worker.counters.messages == 1, what="the redelivered message")
    counters = second.shutdown()
    publisher.close()
    assert counters.inserted == 0  # downstream sees the readings once, from the first commit
    assert count_readings(drill_db) == 3


def test_three_workers_on_a_shared_subscription(
    private_state, drill_db, topic_root, worker_factory
):
    workers = [
        worker_factory(drill_db, topic_root, shared_group="drill", mqtt_url=private_state.mqtt_url)
        for _ in range(3)
    ]
    messages = 9_000
    publisher = Publisher(private_state.mqtt_url)
    stream(publisher, topic_root, messages, 1, rate=5_000)
    publisher.wait_all()
    wait_for(lambda: count_readings(drill_db) == messages, timeout_s=120, what="every reading")
    publisher.close()
    counters = [w.shutdown() for w in workers]
    assert all(c.messages > 0 for c in counters), "every worker took a share"
    assert sum(c.messages for c in counters) == messages
    assert sum(c.inserted for c in counters) == messages


@pytest.mark.parametrize("mqtt_version", ["3.1.1"])
def test_mqtt_3_worker_keeps_the_guarantees(private_state, drill_db, topic_root, mqtt_version):
    """The MQTT 3.1.1 worker connection (faster with paho): redelivery after a crash between
    commit and ack stores nothing new, and a shared group splits the load exactly."""

    class CrashBeforeAck(Worker):
        def _ack(self, acks: list[tuple[int, int, int]]) -> None:
            """Committed, then gone before any PUBACK."""

    client_id = f"drill-v3-{uuid.uuid4().hex[:6]}"
    first = start_worker(
        private_state,
        drill_db,
        topic_root,
        client_id=client_id,
        worker_class=CrashBeforeAck,
        mqtt_version=mqtt_version,
    )
    publisher = Publisher(private_state.mqtt_url)
    stream(publisher, topic_root, 1, 3, rate=1000)
    publisher.wait_all()
    wait_for(lambda: first.worker.counters.inserted == 3, what="the first commit")
    first.shutdown()
    group = [
        start_worker(
            private_state,
            drill_db,
            topic_root,
            client_id=f"{client_id}-{k}",
            shared_group="v3",
            mqtt_version=mqtt_version,
        )
        for k in range(2)
    ]
    again = start_worker(
        private_state, drill_db, topic_root, client_id=client_id, mqtt_version=mqtt_version
    )
    wait_for(lambda: again.worker.counters.messages == 1, what="the redelivered message")
    assert again.shutdown().inserted == 0
    stream(publisher, topic_root, 4000, 1, rate=5000, first=1000)
    publisher.wait_all()
    wait_for(lambda: count_readings(drill_db) == 3 + 4000, timeout_s=60, what="every reading")
    publisher.close()
    counters = [w.shutdown() for w in group]
    assert all(c.messages > 0 for c in counters)
    assert sum(c.inserted for c in counters) == 4000
