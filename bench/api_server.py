"""The real API server of one benchmark run: ``pantau api`` as a subprocess, on a free port."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ops.stack.processes import free_port

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Server:
    pid: int
    port: int
    log: Path


def pantau_command() -> list[str]:
    """The ``pantau`` script next to this Python (the venv's), else ``python -m cli.main``."""
    script = Path(sys.executable).parent / "pantau"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]


def _ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/v1/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def api_server(database_url: str, log: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``pantau api`` against ``database_url``, ready (``/v1/ready`` answers 200); stopped on
    exit. Its output (uvicorn's access log included) goes to ``log``."""
    port = free_port()
    environ = os.environ | {
        "PANTAU_DATABASE_URL": database_url,
        "PANTAU_API_HOST": "127.0.0.1",
        "PANTAU_API_PORT": str(port),
        # The load sends up to --rate requests/s (default 200) with one key, above the default
        # per-caller rate (PANTAU_API_RATE_PER_S, 50/s): the limit is off, so that the run
        # measures serving requests, not refusing them with 429. ``env`` may set it again.
        "PANTAU_API_RATE_PER_S": "0",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*pantau_command(), "api"], env=environ | (env or {}), stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _ready(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"pantau api did not become ready; its log ends:\n{tail}")
            time.sleep(0.2)
        yield Server(proc.pid, port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
