"""`pantau ingest` worker processes: start, wait until subscribed, stop with SIGTERM, report."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.procs import cpu_seconds, peak_rss_mib, thread_cpu_seconds

# The worker's periodic and final log line (ingest/worker.py, Worker._log_summary).
SUMMARY = re.compile(
    r"ingest: [\d.]+ readings/s, (\d+) messages, (\d+) readings \(\d+ new\), (\d+) rejects, "
    r"(\d+) batches, mean commit ([\d.]+) ms"
)
SUBSCRIBED = "subscribed to"


@dataclass(frozen=True)
class WorkerStats:
    client_id: str
    exit_code: int | None
    peak_rss_mib: float | None
    cpu_s: float
    main_thread_cpu_s: float  # the pipeline: decoding, validation, writing, acks
    other_threads_cpu_s: float  # mostly paho's network thread: MQTT packets in and out
    messages: int
    readings: int
    rejects: int
    batches: int
    mean_commit_ms: float


MQTT_VERSION = "5"  # of the workers' own connections; set by --mqtt-version


def worker_env(database_url: str, mqtt_url: str, topic_root: str) -> dict[str, str]:
    """This environment without PANTAU_* settings, plus the ones the worker needs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTAU_")}
    env |= {
        "PANTAU_DATABASE_URL": database_url,
        "PANTAU_MQTT_URL": mqtt_url,
        "PANTAU_TOPIC_ROOT": topic_root,
        "PANTAU_INGEST_MQTT_VERSION": MQTT_VERSION,
    }
    return env


class WorkerProcess:
    """One ``python -m cli.main ingest`` subprocess, its log kept in memory."""

    def __init__(
        self, client_id: str, shared_group: str, env: Mapping[str, str], cwd: Path
    ) -> None:
        self.client_id = client_id
        args = [sys.executable, "-m", "cli.main", "ingest", "--client-id", client_id]
        args += ["--shared-group", shared_group] if shared_group else []
        # cwd: a directory without a .env file, so only the environment configures the worker.
        self.proc = subprocess.Popen(
            args,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self.subscribed = threading.Event()
        self.stats: WorkerStats | None = None
        assert self.proc.stderr is not None
        self.reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self.reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.log.append(line.rstrip("\n"))
            if SUBSCRIBED in line:
                self.subscribed.set()

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log[-lines:])

    def stop(self, timeout_s: float = 60.0) -> WorkerStats:
        """Read peak RSS and CPU time, SIGTERM, wait for the final flush (idempotent)."""
        if self.stats is not None:
            return self.stats
        rss, cpu, threads = (
            peak_rss_mib(self.pid),
            cpu_seconds(self.pid),
            thread_cpu_seconds(self.pid),
        )
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            code = None
        self.reader.join(timeout=10)
        self.stats = self._stats(code, rss, cpu, threads)
        return self.stats

    def _stats(
        self, code: int | None, rss: float | None, cpu: float, threads: tuple[float, float]
    ) -> WorkerStats:
        found = [m for line in self.log if (m := SUMMARY.search(line))]
        last = found[-1].groups() if found else ("0", "0", "0", "0", "0")
        return WorkerStats(
            client_id=self.client_id,
            exit_code=code,
            peak_rss_mib=round(rss, 1) if rss is not None else None,
            cpu_s=round(cpu, 2),
            main_thread_cpu_s=round(threads[0], 2),
            other_threads_cpu_s=round(threads[1], 2),
            messages=int(last[0]),
            readings=int(last[1]),
            rejects=int(last[2]),
            batches=int(last[3]),
            mean_commit_ms=float(last[4]),
        )


def wait_subscribed(workers: Sequence[WorkerProcess], timeout_s: float) -> None:
    """Return when every worker has logged its subscription; raise if one dies or times out."""
    deadline = time.monotonic() + timeout_s
    for worker in workers:
        while not worker.subscribed.wait(0.1):
            if worker.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"ingest worker {worker.client_id} did not subscribe "
                    f"(exit code {worker.proc.poll()}); its log:\n{worker.tail()}"
                )
