"""`pantau demo`: the local stack, schema, fleet, simulator and ingest at once."""

from __future__ import annotations

import argparse

from cli.commands.options import positive


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="everything at once: stack, schema, fleet, simulator and ingest",
        description="Bring the local stack up, migrate, load the Jepara fleet, then run the "
        "simulator and an ingest worker, printing a live summary. Ctrl-C stops what it started.",
    )
    demo.add_argument(
        "--speed", type=positive, default=60.0, help="simulated seconds per second (default 60)"
    )
    demo.add_argument("--duration", type=positive, help="stop after this many seconds")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo(speed=args.speed, duration_s=args.duration)
