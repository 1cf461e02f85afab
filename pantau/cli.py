"""The `pantau` command. Each subcommand builds its settings and adapters here and nowhere else."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from pantau.errors import ConfigError, PantauError

if TYPE_CHECKING:
    from pantau.settings import ApiSettings, CommonSettings, SimulateSettings
    from pantau.stack.local import LocalStack
    from simulators.fleet import FleetSimulator
    from simulators.publish import Sink

logger = logging.getLogger("pantau")

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


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("psycopg").setLevel(logging.WARNING)


# -- stack ----------------------------------------------------------------------------------


def cmd_stack(args: argparse.Namespace) -> int:
    from pantau.settings import StackSettings
    from pantau.stack.local import LocalStack

    stack = LocalStack(StackSettings())
    if args.action == "up":
        from pantau.settings import mask_url

        state = stack.up()
        print(f"mosquitto  pid {state.mosquitto_pid}  {mask_url(state.mqtt_url)}")
        print(f"postgres   pid {state.postgres_pid}  {mask_url(state.database_url)}")
        print(
            "each command connects with its own account (passwords in "
            f"{state.state_dir}/secrets.json, URLs in {state.state_dir}/stack.json)"
        )
        print("\n".join(state.env_lines()))
    elif args.action == "url":
        print(_stack_url(stack, args.service))
    elif args.action == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    else:
        for part, line in stack.status().items():
            print(f"{part:<10} {line}")
    return 0


STACK_URLS = (
    *("owner", "ingest", "process", "api", "grafana", "superuser"),
    *("mqtt-ingest", "mqtt-process", "mqtt-simulator", "mqtt-admin"),
)


def _stack_url(stack: LocalStack, service: str | None) -> str:
    """One of the local stack's URLs, password included (for psql and mosquitto_sub -L)."""
    state = stack.read_state()
    if state is None:
        raise ConfigError(f"no local stack in {stack.state_dir}", "run `pantau stack up`")
    if service is None:
        raise ConfigError("which URL?", "name one of: " + ", ".join(STACK_URLS))
    if service == "superuser":
        return state.database_url
    if service == "mqtt-admin":
        return state.mqtt_url
    if service.startswith("mqtt-"):
        return state.mqtt_urls[service.removeprefix("mqtt-")]
    return state.database_urls[service]


# -- db ---------------------------------------------------------------------------------------


def cmd_db(args: argparse.Namespace) -> int:
    from pantau.db.migrate import migrate, pending
    from pantau.settings import CommonSettings

    if args.action == "bootstrap":
        return _db_bootstrap()
    url = CommonSettings().resolved_database_url()
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
    from pantau.db.roles import bootstrap
    from pantau.settings import BootstrapSettings

    settings = BootstrapSettings()
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


# -- registry -------------------------------------------------------------------------------


def cmd_registry(args: argparse.Namespace) -> int:
    from pantau.db.connect import connect
    from pantau.registry.fleet import load_fleet
    from pantau.registry.load import load_into
    from pantau.settings import CommonSettings

    if args.action == "credentials":
        return _registry_credentials(args)
    settings = CommonSettings()
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
    from pantau.credentials import registered_devices
    from pantau.db.connect import connect
    from pantau.settings import StackSettings
    from pantau.stack.local import LocalStack

    with connect(settings.resolved_database_url()) as conn:
        devices = registered_devices(conn)
    local = LocalStack(StackSettings(state_dir=settings.state_dir))
    return local.write_devices(settings.topic_root, devices, rotate=rotate)


def _registry_credentials(args: argparse.Namespace) -> int:
    from pantau import credentials, mqttauth
    from pantau.db.connect import connect
    from pantau.settings import BrokerAccountSettings

    settings = BrokerAccountSettings()
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


# -- ingest ---------------------------------------------------------------------------------


def _startup_checks(settings: CommonSettings) -> None:
    """Outside development: no placeholder secret, no superuser database login."""
    from pantau.db.roles import check_runtime_login

    settings.refuse_placeholders()
    if settings.db_service != "owner":
        check_runtime_login(settings.resolved_database_url(), settings.environment)


def _stop_on_signals() -> threading.Event:
    """An event set by SIGINT/SIGTERM; SIGUSR1 dumps every thread's stack to stderr."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.worker import Worker
    from pantau.settings import IngestSettings

    overrides: dict[str, object] = {"client_id": args.client_id} if args.client_id else {}
    if args.shared_group:
        overrides["shared_group"] = args.shared_group
    if args.processes is not None:
        overrides["processes"] = args.processes
    settings = IngestSettings(**overrides)  # type: ignore[arg-type]
    logger.info("ingest settings: %s", settings.masked())
    _startup_checks(settings)
    if settings.processes > 1:
        from ingest.supervisor import supervise

        return supervise(settings, _stop_on_signals())
    worker = Worker(settings)
    worker.run(_stop_on_signals())
    return 0


# -- simulate -------------------------------------------------------------------------------


def _parse_time(text: str, option: str) -> int:
    """Unix seconds of an ISO 8601 time with an offset given to ``option``."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time", "write it like 2026-11-28T08:00:00+07:00"
        ) from None
    if parsed.tzinfo is None:
        raise ConfigError(f"{option} {text!r} has no UTC offset", "add one, e.g. +07:00 for WIB")
    return int(parsed.timestamp())


def _parse_start(text: str | None, speed: float) -> int:
    """The simulated start: given, or now; accelerated runs start a day back and catch up."""
    if text is None:
        now = int(datetime.now(UTC).timestamp())
        return now - 86_400 if speed > 1 else now
    return _parse_time(text, "--start")


def _simulate_arguments(simulate: argparse.ArgumentParser) -> None:
    """The options of `pantau simulate`."""
    simulate.add_argument("--fleet", type=Path, help="fleet TOML file (default: Jepara)")
    simulate.add_argument(
        "--sensors",
        type=int,
        help="scale the fleet to N sensors, replicated over its real zones (ids <id>-R<k>)",
    )
    simulate.add_argument(
        "--write-fleet",
        metavar="FILE",
        help="write the (scaled) fleet as a fleet file and exit, for `pantau registry load FILE`",
    )
    mode = simulate.add_mutually_exclusive_group()
    mode.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="live mode: simulated seconds per wall-clock second (default 1)",
    )
    mode.add_argument(
        "--backfill",
        type=_positive,
        metavar="DAYS",
        help="publish DAYS of history up to now (or from --start), with a progress bar",
    )
    mode.add_argument(
        "--load",
        type=_positive,
        metavar="RATE",
        help="publish RATE messages/s (or readings/s, see --load-unit), reporting each second",
    )
    simulate.add_argument(
        "--load-unit",
        choices=["messages", "readings"],
        default="messages",
        help="what --load RATE counts (default messages)",
    )
    simulate.add_argument(
        "--duration",
        type=_positive,
        help="live: stop after this many simulated seconds; load: wall-clock seconds (default 60)",
    )
    simulate.add_argument(
        "--start",
        help="simulated start, ISO 8601 with offset (default: now; live with --speed > 1: a day "
        "ago, catching up to the present; backfill: DAYS ago; load: 30 days ago)",
    )
    simulate.add_argument("--seed", type=int, help="random seed (default PANTAU_SIM_SEED)")
    simulate.add_argument(
        "--faults",
        type=float,
        metavar="RATE",
        help="injected faults per sensor per simulated day (default PANTAU_SIM_FAULT_RATE, "
        "0.05; 0: none)",
    )
    simulate.add_argument(
        "--fault-kinds",
        metavar="LIST",
        help="comma-separated: stuck, spike, drift, offline, garbage, duplicate, clock_skew, "
        "out_of_order (default all)",
    )
    simulate.add_argument(
        "--payload",
        choices=["json", "batch", "senml"],
        help="JSON object per report, gateway batch (JSON array per --batch-s window) or SenML",
    )
    simulate.add_argument(
        "--batch-s", type=int, help="gateway batch window in seconds (divides 3600; default 900)"
    )
    simulate.add_argument(
        "--per-device",
        action="store_true",
        help="one MQTT connection per sensor (client id <PANTAU_SIM_CLIENT_ID>-<sensor_id>, "
        "last will on its status topic); at most 2000",
    )
    simulate.add_argument("--output", help="write lines to FILE (or - for stdout) instead of MQTT")
    simulate.add_argument(
        "--labels", help="write the injected faults here (default FILE.labels.csv with --output)"
    )


def _backfill_span(args: argparse.Namespace, now: int) -> tuple[int, int]:
    """(start, end) of ``--backfill DAYS``: up to now, or from ``--start``."""
    span = int(args.backfill * 86_400)
    end = now if args.start is None else _parse_start(args.start, 1.0) + span
    if end > now + 60 and not args.output:
        raise ConfigError(
            f"--backfill {args.backfill:g} from --start {args.start} reaches into the future, "
            "which the ingest rejects (ts_in_future)",
            "start earlier, give fewer days, or write to a file with --output",
        )
    return end - span, end


def _device_passwords(settings: SimulateSettings) -> dict[str, str]:
    """Each device's broker password: from ``credentials_file``, else the local stack's."""
    from pantau import credentials
    from pantau.secretstore import SecretStore

    if settings.credentials_file is not None:
        if not settings.credentials_file.exists():
            raise ConfigError(
                f"the credentials file {settings.credentials_file} does not exist",
                "write it with `pantau registry credentials --out DIR` (DIR/devices.csv)",
            )
        return credentials.read_devices_csv(settings.credentials_file)
    return credentials.local_devices(SecretStore(settings.state_dir.resolve()))[2]


def _simulate_sink(
    args: argparse.Namespace, settings: SimulateSettings, sim: FleetSimulator
) -> Sink:
    from simulators.publish import Credentials, LineSink, MqttSink, PerDeviceSink

    if args.output == "-":
        return LineSink(sys.stdout)
    if args.output:
        return LineSink(Path(args.output).open("w", encoding="utf-8"))
    endpoint = settings.resolved_mqtt()
    creds = Credentials(settings.username or None, settings.password.get_secret_value() or None)
    if args.per_device and not settings.username:
        creds = Credentials(devices=_device_passwords(settings))
    logger.info(
        "publishing %d sensors to %s (%s payloads, %s)",
        sim.sensor_count,
        endpoint.url(),
        sim.form,
        "one connection per device" if args.per_device else f"client id {settings.client_id}",
    )
    if args.per_device:
        devices = [
            (sid, f"{settings.topic_root}/{g.kind}/{sid}/status")
            for g in sim.groups
            for sid in g.ids
        ]
        return PerDeviceSink(endpoint, settings.client_id, devices, settings.max_inflight, creds)
    return MqttSink(endpoint, settings.client_id, settings.max_inflight, creds)


def _simulate_load(
    args: argparse.Namespace,
    sim: FleetSimulator,
    sink: Sink,
    stop: threading.Event,
    now: int,
    save_labels: Callable[[], None],
) -> int:
    """Load mode: exit status 0 when the target rate was reached, 1 when it was not."""
    from simulators.progress import LoadMeter
    from simulators.run import run_load

    start = now - 30 * 86_400 if args.start is None else _parse_start(args.start, 1.0)
    meter = LoadMeter(args.load, args.load_unit, sys.stderr.write, time.monotonic())
    result = run_load(
        sim,
        sink,
        start_s=start,
        end_s=now,
        rate_per_s=args.load,
        unit=args.load_unit,
        duration_s=args.duration or 60.0,
        stop=stop,
        meter=meter,
    )
    save_labels()
    print(result.verdict, file=sys.stderr)
    if result.exhausted:
        print(
            "load: simulated time reached the present; for longer runs use a larger fleet "
            "(--sensors N) or an earlier --start",
            file=sys.stderr,
        )
    return 0 if result.reached else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    from pantau.registry.fleet import load_fleet
    from pantau.settings import SimulateSettings
    from simulators.fleet import FleetSimulator
    from simulators.labels import save_csv
    from simulators.metrics import parse_fault_kinds
    from simulators.progress import ProgressBar, summary
    from simulators.run import run_backfill, run_live
    from simulators.scale import fleet_toml, scale_fleet

    overrides = {
        "seed": args.seed,
        "fault_rate": args.faults,
        "fault_kinds": args.fault_kinds,
        "payload": args.payload,
        "batch_s": args.batch_s,
    }
    settings = SimulateSettings(**{k: v for k, v in overrides.items() if v is not None})
    settings.refuse_placeholders()
    fleet = load_fleet(args.fleet)
    if args.sensors is not None:
        fleet = scale_fleet(fleet, args.sensors)
    if args.write_fleet:
        Path(args.write_fleet).write_text(fleet_toml(fleet), encoding="utf-8")
        print(f"wrote {len(fleet.sensors)} sensors to {args.write_fleet}; register them with "
              f"`pantau registry load {args.write_fleet}`")  # fmt: skip
        return 0
    logger.info("simulate settings: %s", settings.masked())
    sim = FleetSimulator(
        fleet,
        settings.seed,
        settings.topic_root,
        fault_rate=settings.fault_rate,
        fault_kinds=parse_fault_kinds(settings.fault_kinds),
        payload=settings.payload,
        batch_s=settings.batch_s,
    )
    labels_path = Path(args.labels) if args.labels else None
    if labels_path is None and args.output and args.output != "-":
        labels_path = Path(args.output + ".labels.csv")
    if args.output and args.backfill is None and args.load is None and args.duration is None:
        raise ConfigError(
            "--output needs --duration or --backfill", "say how many simulated seconds to write"
        )
    if args.output and args.load is not None:
        raise ConfigError(
            "--load measures publishing to a broker, not writing a file",
            "drop --output, or write history with --backfill DAYS --output FILE",
        )
    now = int(time.time())
    if args.backfill is not None:
        start, end = _backfill_span(args, now)
    sink = _simulate_sink(args, settings, sim)

    def save_labels() -> None:
        if labels_path is not None:
            save_csv(sim.labels(), labels_path)

    stop = _stop_on_signals()
    wall0 = time.monotonic()
    if args.backfill is not None:
        bar = ProgressBar(end - start, sys.stderr.write, sys.stderr.isatty(), time.monotonic())
        stats = run_backfill(sim, sink, start_s=start, end_s=end, stop=stop, progress=bar)
        what = "backfill"
    elif args.load is not None:
        return _simulate_load(args, sim, sink, stop, now, save_labels)
    else:
        stats = run_live(
            sim,
            sink,
            start_s=_parse_start(args.start, args.speed),
            speed=float("inf") if args.output else args.speed,
            duration_s=args.duration,
            tick_s=0.1,
            stop=stop,
            clock=None if args.output else time.time,
            checkpoint=save_labels,
        )
        what = "live"
    save_labels()
    line = summary(
        what,
        simulated_s=stats.simulated_s,
        messages=stats.messages,
        readings=stats.readings,
        wall_s=time.monotonic() - wall0,
        labels=sim.labels(),
        unacked=max(int(getattr(sink, "sent", 0)) - int(getattr(sink, "acked", 0)), 0),
    )
    print(line + (f"; labels in {labels_path}" if labels_path else ""), file=sys.stderr)
    return 0


# -- process --------------------------------------------------------------------------------


def cmd_process(args: argparse.Namespace) -> int:
    import json

    from pantau.monitor.job import run
    from pantau.monitor.status import StatusListener
    from pantau.settings import ProcessSettings

    overrides: dict[str, object] = {}
    if args.interval is not None:
        overrides["interval_s"] = args.interval
    settings = ProcessSettings(**overrides)  # type: ignore[arg-type]
    logger.info("process settings: %s", settings.masked())
    _startup_checks(settings)
    at_ms = None if args.at is None else _parse_time(args.at, "--at") * 1000
    if args.once or at_ms is not None:
        report = run(settings, threading.Event(), once=True, at_ms=at_ms)
        print(json.dumps(report, indent=2))
        return 0
    listener = StatusListener(settings.resolved_mqtt(), settings.topic_root, settings.client_id)
    listener.start()
    try:
        run(settings, _stop_on_signals(), wills=listener.take)
    finally:
        listener.stop()
    return 0


# -- api ------------------------------------------------------------------------------------


def cmd_api(args: argparse.Namespace) -> int:
    from pantau.settings import ApiSettings

    settings = ApiSettings()
    if getattr(args, "key_action", None):
        return _api_key(args, settings)
    import uvicorn

    from api.app import create_app
    from pantau.db.connect import connect
    from pantau.db.migrate import require_current

    logger.info("api settings: %s", settings.masked())
    _startup_checks(settings)
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
    from api import keys
    from pantau.db.connect import connect
    from pantau.db.migrate import require_current

    with connect(settings.resolved_database_url(), application_name="pantau-api-keys") as conn:
        require_current(conn)
        if args.key_action == "create":
            new = keys.create(conn, args.name, args.role)
            conn.commit()
            print(new.key)
            logger.info(
                "created key %s (%s, role %s); it is shown once", new.key_id, args.name, args.role
            )
        elif args.key_action == "revoke":
            if not keys.revoke(conn, args.key_id):
                raise ConfigError(
                    f"no active API key {args.key_id!r}", "see `pantau api key list` for the ids"
                )
            conn.commit()
            print(f"revoked {args.key_id}")
        else:
            for row in keys.listing(conn):
                state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
                print(f"{row.key_id}  {row.role:<8}  {state:<18}  last used {used:<16}  {row.name}")
    return 0


# -- dashboards -----------------------------------------------------------------------------


def cmd_dashboards(args: argparse.Namespace) -> int:
    from dashboards import provisioning
    from dashboards.settings import GrafanaSettings

    if args.action == "build":
        provisioning.build(args.dir or provisioning.ROOT, check=args.check, write=print)
        return 0
    settings = GrafanaSettings()
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
        return None if text is None else _parse_time(text, option) * 1000

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


# -- detect ---------------------------------------------------------------------------------


def cmd_detect(args: argparse.Namespace) -> int:
    import contextlib

    from pantau.detectcsv import run

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


# -- demo -----------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from pantau.demo import run_demo

    return run_demo(speed=args.speed, duration_s=args.duration)


# -- parser ---------------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _add_registry_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pantau", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = sub.add_parser(
        "stack",
        help="the private local broker and database (no Docker needed)",
        description="Start, stop or inspect a private Mosquitto and PostgreSQL+TimescaleDB that "
        "run as unprivileged processes under PANTAU_STATE_DIR (default .pantau/), on ports "
        "PANTAU_STACK_MQTT_PORT (18830) and PANTAU_STACK_PG_PORT (54330). `up` installs missing "
        "servers with apt when run as root on Debian, and otherwise prints the commands to run.",
    )
    stack.add_argument("action", choices=["up", "down", "status", "url"])
    stack.add_argument(
        "service",
        nargs="?",
        choices=STACK_URLS,
        help='with url: whose URL to print (with its password), e.g. psql "$(pantau stack url '
        'grafana)"',
    )
    stack.set_defaults(func=cmd_stack)

    db = sub.add_parser(
        "db",
        help="database schema",
        description="Apply (migrate) or list (status) the versioned schema migrations, or "
        "create the roles and logins with a superuser's URL (bootstrap: PANTAU_DB_ADMIN_URL and "
        "PANTAU_DB_{OWNER,INGEST,API,GRAFANA}_PASSWORD; the local stack does it at `stack up`).",
    )
    db.add_argument("action", choices=["migrate", "status", "bootstrap"])
    db.set_defaults(func=cmd_db)

    _add_registry_parser(sub)

    ingest = sub.add_parser(
        "ingest",
        help="subscribe to telemetry and store it",
        description="Run an ingest worker: subscribe to <root>/+/+ at QoS 1 with a persistent "
        "session, validate, store in TimescaleDB, acknowledge after commit. Stop with Ctrl-C or "
        "SIGTERM (it flushes and acknowledges first); SIGUSR1 prints every thread's stack. "
        "Settings: PANTAU_INGEST_* variables (PANTAU_INGEST_METRICS_PORT serves Prometheus "
        "metrics, PANTAU_INGEST_MQTT_VERSION=3.1.1 is faster with this client).",
    )
    ingest.add_argument(
        "--client-id", help="MQTT client id (default pantau-ingest); one per worker"
    )
    ingest.add_argument(
        "--processes",
        type=int,
        help="run N worker processes on a shared subscription (client ids <id>-1 ... <id>-N)",
    )
    ingest.add_argument("--shared-group", help="join $share/<group>/ to split load across workers")
    ingest.set_defaults(func=cmd_ingest)

    simulate = sub.add_parser(
        "simulate",
        help="publish simulated sensor readings",
        description="Simulate the fleet's sensors, faults included, and publish their readings "
        "(QoS 1), or write them as `topic<TAB>payload` lines with --output. Three modes: live "
        "(default; --speed), backfill (--backfill DAYS of history as fast as the broker takes "
        "it) and load (--load RATE). Settings: PANTAU_SIM_* variables (seed, fault rate and "
        "kinds, payload form, credentials, inflight window). Injected faults are written to a "
        "labels CSV (sensor_id,metric,start,end,kind) for scoring detectors.",
    )
    _simulate_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)

    process = sub.add_parser(
        "process",
        help="offline sensors, alarms, waste, air (ISPU) and tourism figures, on a schedule",
        description="Every PANTAU_PROCESS_INTERVAL_S seconds: mark sensors offline (silent for "
        "k x their interval, or last will), update waste bin status and emptying events, hourly "
        "ISPU per air station, tourist-zone occupancy and density, then open and clear alarms. "
        "Listens to <root>/<kind>/<sensor_id>/status for last wills. One instance does the work "
        "at a time (an advisory lock). Settings: PANTAU_PROCESS_* variables.",
    )
    process.add_argument("--once", action="store_true", help="run once, print a report, exit")
    process.add_argument(
        "--at",
        help="run once as of this time (ISO 8601 with offset), e.g. over backfilled history",
    )
    process.add_argument("--interval", type=_positive, help="seconds between runs (default 30)")
    process.set_defaults(func=cmd_process)

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

    demo = sub.add_parser(
        "demo",
        help="everything at once: stack, schema, fleet, simulator and ingest",
        description="Bring the local stack up, migrate, load the Jepara fleet, then run the "
        "simulator and an ingest worker, printing a live summary. Ctrl-C stops what it started.",
    )
    demo.add_argument(
        "--speed", type=_positive, default=60.0, help="simulated seconds per second (default 60)"
    )
    demo.add_argument("--duration", type=_positive, help="stop after this many seconds")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except PantauError as exc:
        print(f"pantau {args.command}: error: {exc.problem}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return exc.exit_code
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            print(f"pantau {args.command}: error: setting {where}: {error['msg']}", file=sys.stderr)
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
        print(f"pantau {args.command}: error: the database refused: {first}", file=sys.stderr)
        print(
            "  fix: run this with the login made for it (README, security: migrations, registry "
            "and keys as pantau_owner; ingest and process as pantau_ingest_user; the API as "
            "pantau_api_user), or check that `pantau db migrate` ran as the owner",
            file=sys.stderr,
        )
        return ConfigError.exit_code


if __name__ == "__main__":
    sys.exit(main())
