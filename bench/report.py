"""The human-readable report of a run (the JSON file holds the same figures)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.broker import BrokerResult
from bench.database import METHODS, DbResult
from bench.e2e import E2EResult
from bench.latency import LatencyResult
from bench.workers import WorkerStats


@dataclass
class Results:
    started_utc: str
    mode: str
    fsync: bool
    total_s: float
    machine: dict[str, str]
    versions: dict[str, str]
    settings: dict[str, Any]
    broker: list[BrokerResult]
    database: list[DbResult]
    e2e: list[E2EResult]
    latency: LatencyResult | None
    notes: list[str]


def n(value: float) -> str:
    return f"{value:,.0f}"


def cpu(percent: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.0f}%" for name, value in percent.items())


def rss(stats: Sequence[WorkerStats]) -> str:
    return "/".join(f"{s.peak_rss_mib:.0f}" if s.peak_rss_mib else "?" for s in stats)


def header(r: Results) -> list[str]:
    m, v = r.machine, r.versions
    return [
        f"Pantau ingest benchmark, {r.started_utc} ({r.mode} run, {r.total_s:.0f} s)",
        f"machine   {m['cpu_model']}, {m['cpu_count']} logical CPUs, {m['ram_gib']} GiB RAM",
        f"          {m['os']}, kernel {m['kernel']}, Python {m['python']}, "
        f"load average at start {m['load_average']}",
        f"          background CPU before the run (2 s sample, whole machine): "
        f"{m['background_cpu_percent']}% of one core",
        f"servers   PostgreSQL {v['postgresql']}, TimescaleDB {v['timescaledb']}, "
        f"Mosquitto {v['mosquitto']}",
        f"code      {v['code']}",
        "database  fsync "
        + (
            "ON (synchronous_commit on, full_page_writes on)"
            if r.fsync
            else "OFF, synchronous_commit off, full_page_writes off (as in the tests; "
            "--fsync turns them on)"
        ),
        "CPU %     CPU time over the measured wall time, 100% = one core fully busy; "
        "'other' = the rest of the machine (processes outside this benchmark, the kernel)",
    ]


def broker_section(results: Sequence[BrokerResult], s: Mapping[str, Any]) -> list[str]:
    lines = [
        "",
        "(a) Broker limit with the C clients: mosquitto_pub -l -M 1000 -> mosquitto -> "
        "mosquitto_sub -C N",
        f"    {s['chunk_lines']:,}-line chunks, one topic and process per chunk, "
        f"{s['publishers']} publishers at a time; clock: first publish -> last message received",
    ]
    for b in results:
        flag = "" if b.complete else f"  INCOMPLETE: {b.messages - b.received:,} lost"
        lines.append(
            f"    QoS {b.qos}  {n(b.received):>9} msgs  {b.seconds:7.2f} s  "
            f"{n(b.messages_per_s):>9} msg/s  longest pause {b.longest_gap_s:.2f} s  "
            f"slowest publisher {b.slowest_publisher_s:.1f} s  CPU: {cpu(b.cpu_percent)}{flag}"
        )
    return lines


def database_section(results: Sequence[DbResult]) -> list[str]:
    lines = ["", "(b) Database limits: fresh database per line, one transaction per batch"]
    lines.append(f"    {'method':<58} {'batch':>7} {'rows':>10} {'s':>7} {'rows/s':>9}  CPU")
    lines += [
        f"    {METHODS[d.method]:<58} {n(d.batch_rows):>7} {n(d.stored):>10} "
        f"{d.seconds:7.2f} {n(d.rows_per_s):>9}  {cpu(d.cpu_percent)}"
        for d in results
    ]
    return lines


def e2e_section(results: Sequence[E2EResult]) -> list[str]:
    lines = [
        "",
        "(c) End to end: mosquitto_pub (QoS 1) -> mosquitto -> pantau ingest -> TimescaleDB",
        "    publishers as in (a); single readings compare with (a) QoS 1, batches with the "
        "upsert of (b) on one connection (N workers write on N connections)",
        "    clock: first publish -> count(*) sees every reading committed (polled every 0.2 s)",
        "    pub s: until the last publisher exited; pause: longest time without a new commit",
        f"    {'workload':<10} {'wk':>2} {'readings':>9} {'s':>7} {'readings/s':>10} "
        f"{'msgs/s':>8} {'pub s':>6} {'pause':>6}  {'ratio to limit':<26} peak RSS MiB",
    ]
    for e in results:
        flag = "" if e.complete else f"  INCOMPLETE: {e.committed:,} of {e.readings:,}"
        pub = f"{e.publish_s:6.1f}" if e.publish_s is not None else "     ?"
        lines.append(
            f"    {e.workload:<10} {e.workers:>2} {n(e.committed):>9} {e.seconds:7.2f} "
            f"{n(e.readings_per_s):>10} {n(e.messages_per_s):>8} {pub} {e.longest_gap_s:6.1f}  "
            f"{e.ratio:5.1%} of {e.limit:<17} {rss(e.worker_stats)}{flag}"
        )
        lines.append(
            f"{'':17}CPU: {cpu(e.cpu_percent)}; count(*) poll {e.mean_poll_ms:.0f} ms; "
            f"slowest publisher {e.slowest_publisher_s:.1f} s"
        )
        lines.extend(worker_lines(e.worker_stats))
        lines.extend(f"{'':17}{line}" for note in e.notes for line in note.splitlines())
    return lines


def worker_lines(stats: Sequence[WorkerStats]) -> list[str]:
    lines = [
        f"{'':17}{s.client_id}: {s.messages:,} msgs, {s.readings:,} readings, "
        f"{s.batches:,} batches, mean commit {s.mean_commit_ms:.1f} ms, {s.cpu_s:.1f} CPU s "
        f"(main thread {s.main_thread_cpu_s:.1f}, other threads {s.other_threads_cpu_s:.1f}), "
        f"exit {s.exit_code}"
        for s in stats
    ]
    lines += [f"{'':17}WARNING {s.client_id}: {s.rejects} rejects" for s in stats if s.rejects]
    return lines


def latency_section(lat: LatencyResult | None) -> list[str]:
    if lat is None:
        return []
    return [
        "",
        f"(d) Latency at about half load: {n(lat.achieved_rate)} single readings/s "
        f"(target {n(lat.target_rate)}) for {lat.duration_s:.1f} s, {lat.workers} worker(s), "
        "paho-mqtt QoS 1 publisher",
        "    latency = received_at - ts; ts = publish wall-clock time (ms), received_at = "
        "now() of the worker's write transaction (its start: the commit itself is not "
        "included)",
        f"    {lat.committed:,} readings: p50 {lat.p50_ms:.1f} ms, p90 {lat.p90_ms:.1f} ms, "
        f"p99 {lat.p99_ms:.1f} ms, mean {lat.mean_ms:.1f} ms, max {lat.max_ms:.1f} ms",
        "    p50 of the readings published in the first, second and last third of the window: "
        + ", ".join(f"{ms:.0f} ms" for ms in lat.p50_by_third_ms),
        f"    CPU: {cpu(lat.cpu_percent)}; peak RSS {rss(lat.worker_stats)} MiB",
    ]


def rss_section(e2e: Sequence[E2EResult], lat: LatencyResult | None) -> list[str]:
    runs = [(f"{e.workload}, {e.workers} worker(s)", e.worker_stats) for e in e2e]
    runs += [(f"latency, {lat.workers} worker(s)", lat.worker_stats)] if lat else []
    return [
        "",
        "(e) Peak RSS (VmHWM, read before SIGTERM) of each worker process, MiB",
        *(f"    {name:<26} {rss(stats)}" for name, stats in runs),
    ]


def render(r: Results) -> str:
    lines = header(r)
    lines += broker_section(r.broker, r.settings)
    lines += database_section(r.database)
    lines += e2e_section(r.e2e)
    lines += latency_section(r.latency)
    lines += rss_section(r.e2e, r.latency)
    lines += ["", "Notes"] + [f"  - {note}" for note in r.notes]
    return "\n".join(lines)
