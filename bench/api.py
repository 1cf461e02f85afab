"""API benchmark: latency of the dashboards' typical requests under load, on a full history.

Run from the repository root::

    .venv/bin/python -m bench.api            # 1,000 bins x 90 days, 20 s at 200 req/s (~3 min)
    .venv/bin/python -m bench.api --quick    # 200 bins x 7 days, 5 s (a smoke test, ~25 s)

What it does:

1. Data. A private PostgreSQL + TimescaleDB (Pantau's ``temporary_stack``, fsync off) and a
   scratch database. Jepara's zones with 1,000 waste bins over its villages, plus its footfall
   counters and air stations, are registered; 90 days of ``fill_pct`` every 15 minutes per bin
   (8.64 M readings) are generated with NumPy and loaded by binary COPY, the rollups of every
   width built from them in SQL, ``latest`` filled, and ``pantau process`` run once (see
   ``bench/api_data.py``). How long loading took is reported.
2. Server. The real ``pantau api`` (uvicorn, default settings: one process, a pool of up to 10
   database connections; but the per-caller rate limit off, as the load exceeds it with one
   key, see ``bench/api_server.py``) on a free port of 127.0.0.1, with an admin key.
3. Load. Five request kinds, round-robin, sent open-loop at a fixed total rate (default
   200 req/s) from client threads on keep-alive connections (``bench/api_load.py``); latency
   runs from each request's due time to the end of its response (no coordinated omission),
   service time from its actual send. Before that, each kind alone, 100 requests in sequence
   (unloaded: latency, and the server's and database's CPU per request), and a few seconds of
   load as warm-up (not counted).

The target is p99 <= 50 ms. Client, server and database share this machine's CPUs, and the
CPU each used during the loaded run is reported (``other``: the rest of the machine). Results
are printed and written to bench/results/api-<UTC timestamp>.json. No figure is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import psycopg

from api import apikeys
from api.settings import ApiSettings
from bench.api_data import LoadStats, api_fleet, load
from bench.api_load import Client, Figures, Kind, figures, per_kind, run_open_loop, run_sequential
from bench.api_server import api_server
from bench.ingest import code_version
from bench.procs import (
    OTHER,
    CpuMeter,
    background_percent,
    family_cpu_seconds,
    own_cpu_seconds,
)
from bench.procs import machine as machine_info
from bench.stack import fresh_database, private_stack, server_versions
from pantau.db.migrate import migrate

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_P99_MS = 50.0
OTHER_WARN_PERCENT = 30.0
STARTED = time.monotonic()


@dataclass(frozen=True)
class Sizes:
    bins: int
    days: int
    seconds: float
    warmup_s: float
    unloaded: int


FULL = Sizes(bins=1000, days=90, seconds=20.0, warmup_s=3.0, unloaded=100)
QUICK = Sizes(bins=200, days=7, seconds=5.0, warmup_s=1.0, unloaded=100)


@dataclass
class Measured:
    shapes: dict[str, str]  # what one response of each kind holds
    unloaded: list[Figures]
    cpu_ms_per_request: dict[str, dict[str, float]]  # unloaded: kind -> api, postgres
    loaded: list[Figures]
    cpu_percent: dict[str, float]  # during the loaded run


@dataclass
class Results:
    started_utc: str
    mode: str
    total_s: float
    machine: dict[str, str]
    versions: dict[str, str]
    settings: dict[str, Any]
    load: LoadStats
    shapes: dict[str, str]
    unloaded: list[Figures]
    cpu_ms_per_request: dict[str, dict[str, float]]
    loaded: list[Figures]
    cpu_percent: dict[str, float]
    capacity_req_per_s: float  # of the mix, by one API process on one core (unloaded CPU)
    target_p99_ms: float
    p99_ratio: float  # overall p99 / target: <= 1 meets the target
    meets_target: bool
    notes: list[str] = field(default_factory=list)


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="200 bins x 7 days, 5 s of load")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s (default 200)")
    parser.add_argument("--seconds", type=float, help="length of the loaded run")
    parser.add_argument(
        "--clients", type=int, default=64, help="client threads (connections), default 64"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="API server processes (PANTAU_API_WORKERS)"
    )
    return parser.parse_args(argv)


def request_kinds(bin_ids: Sequence[str], days: int) -> list[Kind]:
    """The dashboards' typical requests; per-sensor ones pick a random bin each time."""
    now = datetime.now(UTC)

    def pick(rng: np.random.Generator) -> str:
        return bin_ids[int(rng.integers(len(bin_ids)))]

    def raw_24h(rng: np.random.Generator) -> str:
        start, end = (now - timedelta(hours=24)).isoformat(), now.isoformat()
        query = urlencode({"metric": "fill_pct", "bucket": "raw", "start": start, "end": end})
        return f"/v1/sensors/{pick(rng)}/readings?{query}"

    def history(rng: np.random.Generator) -> str:
        start = (now - timedelta(days=days)).isoformat()
        query = urlencode({"metric": "fill_pct", "start": start, "bucket": "auto"})
        return f"/v1/sensors/{pick(rng)}/readings?{query}"

    return [
        Kind("latest waste_bin", lambda _: "/v1/latest?kind=waste_bin&limit=1000"),
        Kind("sensor 24h raw", raw_24h),
        Kind(f"sensor {days}d auto", history),
        Kind("collection plan", lambda _: "/v1/waste/collection-plan"),
        Kind("tourist zones", lambda _: "/v1/tourism/zones"),
    ]


def shapes(port: int, headers: dict[str, str], kinds: Sequence[Kind]) -> dict[str, str]:
    """What one response of each kind holds (items, points, stops), for the report."""
    client = Client(port, headers)
    out = {}
    for kind in kinds:
        status, body = client.get(kind.make_path(np.random.default_rng(3)))
        doc = json.loads(body) if status == 200 else {}
        if "items" in doc:
            out[kind.name] = f"{len(doc['items'])} items"
        elif "points" in doc:
            out[kind.name] = f"{len(doc['points'])} points ({doc['bucket']})"
        elif "stops" in doc:
            out[kind.name] = f"{len(doc['stops'])} stops"
        else:
            out[kind.name] = f"HTTP {status}"
        out[kind.name] += f", {len(body):,} bytes"
    client.close()
    return out


def measure(
    url: str, state_pid: int, sizes: Sizes, args: argparse.Namespace, log: Path
) -> Measured:
    """Start the server, then the unloaded (with CPU per request), warm-up and loaded runs."""
    with psycopg.connect(url) as conn:
        key = apikeys.create(conn, "bench", "admin").key
        bin_ids = [
            str(r[0])
            for r in conn.execute("SELECT sensor_id FROM sensors WHERE kind = 'waste_bin'")
        ]
    headers = {"X-API-Key": key}
    kinds = request_kinds(bin_ids, sizes.days)
    migrate(url)  # migrations added to the tree while loading: `pantau api` refuses to start
    with api_server(url, log, {"PANTAU_API_WORKERS": str(args.workers)}) as server:
        say(f"pantau api (pid {server.pid}) ready on port {server.port}")
        found = shapes(server.port, headers, kinds)
        unloaded, cpu_ms = [], {}
        for kind in kinds:
            api_s, pg_s = family_cpu_seconds(server.pid), family_cpu_seconds(state_pid)
            samples = run_sequential(server.port, headers, kind, sizes.unloaded)
            api_s, pg_s = (
                family_cpu_seconds(server.pid) - api_s,
                family_cpu_seconds(state_pid) - pg_s,
            )
            n = sizes.unloaded + 3  # the warm-up requests used CPU too
            cpu_ms[kind.name] = {
                "api": round(1000 * api_s / n, 2),
                "postgres": round(1000 * pg_s / n, 2),
            }
            unloaded.append(figures(kind.name, samples, samples[0].due))
            say(
                f"    unloaded {kind.name}: p50 {unloaded[-1].service_p50_ms} ms, "
                f"CPU/request: api {cpu_ms[kind.name]['api']} ms, "
                f"postgres {cpu_ms[kind.name]['postgres']} ms"
            )
        say(f"warm-up: {args.rate:.0f} req/s for {sizes.warmup_s:.0f} s (not counted)")
        run_open_loop(server.port, headers, kinds, args.rate, sizes.warmup_s, args.clients)
        seconds = args.seconds or sizes.seconds
        say(f"loaded: {args.rate:.0f} req/s for {seconds:.0f} s, {args.clients} client threads")
        meter = CpuMeter(
            {
                "api": lambda: family_cpu_seconds(server.pid),
                "postgres": lambda: family_cpu_seconds(state_pid),
                "load generator": own_cpu_seconds,
            }
        )
        began = time.monotonic()
        samples, errors, t0 = run_open_loop(
            server.port, headers, kinds, args.rate, seconds, args.clients
        )
        cpu = meter.percent(time.monotonic() - began)
    return Measured(found, unloaded, cpu_ms, per_kind(kinds, samples, errors, t0), cpu)


def render(r: Results) -> str:
    s = r.settings
    lines = [
        f"Pantau API benchmark ({r.mode}): {r.load.bins:,} bins x {r.load.days} days "
        f"({r.load.readings:,} readings), loaded in {r.load.total_s:.0f} s "
        f"(COPY + rollups {r.load.copy_and_rollups_s:.0f} s, latest + VACUUM ANALYZE "
        f"{r.load.latest_vacuum_s:.0f} s, pantau process {r.load.process_job_s:.0f} s)",
        f"machine: {r.machine['cpu_model']}, {r.machine['cpu_count']} CPUs, "
        f"{r.machine['ram_gib']} GiB, {r.machine['os']}, Python {r.machine['python']}",
        f"load: {s['rate']:.0f} req/s open loop for {s['seconds']:.0f} s, {s['clients']} client "
        f"threads; server: pantau api, pool {s['pool_min']}-{s['pool_max']} connections",
        "",
        f"{'request':<18} {'n':>5} {'err':>4} {'rate/s':>7} {'p50':>7} {'p90':>7} {'p99':>7} "
        f"{'max':>7} | {'svc p50':>7} {'svc p99':>7} | {'idle p50':>8} {'idle p99':>8} "
        f"{'api cpu':>7} | shape",
    ]
    idle = {f.kind: f for f in r.unloaded}
    for f in r.loaded:
        u = idle.get(f.kind)
        lines.append(
            f"{f.kind:<18} {f.count:>5} {f.errors:>4} {f.rate_per_s:>7.1f} {f.p50_ms:>7.1f} "
            f"{f.p90_ms:>7.1f} {f.p99_ms:>7.1f} {f.max_ms:>7.1f} | {f.service_p50_ms:>7.1f} "
            f"{f.service_p99_ms:>7.1f} | "
            + (f"{u.service_p50_ms:>8.1f} {u.service_p99_ms:>8.1f}" if u else " " * 17)
            + (f" {r.cpu_ms_per_request[f.kind]['api']:>7.1f}" if u else " " * 8)
            + f" | {r.shapes.get(f.kind, '')}"
        )
    lines += [
        f"(ms; latency from the due time, service time from the send; idle: "
        f"{s['unloaded']} requests of the kind alone, one at a time; api cpu: the server's CPU "
        "per request then)",
        f"one API process can serve about {r.capacity_req_per_s:.0f} req/s of this mix "
        "(1 / mean CPU per request, a whole core to itself)",
        "",
        f"target p99 <= {r.target_p99_ms:.0f} ms: overall p99 {r.loaded[-1].p99_ms:.1f} ms, "
        f"{r.p99_ratio:.2f}x the target -> {'MET' if r.meets_target else 'NOT MET'}",
        "CPU during the loaded run (% of one core): "
        + ", ".join(f"{k} {v:.0f}" for k, v in r.cpu_percent.items()),
        *r.notes,
    ]
    return "\n".join(lines)


def notes(r: Results) -> list[str]:
    out = [f"ERRORS {f.kind}: {f.errors} ({f.first_error})" for f in r.loaded[:-1] if f.errors]
    done, asked = r.loaded[-1].rate_per_s, r.settings["rate"]
    if done < 0.97 * asked:
        out.append(
            f"OVERLOADED: {done:.0f} of the {asked:.0f} req/s asked were completed; requests "
            "queued up through the run, so latency measures the backlog"
        )
    if r.cpu_percent.get(OTHER, 0.0) >= OTHER_WARN_PERCENT:
        out.append(
            f"DISTURBED: the rest of the machine used {r.cpu_percent[OTHER]:.0f}% CPU during the "
            f"loaded run (before the run: {r.machine['background_cpu_percent']}%)"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    host = machine_info() | {"background_cpu_percent": str(background_percent())}
    api = ApiSettings()  # what the server will read from the environment too
    api_defaults = {"pool_min": api.pool_min, "pool_max": api.pool_max}
    say("starting a private database (fsync off)")
    with private_stack(fsync=False) as state, fresh_database(state, "api") as url:
        assert state.postgres_pid is not None
        versions = server_versions(url) | {"code": code_version()}
        end_ms = time.time_ns() // 1_000_000
        say(f"loading {sizes.bins:,} bins x {sizes.days} days")
        loaded = load(url, api_fleet(sizes.bins), sizes.days, end_ms, say)
        say(f"    {loaded.readings:,} readings in {loaded.total_s:.1f} s")
        log = Path(state.state_dir) / "bench-api.log"
        m = measure(url, state.postgres_pid, sizes, args, log)
    overall = m.loaded[-1]
    api_ms = [c["api"] for c in m.cpu_ms_per_request.values()]
    results = Results(
        started_utc=started,
        mode="quick" if args.quick else "full",
        total_s=round(time.monotonic() - STARTED, 1),
        machine=host,
        versions=versions,
        settings=asdict(sizes)
        | api_defaults
        | {"rate": args.rate, "seconds": args.seconds or sizes.seconds, "clients": args.clients},
        load=loaded,
        shapes=m.shapes,
        unloaded=m.unloaded,
        cpu_ms_per_request=m.cpu_ms_per_request,
        loaded=m.loaded,
        cpu_percent=m.cpu_percent,
        capacity_req_per_s=round(1000 / max(sum(api_ms) / len(api_ms), 1e-3)),
        target_p99_ms=TARGET_P99_MS,
        p99_ratio=round(overall.p99_ms / TARGET_P99_MS, 2),
        meets_target=overall.p99_ms <= TARGET_P99_MS and overall.errors == 0,
    )
    results.notes = notes(results)
    print(render(results))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"api-{started.replace(':', '').replace('-', '')}.json"
    path.write_text(json.dumps(asdict(results), indent=2) + "\n")
    say(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
