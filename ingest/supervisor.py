"""`pantau ingest --processes N`: N worker processes on one shared subscription, supervised.

One worker process is bound by paho's pure-Python network thread (about 13,000 single-reading
messages/s here), so more throughput needs more processes. Each child is a process of its own
(multiprocessing's "spawn": a fresh interpreter, nothing inherited but the arguments) that runs
``target`` with the group's settings changed for it: client id ``<client_id>-<k>`` in the shared
group (``$share/<group>/...``), so the broker splits the messages between them and each keeps
its own persistent session, and its own metrics port. ``target`` (the composition's) sets up
logging and signal handling and runs a worker; its exit code is the child's.

A child that dies is restarted with capped backoff. A child that exits with an error in its
first seconds (bad configuration, database unreachable, a login the broker refuses) stops the
whole group with its exit code, since restarting would fail the same way; one killed by a signal
is restarted. SIGTERM/SIGINT are passed on, and the supervisor waits for the children to flush
and ack: for ``stop_grace_s``, the bound each child's own stop has (a child still running then
dumps its stacks and exits 1), and :data:`KILL_MARGIN_S` more before it kills a child. A child
that did not stop cleanly makes the supervisor exit 1. The supervisor's own stop is bounded by
:func:`supervisor_grace_s`.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

from ingest.settings import IngestSettings

logger = logging.getLogger(__name__)

STARTUP_GRACE_S = 5.0  # a child failing sooner than this is misconfigured, not unlucky
MAX_BACKOFF_S = 30.0
KILL_MARGIN_S = 5.0  # after a child's own stop bound: time for its stack dump to be written
POLL_S = 0.5
# Exit codes of a child that stopped cleanly: by itself, or by the signal before it handled any.
CLEAN_STOP = frozenset({0, -signal.SIGTERM, -signal.SIGINT})

Target = Callable[[IngestSettings], object]


@dataclass
class Child:
    index: int
    process: BaseProcess
    started: float
    backoff_s: float = 1.0


def child_settings(settings: IngestSettings, index: int, group: str) -> IngestSettings:
    """The settings of child ``index``: its own client id and metrics port, the shared group."""
    return settings.model_copy(
        update={
            "client_id": f"{settings.client_id}-{index}",
            "shared_group": group,
            "processes": 1,
            "metrics_port": settings.metrics_port + index if settings.metrics_port else 0,
        }
    )


def _spawn(target: Target, settings: IngestSettings, index: int, group: str) -> Child:
    process = multiprocessing.get_context("spawn").Process(
        target=target,
        args=(child_settings(settings, index, group),),
        name=f"pantau-ingest-{index}",
    )
    process.start()
    logger.info("started worker %d (pid %s)", index, process.pid)
    return Child(index=index, process=process, started=time.monotonic())


def supervisor_grace_s(stop_grace_s: float) -> float:
    """How long the supervisor's own stop may take when its children's may take
    ``stop_grace_s``: noticing the stop, their bound, then killing and reaping a child."""
    return POLL_S + stop_grace_s + 2 * KILL_MARGIN_S


def supervise(
    settings: IngestSettings, stop: threading.Event, target: Target, stop_grace_s: float
) -> int:
    """Run ``settings.processes`` children, each running ``target`` with its settings, until
    ``stop``; returns the exit code. ``target`` must be picklable (a module-level function);
    ``stop_grace_s`` is the bound on each child's stop."""
    group = settings.shared_group or "pantau"
    children: list[Child] = []
    try:
        # Appended one by one: if starting one fails, those started are stopped.
        children.extend(
            _spawn(target, settings, k, group) for k in range(1, settings.processes + 1)
        )
        while not stop.wait(POLL_S):
            for i, child in enumerate(children):
                code = child.process.exitcode  # negative: killed by that signal
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
                child.process.close()
                children[i] = _spawn(target, settings, child.index, group)
                children[i].backoff_s = backoff
    finally:
        stopped_cleanly = _stop_all(children, stop_grace_s + KILL_MARGIN_S)
    return 0 if stopped_cleanly else 1


def _stop_all(children: list[Child], timeout_s: float) -> bool:
    """SIGTERM every child still running (each flushes and acks), wait ``timeout_s`` for them,
    kill those still running; whether every child that was running stopped cleanly."""
    running = [child for child in children if child.process.exitcode is None]
    for child in running:
        child.process.terminate()
    deadline = time.monotonic() + timeout_s
    clean = True
    for child in running:
        child.process.join(timeout=max(0.1, deadline - time.monotonic()))
        if child.process.exitcode is None:
            logger.error("worker %d did not stop in %g s; killing it", child.index, timeout_s)
            child.process.kill()
            child.process.join()
        if child.process.exitcode not in CLEAN_STOP:
            logger.error(
                "worker %d exited with %s while stopping", child.index, child.process.exitcode
            )
            clean = False
    for child in children:
        child.process.close()
    return clean
