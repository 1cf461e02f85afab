"""`pantau detect`: the anomaly detectors over a CSV series."""

from __future__ import annotations

import argparse
import logging
import sys

from pantau.errors import ConfigError

logger = logging.getLogger("pantau")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    detect = sub.add_parser(
        "detect",
        help="run the anomaly detectors over a CSV series",
        description="Run the streaming detectors the ingest worker uses over one series, read "
        "from a CSV file with 'timestamp' and 'value' columns (timestamps ISO 8601 with an "
        "offset, or Unix seconds/ms), and write timestamp,value,anomaly_score,is_anomaly,kind. "
        "Scores are in [0, 1]; 0.5 is each detector's threshold (see README, 'Anomaly "
        "detection').",
    )
    detect.add_argument("file", help="CSV file, or - for standard input")
    detect.add_argument("--metric", help="use the rules of this metric (e.g. pm25_ugm3)")
    detect.add_argument("--output", "-o", help="write to FILE instead of standard output")
    detect.set_defaults(func=cmd_detect)


def cmd_detect(args: argparse.Namespace) -> int:
    import contextlib

    from monitor.detectcsv import run

    with contextlib.ExitStack() as files:
        try:
            src = sys.stdin if args.file == "-" else files.enter_context(open(args.file))
        except OSError as exc:
            raise ConfigError(
                f"cannot read {args.file}: {exc.strerror}", "give a readable CSV file"
            ) from None
        try:
            out = (
                sys.stdout
                if args.output in (None, "-")
                else files.enter_context(open(args.output, "w"))
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot write {args.output}: {exc.strerror}", "choose a writable path"
            ) from None
        rows, anomalous = run(src, args.file, out, args.metric)
    logger.info("%d readings, %d anomalous", rows, anomalous)
    return 0
