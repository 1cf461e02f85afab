"""`pantau dashboards`: build, check and push the Grafana dashboards; Grafana's database login."""

from __future__ import annotations

import argparse
import logging
import time

from cli.commands.options import parse_time
from pantau.errors import ConfigError

logger = logging.getLogger("pantau")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dash = sub.add_parser(
        "dashboards",
        help="Grafana: build the provisioning files, check every query, push to a Grafana",
        description="Grafana dashboards (Sampah, Kualitas udara, Pariwisata, Operasional) and "
        "alert rules, built from dashboards/*.py. `build` writes dashboards/provisioning/ "
        "(what docker-compose mounts into Grafana); `check` runs every panel, variable and "
        "alert query the way Grafana expands it, as the read-only role pantau_grafana; `push` "
        "uploads folder, data source, dashboards and alert rules to a running Grafana by uid; "
        "`db-user` creates or updates Grafana's read-only database login. Settings: "
        "PANTAU_GRAFANA_* variables.",
    )
    from dashboards.commandline import add_actions

    add_actions(dash, cmd_dashboards)


def cmd_dashboards(args: argparse.Namespace) -> int:
    from dashboards import provisioning
    from dashboards.settings import GrafanaSettings

    if args.action == "build":
        provisioning.build(args.dir or provisioning.ROOT, check=args.check, write=print)
        return 0
    from cli.settings import load

    settings = load(GrafanaSettings)
    logger.info("dashboards settings: %s", settings.masked())
    if args.action == "push":
        from grafana_client.api import GrafanaApi

        from dashboards.alerts import provisioning as alert_rules
        from dashboards.push import push_all

        url, token = args.url or settings.url, args.token or settings.token.get_secret_value()
        if not token:
            raise ConfigError(
                "no Grafana token given",
                "pass --token or set PANTAU_GRAFANA_TOKEN to the token of a service account "
                "with the Admin role (Grafana: Administration > Service accounts)",
            )
        datasource = None
        if not args.no_datasource:
            host, name = settings.db_host_and_name()
            datasource = provisioning.datasource(
                url=host, database=name, user=settings.db_user, sslmode=settings.db_sslmode,
                password=settings.db_password.get_secret_value() or None,
            )  # fmt: skip
        changes = push_all(
            GrafanaApi.from_url(url, credential=token, timeout=30), url,
            datasource=datasource, dashboards=[b.json() for b in provisioning.boards()],
            groups=alert_rules()["groups"],
        )  # fmt: skip
        for change in changes:
            print(change)
        return 0
    from dashboards.check import act_as, report, time_options
    from dashboards.dbuser import ensure_login
    from pantau.db.connect import connect
    from pantau.db.migrate import require_current

    def ms(text: str | None, option: str) -> int | None:
        return None if text is None else parse_time(text, option) * 1000

    if args.action == "check":
        to_ms, explicit = time_options(
            ms(args.at, "--at"), ms(args.start, "--from"), ms(args.end, "--to"),
            int(time.time() * 1000),
        )  # fmt: skip
    with connect(settings.resolved_database_url(), autocommit=True,
                 application_name="pantau-dashboards") as conn:  # fmt: skip
        require_current(conn)
        if args.action == "db-user":
            with conn.transaction():
                created = ensure_login(conn, settings.db_user, settings.password(), settings.role)
            print(f"{'created' if created else 'updated'} login {settings.db_user}: member of "
                  f"{settings.role}, read-only")  # fmt: skip
            return 0
        act_as(conn, args.role or settings.role)
        report(conn, provisioning.boards(), to_ms=to_ms, explicit=explicit, write=print)
    return 0
