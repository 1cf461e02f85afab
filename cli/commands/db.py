"""`pantau db`: the schema's migrations, and the roles and logins (bootstrap)."""

from __future__ import annotations

import argparse

from pantau.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser(
        "db",
        help="database schema",
        description="Apply (migrate) or list (status) the versioned schema migrations, or "
        "create the roles and logins with a superuser's URL (bootstrap: PANTAU_DB_ADMIN_URL and "
        "PANTAU_DB_{OWNER,INGEST,API,GRAFANA}_PASSWORD; the local stack does it at `stack up`).",
    )
    db.add_argument("action", choices=["migrate", "status", "bootstrap"])
    db.set_defaults(func=cmd_db)


def cmd_db(args: argparse.Namespace) -> int:
    from pantau.db.migrate import migrate, pending
    from pantau.settings import CommonSettings

    if args.action == "bootstrap":
        return _db_bootstrap()
    from cli.settings import load

    url = load(CommonSettings).resolved_database_url()
    if args.action == "migrate":
        ran = migrate(url)
        if ran:
            for m in ran:
                print(f"applied {m.version:04d}_{m.name}")
        else:
            print("schema is up to date")
    else:
        todo = pending(url)
        print(
            "pending: " + ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
            if todo
            else "schema is up to date"
        )
    return 0


def _db_bootstrap() -> int:
    from cli.settings import load
    from ops.settings import BootstrapSettings
    from pantau.db.roles import bootstrap

    settings = load(BootstrapSettings)
    if settings.admin_url is None:
        raise ConfigError(
            "PANTAU_DB_ADMIN_URL is not set",
            "set it to a superuser's URL, e.g. postgresql://postgres:<password>@host:5432/postgres"
            " (the local stack bootstraps itself at `pantau stack up`)",
        )
    passwords = {
        service: secret.get_secret_value()
        for service, secret in (
            ("owner", settings.owner_password),
            ("ingest", settings.ingest_password),
            ("api", settings.api_password),
            ("grafana", settings.grafana_password),
        )
    }
    missing = [s for s, p in passwords.items() if not p]
    if missing:
        names = ", ".join(f"PANTAU_DB_{s.upper()}_PASSWORD" for s in missing)
        raise ConfigError(f"{names} not set", "give every login a password (.env.example)")
    settings.refuse_placeholders()
    for line in bootstrap(settings.admin_url.get_secret_value(), settings.name, passwords):
        print(line)
    return 0
