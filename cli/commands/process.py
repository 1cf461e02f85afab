"""`pantau process`: offline sensors, alarms, waste, air (ISPU) and tourism figures."""

from __future__ import annotations

import argparse
import logging
import threading

from cli.commands.options import parse_time, positive
from cli.commands.service import startup_checks, stop_on_signals

logger = logging.getLogger("pantau")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    process = sub.add_parser(
        "process",
        help="offline sensors, alarms, waste, air (ISPU) and tourism figures, on a schedule",
        description="Every PANTAU_PROCESS_INTERVAL_S seconds: mark sensors offline (silent for "
        "k x their interval, or last will), update waste bin status and emptying events, hourly "
        "ISPU per air station, tourist-zone occupancy and density, then open and clear alarms. "
        "Listens to <root>/<kind>/<sensor_id>/status for last wills. One instance does the work "
        "at a time (an advisory lock). Settings: PANTAU_PROCESS_* variables.",
    )
    process.add_argument("--once", action="store_true", help="run once, print a report, exit")
    process.add_argument(
        "--at",
        help="run once as of this time (ISO 8601 with offset), e.g. over backfilled history",
    )
    process.add_argument("--interval", type=positive, help="seconds between runs (default 30)")
    process.set_defaults(func=cmd_process)


def cmd_process(args: argparse.Namespace) -> int:
    import json

    from monitor.job import run
    from monitor.settings import ProcessSettings
    from monitor.status import StatusListener

    overrides: dict[str, object] = {}
    if args.interval is not None:
        overrides["interval_s"] = args.interval
    from cli.settings import load

    settings = load(ProcessSettings, **overrides)
    logger.info("process settings: %s", settings.masked())
    startup_checks(settings)
    at_ms = None if args.at is None else parse_time(args.at, "--at") * 1000
    if args.once or at_ms is not None:
        report = run(settings, threading.Event(), once=True, at_ms=at_ms)
        print(json.dumps(report, indent=2))
        return 0
    listener = StatusListener(settings.resolved_mqtt(), settings.topic_root, settings.client_id)
    listener.start()
    try:
        run(settings, stop_on_signals(), wills=listener.take)
    finally:
        listener.stop()
    return 0
