"""`pantau simulate`: the simulated fleet's readings, published (live, backfill, load) or saved."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cli.commands.options import parse_time, positive
from cli.commands.service import stop_on_signals
from pantau.errors import ConfigError
from pantau.topics import status_topic

if TYPE_CHECKING:
    from simulators.fleet import FleetSimulator
    from simulators.publish import Sink
    from simulators.settings import SimulateSettings

logger = logging.getLogger("pantau")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        type=positive,
        default=1.0,
        help="live mode: simulated seconds per wall-clock second (default 1)",
    )
    mode.add_argument(
        "--backfill",
        type=positive,
        metavar="DAYS",
        help="publish DAYS of history up to now (or from --start), with a progress bar",
    )
    mode.add_argument(
        "--load",
        type=positive,
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
        type=positive,
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
    simulate.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from pantau.registry.fleet import load_fleet
    from simulators.fleet import FleetSimulator
    from simulators.labels import save_csv
    from simulators.progress import ProgressBar, summary
    from simulators.run import run_backfill, run_live
    from simulators.scale import fleet_toml, scale_fleet
    from simulators.settings import SimulateSettings

    overrides = {
        "seed": args.seed,
        "fault_rate": args.faults,
        "fault_kinds": args.fault_kinds,
        "payload": args.payload,
        "batch_s": args.batch_s,
    }
    from cli.settings import load

    settings = load(SimulateSettings, **overrides)
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
        fault_kinds=settings.fault_kinds,
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

    stop = stop_on_signals()
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


def _parse_start(text: str | None, speed: float) -> int:
    """The simulated start: given, or now; accelerated runs start a day back and catch up."""
    if text is None:
        now = int(datetime.now(UTC).timestamp())
        return now - 86_400 if speed > 1 else now
    return parse_time(text, "--start")


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
    from ops import credentials
    from ops.secretstore import SecretStore

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
            (sid, status_topic(settings.topic_root, g.kind, sid))
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
