"""Processes the stack starts: who runs them, whether they are ours, ports, stopping by pid."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pantau.errors import ConfigError, ServiceUnavailableError


@dataclass(frozen=True)
class ServiceUser:
    """The unprivileged account a server runs as (the current user when not root)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def for_service(cls, preferred: str) -> ServiceUser:
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)
        for name in (preferred, "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)
        raise ConfigError(f"no user {preferred!r} or 'nobody' to run the server as", "create one")

    @property
    def is_me(self) -> bool:
        return self.uid == os.geteuid()

    def run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        """Run ``args`` as this user (dropping root when it is not us), capturing output."""
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            user=None if self.is_me else self.uid,
            group=None if self.is_me else self.gid,
            extra_groups=None if self.is_me else [],
        )

    def own(self, path: Path) -> None:
        """Make ``path`` this user's, so that the server can write there."""
        if not self.is_me:
            os.chown(path, self.uid, self.gid)


def ensure_reachable(path: Path, user: ServiceUser) -> None:
    """Fail clearly when ``user`` cannot traverse the directories above ``path``."""
    if user.is_me:
        return
    for parent in path.resolve().parents:
        st = parent.stat()
        if st.st_uid != user.uid and not st.st_mode & 0o001:
            raise ConfigError(
                f"the server runs as user {user.name!r}, which cannot enter {parent} "
                f"(mode {oct(st.st_mode & 0o777)})",
                "set PANTAU_STATE_DIR to a directory that user can reach, e.g. /var/tmp/pantau, "
                f"or `chmod o+x {parent}`",
            )


def read_pid(path: Path) -> int | None:
    """The first line of a pid file as a pid, or ``None``."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except (FileNotFoundError, PermissionError):
        return None
    return int(first) if first.isdigit() else None


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ("" when it does not exist)."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def is_ours(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` is alive and its command line names ``marker`` (our config or data dir).

    Checking the command line guards against a recycled pid: we never signal a process we did
    not start.
    """
    if pid is None or pid <= 0:
        return False
    line = cmdline(pid)
    if not line or marker not in line:
        return False
    with contextlib.suppress(FileNotFoundError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return False
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.05)
    raise ServiceUnavailableError(
        f"{what} did not open port {port} within {timeout_s:.0f} s", f"read its log: {log}"
    )


def terminate(pid: int, marker: str, timeout_s: float = 15.0) -> bool:
    """SIGTERM our process ``pid``, then SIGKILL after ``timeout_s``; False if it was not ours."""
    if not is_ours(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_ours(pid, marker):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline += timeout_s
        time.sleep(0.05)
    return True
