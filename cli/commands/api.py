"""`pantau api`: serve the read API, or create, revoke and list its keys."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from cli.commands.service import startup_checks
from pantau.errors import ConfigError

if TYPE_CHECKING:
    from api.settings import ApiSettings

logger = logging.getLogger("pantau")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = sub.add_parser(
        "api",
        help="serve the read API (FastAPI), or manage its keys",
        description="Serve the API on PANTAU_API_HOST:PANTAU_API_PORT (docs at /docs), or, "
        "with `key`, create, revoke and list API keys. Keys are shown once and stored hashed.",
    )
    api_sub = api.add_subparsers(dest="api_action", metavar="ACTION")
    key = api_sub.add_parser("key", help="create, revoke or list API keys")
    key_sub = key.add_subparsers(dest="key_action", required=True, metavar="KEY_ACTION")
    create = key_sub.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. 'DLH field app'")
    create.add_argument(
        "--role", required=True, choices=["dlh", "tourism", "engineer", "admin"],
        help="dlh: waste and air; tourism: tourism; engineer: sensors; admin: everything",
    )  # fmt: skip
    revoke = key_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", help="the 12 hex digits after pantau_ (see `list`)")
    key_sub.add_parser("list", help="list keys (ids, roles, state; never the secrets)")
    api.set_defaults(func=cmd_api)


def cmd_api(args: argparse.Namespace) -> int:
    from api.settings import ApiSettings
    from cli.settings import load

    settings = load(ApiSettings)
    if getattr(args, "key_action", None):
        return _api_key(args, settings)
    import uvicorn

    from api.app import create_app
    from pantau.db.connect import connect
    from pantau.db.migrate import require_current

    logger.info("api settings: %s", settings.masked())
    startup_checks(settings)
    with connect(settings.resolved_database_url(), application_name="pantau-api") as conn:
        require_current(conn)  # fail fast with a fix, rather than 503 on every request
    print(f"Pantau API on http://{settings.host}:{settings.port}/docs", flush=True)
    if settings.workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    else:  # each worker process builds the app from the same environment
        uvicorn.run(
            "api.app:app_from_environment", factory=True, workers=settings.workers,
            host=settings.host, port=settings.port, log_level="info",
        )  # fmt: skip
    return 0


def _api_key(args: argparse.Namespace, settings: ApiSettings) -> int:
    from api import apikeys
    from pantau.db.connect import connect
    from pantau.db.migrate import require_current

    with connect(settings.resolved_database_url(), application_name="pantau-api-keys") as conn:
        require_current(conn)
        if args.key_action == "create":
            new = apikeys.create(conn, args.name, args.role)
            conn.commit()
            print(new.key)
            logger.info(
                "created key %s (%s, role %s); it is shown once", new.key_id, args.name, args.role
            )
        elif args.key_action == "revoke":
            if not apikeys.revoke(conn, args.key_id):
                raise ConfigError(
                    f"no active API key {args.key_id!r}", "see `pantau api key list` for the ids"
                )
            conn.commit()
            print(f"revoked {args.key_id}")
        else:
            for row in apikeys.listing(conn):
                state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
                print(f"{row.key_id}  {row.role:<8}  {state:<18}  last used {used:<16}  {row.name}")
    return 0
