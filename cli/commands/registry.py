"""`pantau registry`: load a fleet file; the broker's accounts of the registered sensors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pantau.errors import ConfigError

if TYPE_CHECKING:
    from pantau.settings import CommonSettings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    registry = sub.add_parser(
        "registry",
        help="zones and sensors",
        description="Upsert the zones and sensors of a fleet file; sensors missing from the file "
        "are marked inactive (their history stays).",
    )
    registry_sub = registry.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = registry_sub.add_parser("load", help="load a fleet file (default: the Jepara fleet)")
    load.add_argument("file", nargs="?", type=Path, help="fleet TOML file")
    load.set_defaults(func=cmd_registry)
    creds = registry_sub.add_parser(
        "credentials",
        help="the broker's password and ACL files for every registered sensor",
        description="Give every active sensor a broker account that may publish only its own "
        "topics, and write Mosquitto's password file (hashed) and ACL. Without --out: the local "
        "stack's broker (passwords kept in PANTAU_STATE_DIR/secrets.json), reloaded at once. With "
        "--out DIR: passwd, acl and devices.csv (the devices' passwords, mode 0600) for a "
        "deployment; the service accounts' passwords come from PANTAU_MQTT_INGEST_PASSWORD, "
        "PANTAU_MQTT_PROCESS_PASSWORD and PANTAU_MQTT_SIMULATOR_PASSWORD. Devices keep their "
        "passwords unless --rotate.",
    )
    creds.add_argument("--out", type=Path, help="write the files to this directory")
    creds.add_argument("--rotate", action="store_true", help="give every device a new password")
    creds.set_defaults(func=cmd_registry)


def cmd_registry(args: argparse.Namespace) -> int:
    from pantau.db.connect import connect
    from pantau.registry.fleet import load_fleet
    from pantau.registry.load import load_into
    from pantau.settings import CommonSettings

    if args.action == "credentials":
        return _registry_credentials(args)
    from cli.settings import load

    settings = load(CommonSettings)
    fleet = load_fleet(args.file)
    with connect(settings.resolved_database_url()) as conn:
        result = load_into(conn, fleet)
    print(
        f"fleet {fleet.name}: {result.zones} zones, {result.sensors} sensors loaded"
        + (f", {result.deactivated} deactivated" if result.deactivated else "")
    )
    if settings.database_url is None:  # the local stack: its broker learns the new devices
        print("broker: " + _local_credentials(settings, rotate=False))
    return 0


def _local_credentials(settings: CommonSettings, *, rotate: bool) -> str:
    from ops.credentials import registered_devices
    from ops.settings import StackSettings
    from ops.stack.local import LocalStack
    from pantau.db.connect import connect

    with connect(settings.resolved_database_url()) as conn:
        devices = registered_devices(conn)
    local = LocalStack(StackSettings(state_dir=settings.state_dir))
    return local.write_devices(settings.topic_root, devices, rotate=rotate)


def _registry_credentials(args: argparse.Namespace) -> int:
    from cli.settings import load
    from ops import credentials, mqttauth
    from ops.settings import BrokerAccountSettings
    from pantau.db.connect import connect

    settings = load(BrokerAccountSettings)
    if args.out is None:
        print("broker: " + _local_credentials(settings, rotate=args.rotate))
        return 0
    services = {
        mqttauth.INGEST: settings.ingest_password.get_secret_value(),
        mqttauth.PROCESS: settings.process_password.get_secret_value(),
        mqttauth.SIMULATOR: settings.simulator_password.get_secret_value(),
    }
    for account, variable in (
        (mqttauth.INGEST, "PANTAU_MQTT_INGEST_PASSWORD"),
        (mqttauth.PROCESS, "PANTAU_MQTT_PROCESS_PASSWORD"),
    ):
        if not services[account]:
            raise ConfigError(
                f"{variable} is not set",
                f"set it to the password in {account}'s PANTAU_MQTT_URL (.env.example)",
            )
    settings.refuse_placeholders()
    services = {name: pw for name, pw in services.items() if pw}
    with connect(settings.resolved_database_url()) as conn:
        devices = credentials.registered_devices(conn)
    out: Path = args.out
    previous = credentials.read_devices_csv(out / credentials.DEVICES_CSV)
    generated = credentials.generate(
        settings.topic_root, devices, previous, services, rotate=args.rotate
    )
    credentials.write_broker_files(out, generated.accounts)
    credentials.write_private(
        out / credentials.DEVICES_CSV,
        credentials.devices_csv(devices, generated.device_passwords, settings.topic_root),
    )
    print(
        f"wrote {out / credentials.PASSWD}, {out / credentials.ACL} and "
        f"{out / credentials.DEVICES_CSV} (mode 0600: the devices' passwords, keep it out of "
        f"version control): {len(devices)} devices ({generated.new_devices} new, "
        f"{generated.removed_devices} removed), {len(services)} service accounts; "
        "reload the broker (SIGHUP) to apply"
    )
    return 0
