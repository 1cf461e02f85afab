"""`pantau api`: serve the read API; `pantau api key create | list | revoke`: its keys."""

from __future__ import annotations

import argparse
import logging
import shlex
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from cli.commands.service import serve_bounded, startup_checks
from pantau.errors import ConfigError

if TYPE_CHECKING:
    from api.settings import ApiKeySettings

logger = logging.getLogger("pantau")
ROLES = ("dlh", "tourism", "engineer", "admin")  # api.apikeys.ROLES, without importing the API
OWNER = "pantau_owner"  # pantau.db.roles.OWNER

USAGE = """\
%(prog)s [-h]
       %(prog)s key {create,list,revoke} ..."""
DESCRIPTION = """\
With no action: serve the read API on PANTAU_API_HOST:PANTAU_API_PORT (docs at /docs) until
Ctrl-C, connecting as PANTAU_DATABASE_URL or, on the local stack, as the API's own login.

With `key`: create, list or revoke API keys. A key is printed once and stored hashed; its role
(dlh, tourism, engineer, admin) decides what it may read. Keys are written by the database
owner: on the local stack (PANTAU_DATABASE_URL not set) these commands connect as the owner by
themselves; elsewhere set PANTAU_DATABASE_URL to the owner's login (pantau_owner)."""
EPILOG = """\
examples:
  pantau api                                               serve the API
  pantau api key create --name "DLH field app" --role dlh  print a new key (once)
  pantau api key list                                      ids, roles, state, last use
  pantau api key revoke 0123456789ab                       the key stops working within 10 s"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = sub.add_parser(
        "api",
        help="serve the read API (FastAPI); `api key ...`: manage its keys",
        usage=USAGE,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    api_sub = api.add_subparsers(
        dest="api_action", title="actions (optional; with none, the API is served)", prog=api.prog
    )
    key = api_sub.add_parser(
        "key",
        help="create, list or revoke API keys (as the database owner)",
        description="Create, list or revoke API keys. On the local stack these connect as the "
        "database owner; elsewhere PANTAU_DATABASE_URL must be the owner's (pantau_owner).",
    )
    key_sub = key.add_subparsers(dest="key_action", required=True, metavar="{create,list,revoke}")
    create = key_sub.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. 'DLH field app'")
    create.add_argument(
        "--role", required=True, choices=ROLES,
        help="dlh: waste, air and their alarms; tourism: tourist zones and crowding alarms; "
        "engineer: sensors, readings, anomalies, rejects and sensor alarms; admin: everything",
    )  # fmt: skip
    key_sub.add_parser("list", help="list keys (ids, roles, state; never the secrets)")
    revoke = key_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", help="the 12 hex digits after pantau_ (see `list`)")
    api.set_defaults(func=cmd_api)


def cmd_api(args: argparse.Namespace) -> int:
    from cli.settings import load

    if args.api_action == "key":
        from api.settings import ApiKeySettings

        return _api_key(args, load(ApiKeySettings))
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings
    from pantau.db.connect import connect
    from pantau.db.migrate import require_current

    settings = load(ApiSettings)
    logger.info("api settings: %s", settings.masked())
    startup_checks(settings)
    with connect(settings.resolved_database_url(), application_name="pantau-api") as conn:
        require_current(conn)  # fail fast with a fix, rather than 503 on every request
    print(f"Pantau API on http://{settings.host}:{settings.port}/docs", flush=True)
    if settings.workers == 1:
        config = uvicorn.Config(
            create_app(settings), host=settings.host, port=settings.port, log_level="info"
        )
    else:  # each worker process builds the app from the same environment
        config = uvicorn.Config(
            "api.app:app_from_environment", factory=True, workers=settings.workers,
            host=settings.host, port=settings.port, log_level="info",
        )  # fmt: skip
    return serve_bounded(config)  # uvicorn's own signal handling, its stop bounded


def _api_key(args: argparse.Namespace, settings: ApiKeySettings) -> int:
    import psycopg

    from api import apikeys
    from pantau.db.connect import connect
    from pantau.db.migrate import require_current

    url = settings.resolved_database_url()
    try:
        with connect(url, application_name="pantau-api-keys") as conn:
            require_current(conn)
            if args.key_action == "create":
                new = apikeys.create(conn, args.name, args.role)
                conn.commit()
                print(new.key)
                logger.info(
                    "created key %s (%s, role %s); it is shown once",
                    new.key_id, args.name, args.role,
                )  # fmt: skip
            elif args.key_action == "revoke":
                if not apikeys.revoke(conn, args.key_id):
                    raise ConfigError(
                        f"no active API key {args.key_id!r}",
                        "see `pantau api key list` for the ids",
                    )
                conn.commit()
                print(f"revoked {args.key_id}")
            else:
                for row in apikeys.listing(conn):
                    state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                    used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
                    print(
                        f"{row.key_id}  {row.role:<8}  {state:<18}  last used {used:<16}  "
                        f"{row.name}"
                    )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _refused(exc, url, args) from None
    return 0


def _refused(exc: Exception, url: str, args: argparse.Namespace) -> ConfigError:
    """The database refused a key command: say exactly which command to run instead."""
    first = str(exc).strip().splitlines()[0]
    parts = urlsplit(url)
    command = shlex.join(["pantau", "api", "key", *_key_arguments(args)])
    if parts.username == OWNER:
        fix = (
            f"{OWNER} should own the tables: run `pantau db bootstrap` with PANTAU_DB_ADMIN_URL "
            f"(a superuser's URL; it hands them to {OWNER}), then again: {command}"
        )
    else:
        host = parts.hostname or "localhost"
        netloc = f"{OWNER}:OWNER_PASSWORD@{host}" + (f":{parts.port}" if parts.port else "")
        owner_url = urlunsplit(parts._replace(netloc=netloc))
        fix = (
            f"API keys are written by the database owner, not by {parts.username or 'this login'}"
            f"; run, with {OWNER}'s password: PANTAU_DATABASE_URL={shlex.quote(owner_url)} "
            f"{command}"
        )
    return ConfigError(f"the database refused: {first}", fix)


def _key_arguments(args: argparse.Namespace) -> list[str]:
    if args.key_action == "create":
        return ["create", "--name", args.name, "--role", args.role]
    if args.key_action == "revoke":
        return ["revoke", args.key_id]
    return ["list"]
