"""The processes the demo starts: `pantau` subcommands in sessions of their own, each logging to
a file, and stopped in order.

Each child gets its own session (``start_new_session``), so the terminal's Ctrl-C and SIGHUP
reach the demo alone; the demo then stops its children in order (the simulators first, ingest
last, so what was published is stored) instead of every process racing on the same signal.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

STOP_GRACE_S = 30.0  # each command's own bound on its stop (PANTAU_STOP_GRACE_S)
KILL_AFTER_S = STOP_GRACE_S + 10.0  # then it is killed


@dataclass
class Child:
    """A running `pantau` subcommand."""

    name: str
    args: tuple[str, ...]
    log: Path
    popen: subprocess.Popen[bytes]
    log_offset: int  # the log's size when it started: its own lines come after
    at_s: int | None = None  # `process --at`: the time it runs as of

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def command(self) -> str:
        return "pantau " + " ".join(self.args)

    def log_text(self) -> str:
        """What it has logged since it started."""
        try:
            with self.log.open("rb") as f:
                f.seek(self.log_offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 12) -> list[str]:
        return self.log_text().splitlines()[-lines:]


def spawn(
    name: str, args: Iterable[str], env: dict[str, str], log: Path, *, at_s: int | None = None
) -> Child:
    """Start ``pantau ARGS`` with its output appended to ``log``."""
    argv = tuple(args)
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:  # the child keeps its own descriptor
        popen = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    return Child(name, argv, log, popen, offset, at_s)


def stop_all(groups: Iterable[Iterable[Child]]) -> list[str]:
    """SIGTERM each group's running children, wait for them (SIGKILL after
    :data:`KILL_AFTER_S`), then the next group. Returns one line per child: how it ended."""
    out = []
    for group in groups:
        members = list(group)
        for child in members:
            if child.running():
                with contextlib.suppress(ProcessLookupError):
                    child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + KILL_AFTER_S
        for child in members:
            try:
                code = child.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
                how = f"exit {code}" if code >= 0 else f"ended by {signal.Signals(-code).name}"
                out.append(f"{child.name} (pid {child.pid}, {how})")
            except subprocess.TimeoutExpired:
                child.popen.kill()
                child.popen.wait()
                out.append(f"{child.name} (pid {child.pid}, killed after {KILL_AFTER_S:g} s)")
    return out
