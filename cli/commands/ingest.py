"""`pantau ingest`: the ingest worker, or a supervisor of several."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from typing import TYPE_CHECKING

from cli.commands.service import startup_checks, stop_grace_s, stop_on_signals

if TYPE_CHECKING:
    from ingest.settings import IngestSettings
    from ingest.worker import Worker

logger = logging.getLogger("pantau")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = sub.add_parser(
        "ingest",
        help="subscribe to telemetry and store it",
        description="Run an ingest worker: subscribe to <root>/+/+ at QoS 1 with a persistent "
        "session, validate, store in TimescaleDB, acknowledge after commit. Stop with Ctrl-C or "
        "SIGTERM (it flushes and acknowledges first; still running PANTAU_STOP_GRACE_S seconds "
        "later, it prints every thread's stack and exits 1); SIGUSR1 prints every thread's stack. "
        "Settings: PANTAU_INGEST_* variables (PANTAU_INGEST_METRICS_PORT serves Prometheus "
        "metrics, PANTAU_INGEST_MQTT_VERSION=3.1.1 is faster with this client).",
    )
    ingest.add_argument(
        "--client-id", help="MQTT client id (default pantau-ingest); one per worker"
    )
    ingest.add_argument(
        "--processes",
        type=int,
        help="run N worker processes on a shared subscription (client ids <id>-1 ... <id>-N)",
    )
    ingest.add_argument("--shared-group", help="join $share/<group>/ to split load across workers")
    ingest.set_defaults(func=cmd_ingest)


def build_worker(settings: IngestSettings, worker_class: type[Worker] | None = None) -> Worker:
    """A worker (of ``worker_class``, default :class:`ingest.worker.Worker`) on the database and
    broker of ``settings``: new connections as its client id, its MQTT session client."""
    from ingest.mqttclient import session_client
    from ingest.worker import Worker
    from pantau.db.connect import connect

    url = settings.resolved_database_url()
    return (worker_class or Worker)(
        settings,
        connect_db=functools.partial(connect, url, application_name=settings.client_id),
        make_client=functools.partial(session_client, settings),
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.settings import IngestSettings

    overrides: dict[str, object] = {"client_id": args.client_id} if args.client_id else {}
    if args.shared_group:
        overrides["shared_group"] = args.shared_group
    if args.processes is not None:
        overrides["processes"] = args.processes
    from cli.settings import load

    settings = load(IngestSettings, **overrides)
    logger.info("ingest settings: %s", settings.masked())
    grace_s = stop_grace_s()
    startup_checks(settings)
    if settings.processes > 1:
        from ingest.supervisor import supervise, supervisor_grace_s

        target = functools.partial(worker_process, verbose=args.verbose, grace_s=grace_s)
        stop = stop_on_signals(supervisor_grace_s(grace_s))
        return supervise(settings, stop, target, stop_grace_s=grace_s)
    build_worker(settings).run(stop_on_signals(grace_s))
    return 0


def worker_process(settings: IngestSettings, verbose: bool, grace_s: float) -> None:
    """What each child of `pantau ingest --processes N` runs, in a process of its own: one
    worker with ``settings``, logging, signals and errors handled as `pantau ingest` does, its
    stop bounded by ``grace_s``."""
    from cli.main import run_reporting_errors, setup_logging

    setup_logging(verbose)
    stop = stop_on_signals(grace_s)

    def run() -> int:
        build_worker(settings).run(stop)
        return 0

    sys.exit(run_reporting_errors("ingest", run))
