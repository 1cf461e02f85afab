"""The `pantau` command. Each subcommand builds its settings and adapters in its module of
cli/commands/ and nowhere else; this one builds the parser from them and runs the command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from cli.commands import (
    api,
    dashboards,
    db,
    demo,
    detect,
    ingest,
    process,
    registry,
    simulate,
    stack,
)
from pantau.errors import ConfigError, PantauError

DESCRIPTION = """\
Pantau: IoT sensor ingestion and monitoring for smart-city programs (Kabupaten Jepara).

Typical first run on a development machine:
  pantau stack up          start a private Mosquitto + PostgreSQL/TimescaleDB
                           (installs them if missing)
  pantau db migrate        create or update the schema
  pantau registry load     load the Jepara fleet (zones and sensors; each sensor gets a
                           broker account allowed its own topics only)
  pantau ingest &          subscribe and store readings
  pantau simulate          publish simulated sensor readings
  pantau process           offline sensors, alarms, waste, air (ISPU) and tourism figures
  pantau api               the read API (docs at /docs); `pantau api key create` makes keys
or all of that at once:  pantau demo

Connection settings come from PANTAU_DATABASE_URL and PANTAU_MQTT_URL, or, when those are not
set, from the local stack started by `pantau stack up` (its state is in PANTAU_STATE_DIR,
default .pantau/): each command then connects with its own login and broker account.
"""


def setup_logging(verbose: bool) -> None:
    """The command's log: to stderr, INFO (DEBUG with ``verbose``)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("psycopg").setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pantau", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # in the order `pantau --help` lists them
    for area in (stack, db, registry, ingest, simulate, process, api, dashboards, detect, demo):
        area.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    return run_reporting_errors(args.command, lambda: func(args))


def run_reporting_errors(command: str, func: Callable[[], int]) -> int:
    """``func()``'s exit code; a PantauError, an invalid setting or a refused privilege is
    printed as ``pantau <command>: error: ...`` with its fix, and becomes its exit code."""
    try:
        return func()
    except PantauError as exc:
        print(f"pantau {command}: error: {exc.problem}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return exc.exit_code
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            print(f"pantau {command}: error: setting {where}: {error['msg']}", file=sys.stderr)
        print(
            "  fix: correct the PANTAU_* environment variable or option named above "
            "(see the configuration table in README.md)",
            file=sys.stderr,
        )
        return ConfigError.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        import psycopg

        if not isinstance(exc, psycopg.errors.InsufficientPrivilege):
            raise
        first = str(exc).strip().splitlines()[0]
        print(f"pantau {command}: error: the database refused: {first}", file=sys.stderr)
        print(
            "  fix: run this with the login made for it (README, security: migrations, registry "
            "and keys as pantau_owner; ingest and process as pantau_ingest_user; the API as "
            "pantau_api_user), or check that `pantau db migrate` ran as the owner",
            file=sys.stderr,
        )
        return ConfigError.exit_code


if __name__ == "__main__":
    sys.exit(main())
