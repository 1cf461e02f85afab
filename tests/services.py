"""Pytest fixtures that start the real broker and database, through Pantau's own stack code.

One private Mosquitto and one private PostgreSQL + TimescaleDB run per test session, on free
ports, under a temporary state directory. Each test that needs the database gets a fresh,
migrated database of its own, and each test gets its own topic root, so tests never see each
other's data. Nothing here skips: a service that cannot start fails the test run.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ingest.worker import Counters, Worker
from pantau.credentials import local_devices
from pantau.db.scratch import scratch_database
from pantau.mqttauth import Device
from pantau.settings import IngestSettings, MqttEndpoint
from pantau.stack.local import LocalStack, StackState, settings_for, temporary_stack


def make_state_dir(prefix: str) -> Path:
    """A temporary directory the servers' unprivileged users can enter (pytest's is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def stack() -> Iterator[StackState]:
    with temporary_stack("pantau-test-") as local:
        state = local.read_state()
        assert state is not None
        yield state


def session_stack(stack: StackState) -> LocalStack:
    """The test session's stack as a LocalStack (to change its broker's device accounts)."""
    return LocalStack(
        settings_for(Path(stack.state_dir), stack.mqtt_port, stack.pg_port, fsync=False)
    )


def device_accounts(stack: StackState, topic_root: str, devices: list[Device]) -> dict[str, str]:
    """Give ``devices`` broker accounts under ``topic_root`` (replacing the session broker's
    earlier device accounts) and return their passwords by sensor id."""
    local = session_stack(stack)
    local.write_devices(topic_root, devices, rotate=False)
    return local_devices(local.store())[2]


@pytest.fixture(scope="module")
def private_stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    """A stack of the test module's own, for drills that stop and restart its servers."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with temporary_stack(f"pantau-{name}-") as local:
        yield local


@pytest.fixture
def private_state(private_stack: LocalStack) -> StackState:
    """The private stack with both servers running (a drill may have left one stopped), and
    its state (the pids the state file records are current)."""
    private_stack.up()
    found = private_stack.read_state()
    assert found is not None
    return found


def fresh_database(stack: StackState) -> contextlib.AbstractContextManager[str]:
    """A newly created and migrated database on ``stack``, dropped afterwards."""
    return scratch_database(stack.database_url, "t")


@pytest.fixture
def db_url(stack: StackState) -> Iterator[str]:
    """A freshly created and migrated database for this test."""
    with fresh_database(stack) as url:
        yield url


@pytest.fixture
def topic_root() -> str:
    return f"t{uuid.uuid4().hex[:10]}/v1"


def wait_for(predicate: Callable[[], Any], timeout_s: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what} (last: {value!r})")
        time.sleep(0.05)


@dataclass
class RunningWorker:
    worker: Worker
    stop: threading.Event
    thread: threading.Thread
    result: list[Counters]

    def shutdown(self) -> Counters:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "ingest worker did not stop"
        assert self.result, "ingest worker failed; see the log above"
        return self.result[0]


def start_worker(
    stack: StackState,
    db: str,
    topic_root: str,
    worker_class: type[Worker] = Worker,
    **overrides: Any,
) -> RunningWorker:
    """An ingest worker on its own thread, connected and subscribed when this returns.

    ``overrides`` are IngestSettings fields (``mqtt_url`` defaults to ``stack``'s broker).
    """
    fields: dict[str, Any] = {
        "mqtt_url": stack.mqtt_url,
        "client_id": f"test-{uuid.uuid4().hex[:8]}",
        "batch_max_age_ms": 50,
        **overrides,
    }
    settings = IngestSettings(database_url=db, topic_root=topic_root, **fields)
    worker = worker_class(settings)
    stop = threading.Event()
    result: list[Counters] = []
    thread = threading.Thread(target=lambda: result.append(worker.run(stop)), daemon=True)
    thread.start()
    if not worker.ready.wait(20):
        stop.set()
        pytest.fail("ingest worker did not connect and subscribe")
    return RunningWorker(worker, stop, thread, result)


@pytest.fixture
def worker_factory(stack: StackState) -> Iterator[Callable[..., RunningWorker]]:
    started: list[RunningWorker] = []

    def factory(db: str, topic_root: str, **overrides: Any) -> RunningWorker:
        running = start_worker(stack, db, topic_root, **overrides)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop.set()
        running.thread.join(timeout=60)


def run_pantau(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the `pantau` command in a subprocess, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "pantau.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def count_readings(url: str) -> int:
    """Rows in ``readings``; -1 while the database cannot be reached (outage drills)."""
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM readings").fetchone()
    except psycopg.OperationalError:
        return -1
    return int(row[0]) if row else 0


def pantau_env(**extra: str) -> dict[str, str]:
    """The environment for running the `pantau` command in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTAU_")}
    env.update(extra)
    return env


def connect_mqtt(client: mqtt.Client, url: str, keepalive: int = 60) -> None:
    """Connect ``client`` to the broker of ``url`` (``mqtt://[user:password@]host:port``)."""
    endpoint = MqttEndpoint.parse(url)
    endpoint.configure(client)
    client.connect(endpoint.host, endpoint.port, keepalive=keepalive)


def login_url(stack: StackState, username: str | None = None, password: str | None = None) -> str:
    """The stack's broker URL with this login (none: anonymous)."""
    endpoint = MqttEndpoint.parse(stack.mqtt_url)
    auth = (
        "" if username is None else f"{quote(username, safe='')}:{quote(password or '', safe='')}@"
    )
    return f"mqtt://{auth}{endpoint.host}:{endpoint.port}"


class ReasonClient:
    """One MQTT 5 connection with the login of ``url`` that reports the broker's reason codes:
    of its CONNACK, of each PUBACK and SUBACK; and the topics of what it receives."""

    def __init__(self, url: str) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.lock = threading.Lock()
        self.connack: list[int] = []
        self.pubacks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.received: list[str] = []
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, m: self.received.append(m.topic)
        connect_mqtt(self.client, url)
        self.client.loop_start()
        wait_for(lambda: self.connack, what="CONNACK")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack.append(int(rc.value))

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self.lock:
            self.pubacks[mid] = int(rc.value)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        self.subacks[mid] = [int(c.value) for c in codes]

    @property
    def accepted(self) -> bool:
        return self.connack == [0]

    def publish_many(self, messages: list[tuple[str, str | bytes]]) -> list[int]:
        """Publish at QoS 1; the PUBACKs' reason codes (0: accepted, 135: not authorised)."""
        mids = []
        for topic, payload in messages:
            info = self.client.publish(topic, payload, qos=1)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS, (
                f"paho refused to publish to {topic[:100]!r}: {mqtt.error_string(info.rc)}"
            )
            mids.append(info.mid)
        wait_for(lambda: all(mid in self.pubacks for mid in mids), what="every PUBACK")
        with self.lock:
            return [self.pubacks.pop(mid) for mid in mids]

    def publish(self, topic: str, payload: str | bytes) -> int:
        return self.publish_many([(topic, payload)])[0]

    def subscribe(self, topic: str) -> list[int]:
        _, mid = self.client.subscribe(topic, qos=1)
        return list(wait_for(lambda: self.subacks.get(mid), what="SUBACK"))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def mosquitto_client(program: str, url: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The command line start (program, host, port) and the environment with which Mosquitto's
    C client ``program`` (mosquitto_pub, mosquitto_sub) connects to the broker of ``url``.

    Their only password option is ``-P``, on the command line that ``ps`` shows; but they read
    default options, one ``-option value`` a line, from ``$XDG_CONFIG_HOME/<program>`` first. The
    login goes there, in a private temporary directory removed when the block ends.
    """
    endpoint = MqttEndpoint.parse(url)
    lines = []
    if endpoint.username:  # as paho does: no password without a username
        lines.append(f"-u {endpoint.username}")
        if endpoint.password:
            lines.append(f"-P {endpoint.password}")
    assert not any("\n" in line or "\r" in line for line in lines), "a line break in the login"
    with tempfile.TemporaryDirectory(prefix="pantau-mqtt-") as config:  # mode 0700
        path = Path(config, program)
        path.touch(mode=0o600)
        path.write_text("".join(line + "\n" for line in lines))
        args = [program, "-h", endpoint.host, "-p", str(endpoint.port)]
        yield args, {**os.environ, "XDG_CONFIG_HOME": config}


class Publisher:
    """A paho QoS 1 publisher that survives broker restarts and can wait for every PUBACK."""

    def __init__(self, url: str) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-pub-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 2)
        self.sent = 0
        self.acked = 0
        self.refused: str | None = None  # why the broker refused the connection, if it did
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        connect_mqtt(self.client, url)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.refused = str(rc) if rc.is_failure else None

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self.acked += 1

    def _all_acked(self) -> bool:
        if self.refused is not None:  # a restarting broker refuses the TCP connection instead
            pytest.fail(f"the broker refused the publisher's connection: {self.refused}")
        return self.acked >= self.sent

    def publish(self, topic: str, payload: bytes) -> None:
        # While the broker restarts, paho queues the message and sends it on reconnect.
        self.client.publish(topic, payload, qos=1)
        self.sent += 1

    def wait_all(self, timeout_s: float = 120) -> None:
        wait_for(
            self._all_acked,
            timeout_s=timeout_s,
            what="PUBACK for every published message",
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
