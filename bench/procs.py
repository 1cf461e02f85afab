"""What the kernel says about processes and the machine: CPU time, peak RSS, hardware."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable, Mapping
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process so far (0.0 when it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time of a live process's main thread, and of all its other threads together."""
    main = other = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return main, other
    for task in tasks:
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        if int(task.name) == pid:
            main += seconds
        else:
            other += seconds
    return main, other


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def family_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its live children (PostgreSQL: postmaster and backends)."""
    return cpu_seconds(pid) + sum(cpu_seconds(child) for child in children(pid))


def reaped_children_cpu_seconds() -> float:
    """CPU time of this process's children that have exited and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    """CPU time of this (the benchmark's) process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process in MiB, or ``None`` when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def machine_busy_seconds() -> float:
    """CPU time all processes of the machine have used since boot (/proc/stat, not idle)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def background_percent(seconds: float = 2.0) -> float:
    """CPU the machine uses while this benchmark does nothing, in % of one core."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return round(100 * (machine_busy_seconds() - before) / seconds, 1)


CpuProbe = Callable[[], float]
OTHER = "other"  # CPU used by processes outside the measured groups (other users, the kernel)


class CpuMeter:
    """CPU time of named process groups over a wall-clock window, as % of one core.

    Adds ``other``: what the whole machine used beyond the named groups, which shows when
    something else competed for the CPUs during a measurement.
    """

    def __init__(self, probes: Mapping[str, CpuProbe]) -> None:
        self.probes = dict(probes)
        self.start = {name: probe() for name, probe in self.probes.items()}
        self.machine_start = machine_busy_seconds()

    def percent(self, wall_s: float) -> dict[str, float]:
        """Each group's CPU use since construction, in % of one core over ``wall_s``."""
        used = {name: probe() - self.start[name] for name, probe in self.probes.items()}
        other = machine_busy_seconds() - self.machine_start - sum(used.values())
        used[OTHER] = max(other, 0.0)
        return {name: round(100 * s / max(wall_s, 1e-9), 1) for name, s in used.items()}


def _first_value(path: str, key: str, sep: str = ":") -> str:
    """The value of the first ``key<sep>value`` line of a text file."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return "unknown"
    for line in lines:
        name, _, value = line.partition(sep)
        if name.strip() == key:
            return value.strip().strip('"')
    return "unknown"


def machine() -> dict[str, str]:
    """CPU model and count, RAM, OS and Python of this machine."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    logical = sum(1 for line in cpuinfo if line.startswith("processor"))
    mem_kib = _first_value("/proc/meminfo", "MemTotal").split()[0]
    return {
        "cpu_model": _first_value("/proc/cpuinfo", "model name"),
        "cpu_count": str(logical),
        "ram_gib": f"{int(mem_kib) / 1024**2:.1f}" if mem_kib.isdigit() else "unknown",
        "os": _first_value("/etc/os-release", "PRETTY_NAME", "="),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
