"""The actions and options of `pantau dashboards` (its command: cli/commands/dashboards.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_actions(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    """build, check, push and db-user under ``parser``, each running ``func``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="write the provisioning files")
    build.add_argument("--check", action="store_true", help="only fail if a file differs")
    build.add_argument(
        "--dir", type=Path, help="provisioning root (default: dashboards/provisioning)"
    )
    check = actions.add_parser("check", help="run every panel and alert query on the database")
    check.add_argument(
        "--at",
        help="check each dashboard's default range (Sampah 7 days, Kualitas udara 3 days, "
        "Pariwisata today, Operasional 6 hours) ending at this time, ISO 8601 with offset, "
        "e.g. over backfilled history (default: now)",
    )
    check.add_argument("--from", dest="start", help="start of one range for all (with --to)")
    check.add_argument("--to", dest="end", help="end of that range (with --from)")
    check.add_argument(
        "--role",
        help="database role to run as (default PANTAU_GRAFANA_ROLE, pantau_grafana; none: "
        "the login itself)",
    )
    push = actions.add_parser("push", help="upload everything to a running Grafana, by uid")
    push.add_argument("--url", help="Grafana's URL (default PANTAU_GRAFANA_URL)")
    push.add_argument(
        "--token",
        help="service account token (default PANTAU_GRAFANA_TOKEN, which keeps it out of the "
        "process list)",
    )
    push.add_argument(
        "--no-datasource", action="store_true", help="leave Grafana's data source as it is"
    )
    actions.add_parser(
        "db-user",
        help="create or update Grafana's read-only database login (PANTAU_GRAFANA_DB_USER, "
        "PANTAU_GRAFANA_DB_PASSWORD)",
    )
    parser.set_defaults(func=func)
