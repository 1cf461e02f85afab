"""What the long-running commands share: their start-up checks and stopping on a signal."""

from __future__ import annotations

import faulthandler
import logging
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pantau.settings import CommonSettings

logger = logging.getLogger("pantau")


def startup_checks(settings: CommonSettings) -> None:
    """Outside development: no placeholder secret, no superuser database login."""
    from pantau.db.roles import check_runtime_login

    settings.refuse_placeholders()
    if settings.db_service != "owner":
        check_runtime_login(settings.resolved_database_url(), settings.environment)


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT/SIGTERM; SIGUSR1 dumps every thread's stack to stderr."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
