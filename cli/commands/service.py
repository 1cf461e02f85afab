"""What the long-running commands share: their start-up checks, stopping on a signal, and a
bound on how long stopping may take.

A stop that hangs must be seen and diagnosed, not waited on: once SIGTERM or SIGINT has asked a
process to stop, a process still running ``PANTAU_STOP_GRACE_S`` seconds later has the stack of
every thread written to its log (stderr) by :mod:`faulthandler` and exits with 1. The watchdog
is faulthandler's own C thread, so it fires even when Python code holds the GIL or a lock; an
exit before the bound cancels it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from types import FrameType

    import uvicorn

    from pantau.settings import CommonSettings

logger = logging.getLogger("pantau")

STOP_GRACE_S = 30.0  # default of PANTAU_STOP_GRACE_S
KILL_MARGIN_S = 5.0  # after a child's bound: time for its stack dump to be written and reaped
STOPPED_BY_BOUND = 1  # faulthandler's exit code when the bound fires


class StopSettings(BaseSettings):
    """How long a long-running command may take to stop (``PANTAU_STOP_GRACE_S``)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    grace_s: float = Field(
        STOP_GRACE_S,
        gt=0,
        allow_inf_nan=False,
        validation_alias="PANTAU_STOP_GRACE_S",
        description="Seconds a long-running command may take to stop after SIGTERM/SIGINT; "
        "then every thread's stack goes to its log and it exits 1.",
    )


def stop_grace_s() -> float:
    """``PANTAU_STOP_GRACE_S`` (default :data:`STOP_GRACE_S`), read from the environment now."""
    return StopSettings().grace_s


def startup_checks(settings: CommonSettings) -> None:
    """Outside development: no placeholder secret, no superuser database login."""
    from pantau.db.roles import check_runtime_login

    settings.refuse_placeholders()
    if settings.db_service != "owner":
        check_runtime_login(settings.resolved_database_url(), settings.environment)


class StopBound:
    """The bound on one process's stop, armed by the first request to stop.

    Armed, it dumps every thread's stack to stderr and exits the process with
    :data:`STOPPED_BY_BOUND` if the process is still running ``grace_s`` seconds later.
    """

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.armed = False

    def arm(self, why: str) -> None:
        """Start the countdown (once: a second signal does not extend it)."""
        if self.armed:
            return
        self.armed = True
        faulthandler.dump_traceback_later(self.grace_s, exit=True, file=sys.stderr)
        logger.info(
            "%s: stopping; still running in %g s, every thread's stack is logged and it exits %d",
            why,
            self.grace_s,
            STOPPED_BY_BOUND,
        )


def stop_on_signals(grace_s: float | None = None) -> threading.Event:
    """An event set by SIGINT/SIGTERM, which also arm the stop bound: ``grace_s`` seconds
    (default ``PANTAU_STOP_GRACE_S``) later a process still running dumps every thread's
    stack to stderr and exits 1. SIGUSR1 dumps every thread's stack at any time."""
    bound = StopBound(stop_grace_s() if grace_s is None else grace_s)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        bound.arm(f"received {signal.Signals(signum).name}")
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def serve_bounded(config: uvicorn.Config, grace_s: float | None = None) -> int:
    """Run uvicorn with ``config`` as :func:`uvicorn.run` does, its stop bounded like the other
    commands'; returns the exit code.

    uvicorn handles SIGINT/SIGTERM itself and, by default, waits for every open connection to
    finish before it exits, for as long as that takes. Here the first signal also arms the
    bound. With several workers the supervising process allows them ``grace_s``, then makes a
    worker that is still running dump its stacks (SIGABRT, with faulthandler enabled in the
    workers) and kills it, and exits 1; its own bound comes :data:`KILL_MARGIN_S` twice later.
    """
    from uvicorn.config import STARTUP_FAILURE

    grace = stop_grace_s() if grace_s is None else grace_s
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if config.workers > 1:
        os.environ.setdefault("PYTHONFAULTHANDLER", "1")  # the workers, spawned, inherit it
        return _serve_workers(config, grace)
    server = _bounded_server(config, StopBound(grace))
    # uvicorn raises the SIGINT it handled again once it has stopped: KeyboardInterrupt here.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else STARTUP_FAILURE


def _bounded_server(config: uvicorn.Config, bound: StopBound) -> uvicorn.Server:
    import uvicorn

    class BoundedServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            bound.arm(f"received {signal.Signals(sig).name}")
            super().handle_exit(sig, frame)

    return BoundedServer(config)


def _serve_workers(config: uvicorn.Config, grace_s: float) -> int:
    """uvicorn's supervisor of ``config.workers`` processes, bounded; returns the exit code."""
    from uvicorn.supervisors import Multiprocess

    bound = StopBound(grace_s + 2 * KILL_MARGIN_S)

    class BoundedMultiprocess(Multiprocess):
        hung = 0

        def handle_int(self) -> None:
            bound.arm("received SIGINT")
            super().handle_int()

        def handle_term(self) -> None:
            bound.arm("received SIGTERM")
            super().handle_term()

        def join_all(self) -> None:
            deadline = time.monotonic() + grace_s
            for worker in self.processes:
                child = worker.process
                child.join(timeout=max(0.0, deadline - time.monotonic()))
                if child.exitcode is not None or child.pid is None:
                    continue
                self.hung += 1
                logger.error(
                    "API worker %d did not stop within %g s; its stacks follow", child.pid, grace_s
                )
                os.kill(child.pid, signal.SIGABRT)
                child.join(timeout=KILL_MARGIN_S)
                if child.exitcode is None:
                    child.kill()
                    child.join()

    supervisor = BoundedMultiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    return STOPPED_BY_BOUND if supervisor.hung else 0
