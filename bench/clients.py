"""Mosquitto's C clients: ``mosquitto_pub -l`` fed from files, ``mosquitto_sub -C N``.

Mosquitto 2.0.11's ``mosquitto_pub -l`` at QoS 1 stops after 65,535 lines (its message ids
wrap), so a stream is published as chunks of at most ``MAX_CHUNK_LINES`` lines, one process per
chunk, a few processes at a time. Each chunk has its own topic.

The clients connect to the broker of an ``mqtt://[user:password@]host:port`` URL; the login goes
in an options file (see ``ClientLogin``), never on their command line.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from pantau.mqtt import MqttEndpoint

MAX_CHUNK_LINES = 60_000
MAX_INFLIGHT = 1000  # mosquitto_pub -M
PROGRAMS = ("mosquitto_pub", "mosquitto_sub")


class ClientLogin:
    """Where and as whom Mosquitto's C clients connect, for the broker of ``url``.

    mosquitto_pub and mosquitto_sub 2.0 take a password only as ``-P`` (which every local user
    can read in ``ps``), but before their arguments they read default options, one
    ``-option value`` a line, from ``$XDG_CONFIG_HOME/mosquitto_pub`` (``.../mosquitto_sub``).
    The username and password go there, in a private temporary directory that lives until
    ``close``; run the clients with ``args(program)`` (program, host, port) and ``env`` (which
    points XDG_CONFIG_HOME there, so a personal client config never applies either).
    """

    def __init__(self, url: str) -> None:
        endpoint = MqttEndpoint.parse(url)
        self.host, self.port = endpoint.host, endpoint.port
        lines = []
        if endpoint.username:  # as paho does: no password without a username
            lines.append(f"-u {endpoint.username}")
            if endpoint.password:
                lines.append(f"-P {endpoint.password}")
        # The clients read the file with fgets into 1,024 bytes and cut each line at its end.
        if any("\n" in line or "\r" in line or len(line.encode()) > 1000 for line in lines):
            raise ValueError("the MQTT username or password has a line break or is too long")
        self._dir = tempfile.TemporaryDirectory(prefix="pantau-mqtt-")  # mode 0700
        for program in PROGRAMS:
            path = Path(self._dir.name, program)
            path.touch(mode=0o600)
            path.write_text("".join(line + "\n" for line in lines))
        self.env = {**os.environ, "XDG_CONFIG_HOME": self._dir.name}

    def args(self, program: str) -> list[str]:
        """The start of the command line of ``program``: its name, the host and the port."""
        if program not in PROGRAMS:
            raise ValueError(f"no login options for {program}")
        return [program, "-h", self.host, "-p", str(self.port)]

    def close(self) -> None:
        self._dir.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class Chunk:
    """One ``mosquitto_pub -l`` process: every line of ``path`` is a message to ``topic``."""

    topic: str
    path: Path
    lines: int


def write_chunk(directory: Path, topic: str, lines: Sequence[str]) -> Chunk:
    """Store ``lines`` (payloads without newlines) as the stdin file of one publisher."""
    if len(lines) > MAX_CHUNK_LINES:
        raise ValueError(f"{len(lines)} lines in one chunk; mosquitto_pub -l stops at 65,535")
    path = directory / f"chunk-{topic.replace('/', '_')}.txt"
    path.write_text("".join(line + "\n" for line in lines))
    return Chunk(topic, path, len(lines))


def _publish_one(login: ClientLogin, qos: int, chunk: Chunk, timeout_s: float) -> float:
    """Run one publisher; returns how long the process lived."""
    args = [*login.args("mosquitto_pub"), "-q", str(qos)]
    args += ["-M", str(MAX_INFLIGHT), "-t", chunk.topic, "-l"]
    started = time.perf_counter()
    with chunk.path.open("rb") as stdin:
        subprocess.run(
            args, stdin=stdin, env=login.env, check=True, timeout=timeout_s, capture_output=True
        )
    return time.perf_counter() - started


def publish_chunks(
    url: str, chunks: Sequence[Chunk], *, qos: int, parallel: int, timeout_s: float = 300.0
) -> list[float]:
    """Publish every chunk to the broker of ``url``, ``parallel`` publisher processes at a time;
    raise if one fails.

    Returns each publisher's lifetime (an idle ``mosquitto_pub -l`` lives at least ~0.2 s).
    """
    with ClientLogin(url) as login, ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(_publish_one, login, qos, c, timeout_s) for c in chunks]
        return [future.result() for future in futures]


def publish_message(url: str, topic: str, payload: str, *, retain: bool = False) -> None:
    """One QoS 1 message (or, with an empty payload and ``retain``, clear a retained one)."""
    with ClientLogin(url) as login:
        args = [*login.args("mosquitto_pub"), "-q", "1", "-t", topic]
        args += (["-r"] if retain else []) + (["-m", payload] if payload else ["-n"])
        subprocess.run(args, env=login.env, check=True, timeout=20, capture_output=True)


class PublishThread(threading.Thread):
    """Runs the publishers in the background; remembers when they finished."""

    def __init__(self, url: str, chunks: list[Chunk], parallel: int, qos: int = 1) -> None:
        super().__init__(daemon=True)
        self.url, self.chunks, self.parallel, self.qos = url, chunks, parallel, qos
        self.finished_at: float | None = None
        self.lifetimes: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.lifetimes = publish_chunks(
                self.url, self.chunks, qos=self.qos, parallel=self.parallel
            )
            self.finished_at = time.perf_counter()
        except (OSError, subprocess.SubprocessError) as exc:  # the caller raises it
            self.error = exc


class Subscriber:
    """``mosquitto_sub -C`` on ``<root>/data/+``, known to be subscribed before data flows.

    A retained message on ``<root>/ready`` is delivered as soon as the subscription exists: the
    first line the subscriber prints is that probe, and ``-C`` counts it, so it asks for n + 1.
    """

    def __init__(self, url: str, root: str, qos: int, expected: int) -> None:
        self.url = url
        self.probe_topic = f"{root}/ready"
        self.expected = expected
        self.lines = 0
        self.done_at: float | None = None
        self.longest_gap_s = 0.0  # longest pause between deliveries once data flows
        self.ready = threading.Event()
        self.complete = threading.Event()
        publish_message(url, self.probe_topic, "ready", retain=True)
        self.login = ClientLogin(url)  # read by mosquitto_sub as it starts; removed by stop()
        args = [*self.login.args("mosquitto_sub"), "-q", str(qos)]
        args += ["-C", str(expected + 1), "-t", f"{root}/data/+", "-t", self.probe_topic]
        self.proc = subprocess.Popen(
            args, env=self.login.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self.proc.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        last: float | None = None
        while block := os.read(stream.fileno(), 1 << 16):
            now = time.perf_counter()
            if last is not None and self.lines > 1:
                self.longest_gap_s = max(self.longest_gap_s, now - last)
            last = now
            self.lines += block.count(b"\n")
            if self.lines:
                self.ready.set()
            if self.lines >= self.expected + 1 and self.done_at is None:
                self.done_at = time.perf_counter()
                self.complete.set()

    @property
    def received(self) -> int:
        """Data messages received so far (the probe not counted)."""
        return max(self.lines - 1, 0)

    def wait_complete(self, stall_s: float, cap_s: float) -> bool:
        """Wait until all expected messages arrived; False after ``stall_s`` without progress."""
        deadline = time.monotonic() + cap_s
        last, last_change = -1, time.monotonic()
        while not self.complete.wait(0.05):
            now = time.monotonic()
            if self.lines != last:
                last, last_change = self.lines, now
            if now - last_change > stall_s or now > deadline:
                return False
        return True

    def stop(self) -> None:
        """Stop the subscriber if it still runs, and reap it (idempotent)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # seen once: it ignored SIGTERM while stalled
                self.proc.kill()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        self.login.close()
