"""`pantau demo`: the local stack, schema, fleet, history, then ingest, simulator, job and API
live, at once."""

from __future__ import annotations

import argparse

from cli.commands.options import positive

DESCRIPTION = """\
Bring the local stack up (unless it runs), migrate, load the Jepara fleet, then:
  1. history: DAYS of simulated traffic published as hourly gateway batches, stored by
     `pantau ingest`, and `pantau process --at` the end of each day (the air quality index
     needs 24 hours, the tourism office's "typical hour of the week" 4 weeks);
  2. live: `pantau simulate` from where history ended, `pantau process` and `pantau api`,
     with a live line; it says what each user should open and checks each user's views
     through the API.
A rerun continues from the newest stored reading: history already stored is not sent again.
Ctrl-C (or SIGTERM, SIGHUP) stops everything it started, the stack too if it started it.
`make clean` removes the state (PANTAU_STATE_DIR, default .pantau/) to start afresh."""


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port")
    return int(text)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="everything at once: stack, schema, fleet, history, then live with the API",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--history",
        type=non_negative,
        metavar="DAYS",
        help="days of history before live (default: 7 x PANTAU_PROCESS_TYPICAL_WEEKS + 1, "
        "i.e. 29: four weeks behind 'typical' and the day before them; 0: none)",
    )
    demo.add_argument(
        "--speed",
        type=positive,
        default=1.0,
        help="live at N simulated seconds per second (default 1); with N > 1 live starts in "
        "the past, (N - 1) x --duration (or a day) before now, and runs in real time once it "
        "reaches the present",
    )
    demo.add_argument(
        "--duration", type=positive, metavar="S", help="stop after S seconds of live running"
    )
    demo.add_argument(
        "--api-port",
        type=port,
        help="port of the API (default PANTAU_API_PORT, else 8080 if free, else a free one)",
    )
    demo.add_argument(
        "--metrics-port",
        type=port,
        help="port of ingest's Prometheus metrics (default PANTAU_INGEST_METRICS_PORT, else "
        "9464 if free, else a free one)",
    )
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    import logging

    from cli.demo import Options, run_demo

    if not args.verbose:  # the demo says what happens; the services log to their own files
        logging.getLogger().setLevel(logging.WARNING)

    history = args.history
    if history is None:
        from monitor.settings import ProcessSettings

        history = 7 * ProcessSettings().typical_weeks + 1
    return run_demo(
        Options(
            history_days=history,
            speed=args.speed,
            duration_s=args.duration,
            api_port=args.api_port,
            metrics_port=args.metrics_port,
        )
    )
