"""`pantau ingest --processes N`: N worker processes on one shared subscription, supervised.

One worker process is bound by paho's pure-Python network thread (about 13,000 single-reading
messages/s here), so more throughput needs more processes. Each child is an ordinary
`pantau ingest` with client id ``<client_id>-<k>`` in the shared group (``$share/<group>/...``),
so the broker splits the messages between them and each keeps its own persistent session.

A child that dies is restarted with capped backoff. A child that exits with an error in its
first seconds (bad configuration, database unreachable) stops the whole group with its exit
code, since restarting would fail the same way; one killed by a signal is restarted.
SIGTERM/SIGINT are passed on, and the supervisor waits for the children to flush and ack.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from ingest.settings import IngestSettings

logger = logging.getLogger(__name__)

STARTUP_GRACE_S = 5.0  # a child failing sooner than this is misconfigured, not unlucky
MAX_BACKOFF_S = 30.0
STOP_TIMEOUT_S = 60.0


@dataclass
class Child:
    index: int
    process: subprocess.Popen[bytes]
    started: float
    backoff_s: float = 1.0


def child_env(settings: IngestSettings, index: int, group: str) -> dict[str, str]:
    """The environment of child ``index``: its own client id and metrics port, the shared group."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTAU_INGEST_")}
    env.update(
        {
            f"PANTAU_INGEST_{name.upper()}": str(value)
            for name, value in settings.model_dump().items()
            if name in IngestSettings.model_fields and name not in _SHARED_FIELDS
        }
    )
    env.update(
        {
            "PANTAU_DATABASE_URL": settings.resolved_database_url(),
            "PANTAU_MQTT_URL": settings.resolved_mqtt_url(),
            "PANTAU_TOPIC_ROOT": settings.topic_root,
            "PANTAU_STATE_DIR": str(settings.state_dir),
            "PANTAU_INGEST_CLIENT_ID": f"{settings.client_id}-{index}",
            "PANTAU_INGEST_SHARED_GROUP": group,
            "PANTAU_INGEST_PROCESSES": "1",
            "PANTAU_INGEST_METRICS_PORT": str(
                settings.metrics_port + index if settings.metrics_port else 0
            ),
        }
    )
    return env


_SHARED_FIELDS = frozenset({"state_dir", "database_url", "mqtt_url", "topic_root"})


def _spawn(settings: IngestSettings, index: int, group: str) -> Child:
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "ingest"], env=child_env(settings, index, group)
    )
    logger.info("started worker %d (pid %d)", index, process.pid)
    return Child(index=index, process=process, started=time.monotonic())


def supervise(settings: IngestSettings, stop: threading.Event) -> int:
    """Run ``settings.processes`` workers until ``stop``; returns the exit code."""
    group = settings.shared_group or "pantau"
    children = [_spawn(settings, k, group) for k in range(1, settings.processes + 1)]
    exit_code = 0
    try:
        while not stop.wait(0.5):
            for i, child in enumerate(children):
                code = child.process.poll()
                if code is None:
                    continue
                lived = time.monotonic() - child.started
                # An error exit (not a signal) right after start: restarting would fail again.
                if lived < STARTUP_GRACE_S and code > 0:
                    logger.error(
                        "worker %d exited with %d within %.1f s of starting; stopping all",
                        child.index,
                        code,
                        lived,
                    )
                    return code
                backoff = 1.0 if lived > 60 else min(child.backoff_s * 2, MAX_BACKOFF_S)
                logger.error(
                    "worker %d exited with %d; restarting in %.0f s", child.index, code, backoff
                )
                if stop.wait(backoff):
                    break
                children[i] = _spawn(settings, child.index, group)
                children[i].backoff_s = backoff
    finally:
        _stop_all(children)
    return exit_code


def _stop_all(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.error("worker %d did not stop in time; killing it", child.index)
            child.process.kill()
            child.process.wait()
