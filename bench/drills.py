"""What the operations drills (``bench.soak``, ``bench.chaos``) share.

- :class:`DrillPublisher`: a paho QoS 1 publisher for the broker of an ``mqtt://`` URL (its
  credentials included) that survives broker restarts: paho reconnects and resends every
  message not yet acknowledged; a window bounds the messages awaiting a PUBACK, and the
  readings of acknowledged messages are counted.
- ``pantau ingest`` as a subprocess (:func:`spawn_worker`), its resident memory from /proc and
  its Prometheus counters (:func:`scrape_metrics`).
- Counting rows on a database that may be restarting, and writing a report to
  ``bench/results/``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from bench.ingest import code_version
from bench.procs import machine
from bench.workers import WorkerProcess, worker_env
from ops.stack.local import LocalStack, temporary_stack
from pantau.mqtt import MqttEndpoint

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STARTED = time.monotonic()


def say(message: str) -> None:
    """A progress line on stderr, with the seconds since the drill started."""
    print(f"[{time.monotonic() - STARTED:7.1f} s] {message}", file=sys.stderr, flush=True)


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rss_mib(pid: int) -> float | None:
    """VmRSS (resident memory now) of a live process in MiB; ``None`` when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


class DrillPublisher:
    """One QoS 1 connection to the broker of ``url``; at most ``window`` messages unacknowledged.

    While the broker is away paho keeps every message that has no PUBACK yet and sends it again
    after reconnecting (with the DUP flag), so a restart loses nothing; the broker may then hold
    a message twice, which the ingest stores once. ``acked_readings`` counts the readings of the
    messages the broker acknowledged.
    """

    def __init__(self, url: str, client_prefix: str = "drill-pub", window: int = 100) -> None:
        self.endpoint = MqttEndpoint.parse(url)
        self.window = window
        self.sent_messages = 0
        self.sent_readings = 0
        self.acked_messages = 0
        self.acked_readings = 0
        self.disconnects = 0
        self._pending: dict[int, int] = {}  # mid -> readings, awaiting the PUBACK
        self._early: set[int] = set()  # mids acknowledged before publish() recorded them
        self._cond = threading.Condition()
        self._connected = threading.Event()
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{client_prefix}-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.endpoint.configure(client)
        client.max_inflight_messages_set(window)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=2)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client
        client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        client.loop_start()
        if not self._connected.wait(15):
            client.loop_stop()
            raise RuntimeError(f"the broker at {self.endpoint.url()} refused the publisher")

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        if not rc.is_failure:
            self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self.disconnects += 1

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        # paho calls this holding its own lock: never hold ours while calling paho.
        with self._cond:
            readings = self._pending.pop(mid, None)
            if readings is None:
                self._early.add(mid)
            else:
                self._count_ack(readings)

    def _count_ack(self, readings: int) -> None:
        self.acked_messages += 1
        self.acked_readings += readings
        self._cond.notify_all()

    @property
    def unacked(self) -> int:
        return self.sent_messages - self.acked_messages

    def publish(self, topic: str, payload: bytes, readings: int) -> None:
        """Send one message; waits while ``window`` messages await their PUBACK."""
        with self._cond:
            while self.sent_messages - self.acked_messages >= self.window:
                self._cond.wait(0.5)
        # Disconnected, paho keeps the message and sends it after reconnecting.
        info = self.client.publish(topic, payload, qos=1)
        with self._cond:
            self.sent_messages += 1
            self.sent_readings += readings
            if info.mid in self._early:
                self._early.discard(info.mid)
                self._count_ack(readings)
            else:
                self._pending[info.mid] = readings

    def drain(self, timeout_s: float) -> bool:
        """Wait until the broker has acknowledged every message sent; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.acked_messages < self.sent_messages and time.monotonic() < deadline:
                self._cond.wait(0.2)
            return self.acked_messages >= self.sent_messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def spawn_worker(
    mqtt_url: str,
    database_url: str,
    topic_root: str,
    client_id: str,
    cwd: Path,
    extra_env: dict[str, str] | None = None,
) -> WorkerProcess:
    """``python -m cli.main ingest`` with a fixed client id (its persistent session)."""
    env = worker_env(database_url, mqtt_url, topic_root) | (extra_env or {})
    return WorkerProcess(client_id, "", env, cwd)


def reap(worker: WorkerProcess) -> None:
    """Once the worker has exited: wait for its log reader, close its pipe."""
    worker.reader.join(timeout=10)
    if worker.proc.stderr is not None and not worker.reader.is_alive():
        worker.proc.stderr.close()


def scrape_metrics(port: int) -> dict[str, float]:
    """The worker's Prometheus samples, summed over labels (e.g. every reject reason)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0]
        out[name] = out.get(name, 0.0) + float(value)
    return out


def query_one(url: str, sql: str) -> tuple[Any, ...] | None:
    """One row of ``sql``; ``None`` while the database cannot be reached (it may be restarting)."""
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            return conn.execute(sql).fetchone()
    except psycopg.OperationalError:
        return None


def count_readings(url: str) -> int:
    """Rows in ``readings``; -1 while the database cannot be reached."""
    row = query_one(url, "SELECT count(*) FROM readings")
    return int(row[0]) if row else -1


def wait_until(
    done: Callable[[], bool], progress: Callable[[], int], stall_s: float, cap_s: float
) -> bool:
    """Poll ``done`` every 0.5 s; give up after ``stall_s`` without ``progress`` changing, or
    ``cap_s`` in all."""
    deadline = time.monotonic() + cap_s
    last, changed = progress(), time.monotonic()
    while not done():
        time.sleep(0.5)
        now, value = time.monotonic(), progress()
        if value != last:
            last, changed = value, now
        if now - changed > stall_s or now > deadline:
            return done()
    return True


def write_report(kind: str, started_utc: str, report: dict[str, Any]) -> Path:
    """``bench/results/<kind>-<UTC time>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{kind}-{started_utc.replace(':', '').replace('-', '')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


class DrillResult(Protocol):
    @property
    def passed(self) -> bool: ...

    @property
    def started_utc(self) -> str: ...


R = TypeVar("R", bound=DrillResult)


def run_drill(
    kind: str, fsync: bool, run: Callable[[LocalStack, Path], R], render: Callable[[R], str]
) -> int:
    """A drill's command: a private stack, ``run`` on it, the figures printed and written to
    ``bench/results/<kind>-<time>.json``; exit status 0 when it passed."""
    host = machine()  # the load average before the drill
    code = code_version()  # what runs is what was checked out at the start
    say(f"starting a private broker and database (fsync {'on' if fsync else 'off'})")
    with temporary_stack(f"pantau-{kind}-", fsync=fsync) as local:
        scratch = local.state_dir / kind
        scratch.mkdir()
        result = run(local, scratch)
    print(render(result))
    report = asdict(result) | {  # type: ignore[call-overload]
        "passed": result.passed,
        "fsync": fsync,
        "machine": host,
        "code": code,
    }
    say(f"written to {write_report(kind, result.started_utc, report)}")
    return 0 if result.passed else 1
