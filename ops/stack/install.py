"""Find Mosquitto, PostgreSQL and TimescaleDB on this machine, and install what is missing;
find Compose v2, or fetch it.

Installation uses Debian's packages through apt, reusing the mirror apt is already configured
with (no mirror host is named here). Debian 13 packages TimescaleDB as
``postgresql-17-timescaledb``; Debian 12 does not, so there the Apache-2 edition is built from
Debian 13's *source* package against the installed PostgreSQL (see DESIGN.md section 2).
docker-compose.yml needs Compose v2 (Debian 12's docker-compose 1.29 rejects its top-level
``name``); Debian 13's docker-compose package is Compose v2, one static binary, which
:func:`ensure_compose_v2` unpacks into a directory of the project's instead of installing it.

Planning is pure (:func:`plan_install` returns the commands); only :func:`install` runs them,
and only as root. Everyone else gets the exact commands to run.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pantau.errors import MissingDependencyError

logger = logging.getLogger(__name__)

PG_LIB_ROOT = Path("/usr/lib/postgresql")
SOURCE_BUILD_SUITE = "trixie"  # Debian 13: the first release with a timescaledb source package
COMPOSE_SUITE = "trixie"  # Debian 13: the first release whose docker-compose is Compose v2
COMPOSE_IN_PACKAGE = "usr/libexec/docker/cli-plugins/docker-compose"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


@dataclass(frozen=True)
class Toolchain:
    """Where the server programs live on this machine (``None``: not installed)."""

    mosquitto: Path | None
    mosquitto_clients: bool
    pg_bindir: Path | None
    timescaledb: bool

    @property
    def pg_major(self) -> int | None:
        return int(self.pg_bindir.parent.name) if self.pg_bindir else None

    def missing(self) -> list[str]:
        names = []
        if self.mosquitto is None:
            names.append("mosquitto")
        if not self.mosquitto_clients:
            names.append("mosquitto-clients")
        if self.pg_bindir is None:
            names.append("postgresql")
        if not self.timescaledb:
            names.append("timescaledb")
        return names


def find_pg_bindir(root: Path = PG_LIB_ROOT) -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding a server, or ``None``."""
    majors = sorted(
        (int(p.name) for p in root.glob("*") if p.name.isdigit() and (p / "bin/postgres").exists()),
        reverse=True,
    )
    return root / str(majors[0]) / "bin" if majors else None


def timescaledb_installed(pg_bindir: Path) -> bool:
    """Whether the TimescaleDB extension files are installed for this PostgreSQL."""
    major = pg_bindir.parent.name
    candidates = [Path(f"/usr/share/postgresql/{major}/extension/timescaledb.control")]
    pg_config = pg_bindir / "pg_config"
    if pg_config.exists():
        sharedir = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if sharedir:
            candidates.append(Path(sharedir) / "extension/timescaledb.control")
    return any(c.exists() for c in candidates)


def detect() -> Toolchain:
    """What this machine has."""
    mosquitto = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )
    pg_bindir = find_pg_bindir()
    return Toolchain(
        mosquitto=Path(mosquitto) if mosquitto else None,
        mosquitto_clients=shutil.which("mosquitto_pub") is not None,
        pg_bindir=pg_bindir,
        timescaledb=pg_bindir is not None and timescaledb_installed(pg_bindir),
    )


def debian_release(os_release: str) -> tuple[int | None, str | None]:
    """(major version, codename) from the text of ``/etc/os-release``."""
    values = {
        k: v.strip().strip('"')
        for k, _, v in (line.partition("=") for line in os_release.splitlines())
        if k
    }
    if values.get("ID") != "debian" and "debian" not in values.get("ID_LIKE", ""):
        return None, None
    version = values.get("VERSION_ID", "")
    return (int(version) if version.isdigit() else None), values.get("VERSION_CODENAME")


def debian_mirror(sources: dict[str, str], codename: str) -> str | None:
    """The URI of the Debian archive apt already uses for ``codename`` (not the security one).

    ``sources`` maps file names to their text: one-line ``sources.list`` files and deb822
    ``*.sources`` files are both understood.
    """
    for name, text in sorted(sources.items()):
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                suites = fields.get("suites", "").split()
                if codename in suites and "deb" in fields.get("types", "").split():
                    uris = fields.get("uris", "").split()
                    if uris:
                        return uris[0]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == codename:
                    return words[1]
    return None


def read_apt_sources(root: Path = Path("/etc/apt")) -> dict[str, str]:
    files = [root / "sources.list", *sorted((root / "sources.list.d").glob("*"))]
    return {
        f.name: f.read_text() for f in files if f.is_file() and f.suffix in (".list", ".sources")
    }


@dataclass
class InstallPlan:
    """Shell commands that install what is missing, in order, plus a TimescaleDB source build."""

    apt_packages: list[str] = field(default_factory=list)
    timescaledb_package: str | None = None
    source_build: SourceBuild | None = None

    def empty(self) -> bool:
        return not (self.apt_packages or self.timescaledb_package or self.source_build)

    def describe(self) -> str:
        lines = []
        packages = [*self.apt_packages]
        if self.timescaledb_package:
            packages.append(self.timescaledb_package)
        if self.source_build:
            packages.extend(self.source_build.build_packages)
        if packages:
            lines += ["apt-get update", f"apt-get install -y {' '.join(packages)}"]
        if self.source_build:
            lines += self.source_build.describe()
        return "\n".join(lines)


@dataclass
class SourceBuild:
    """Build TimescaleDB (Apache-2 edition) from Debian 13's source package."""

    mirror: str
    pg_major: int
    build_packages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.build_packages = [f"postgresql-server-dev-{self.pg_major}", "cmake", "gcc", "make"]

    def source_line(self) -> str:
        return f"deb-src [signed-by={KEYRING}] {self.mirror} {SOURCE_BUILD_SUITE} main"

    def cmake_options(self) -> list[str]:
        return [
            "-DAPACHE_ONLY=ON",
            "-DREGRESS_CHECKS=OFF",
            "-DTAP_CHECKS=OFF",
            "-DWARNINGS_AS_ERRORS=OFF",
            "-DSEND_TELEMETRY_DEFAULT=OFF",
            f"-DPG_CONFIG=/usr/lib/postgresql/{self.pg_major}/bin/pg_config",
        ]

    def describe(self) -> list[str]:
        opts = (
            "-o Dir::Etc::SourceList=$W/sources.list -o Dir::Etc::SourceParts=$W/parts "
            "-o Dir::State::Lists=$W/lists"
        )
        return [
            "W=$(mktemp -d) && mkdir -p $W/parts $W/lists/partial $W/src",
            f"echo '{self.source_line()}' > $W/sources.list",
            f"apt-get {opts} update",
            f"(cd $W && apt-get {opts} source --download-only timescaledb)",
            "tar -xJf $W/timescaledb_*.orig.tar.xz -C $W/src --strip-components=1",
            f"(cd $W/src && ./bootstrap {' '.join(self.cmake_options())} && make -C build install)",
        ]


def plan_install(have: Toolchain, os_release: str, apt_sources: dict[str, str]) -> InstallPlan:
    """What to install on this Debian machine; raises when it is not Debian."""
    if not have.missing():
        return InstallPlan()
    major, codename = debian_release(os_release)
    if major is None or codename is None:
        raise MissingDependencyError(
            f"missing: {', '.join(have.missing())}, and this is not a Debian system Pantau knows "
            "how to install on",
            "install Mosquitto 2, PostgreSQL 15+ and TimescaleDB with your package manager, "
            "or use docker-compose.yml",
        )
    plan = InstallPlan()
    if have.mosquitto is None:
        plan.apt_packages.append("mosquitto")
    if not have.mosquitto_clients:
        plan.apt_packages.append("mosquitto-clients")
    pg_major = have.pg_major
    if pg_major is None:
        pg_major = 17 if major >= 13 else 15
        plan.apt_packages.append(f"postgresql-{pg_major}")
    if not have.timescaledb:
        if major >= 13 and pg_major == 17:
            plan.timescaledb_package = "postgresql-17-timescaledb"
        else:
            mirror = debian_mirror(apt_sources, codename)
            if mirror is None:
                raise MissingDependencyError(
                    "TimescaleDB must be built from source here, but apt has no Debian archive "
                    f"configured for {codename}",
                    "add a Debian mirror to apt sources, or install TimescaleDB yourself",
                )
            plan.source_build = SourceBuild(mirror=mirror, pg_major=pg_major)
    return plan


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    logger.info("running: %s", " ".join(cmd))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise MissingDependencyError(
            f"install step failed ({result.returncode}): {' '.join(cmd)}\n{tail}",
            "fix the cause above and run `pantau stack up` again",
        )


def install(plan: InstallPlan) -> None:
    """Carry out ``plan`` as root."""
    packages = [*plan.apt_packages]
    if plan.timescaledb_package:
        packages.append(plan.timescaledb_package)
    if plan.source_build:
        packages.extend(plan.source_build.build_packages)
    if packages:
        _run(["apt-get", "update", "-q"])
        _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages])
    if plan.source_build:
        _build_timescaledb(plan.source_build)


def _private_apt(work: Path, source_line: str) -> list[str]:
    """apt options that make it read only ``source_line``, with its lists under ``work``: the
    system's sources and lists are left as they are."""
    (work / "parts").mkdir()
    (work / "lists/partial").mkdir(parents=True)
    (work / "sources.list").write_text(source_line + "\n")
    return [
        f"-o=Dir::Etc::SourceList={work / 'sources.list'}",
        f"-o=Dir::Etc::SourceParts={work / 'parts'}",
        f"-o=Dir::State::Lists={work / 'lists'}",
    ]


def _build_timescaledb(build: SourceBuild) -> None:
    with tempfile.TemporaryDirectory(prefix="pantau-timescaledb-") as tmp:
        work = Path(tmp)
        (work / "src").mkdir()
        apt_opts = _private_apt(work, build.source_line())
        _run(["apt-get", *apt_opts, "update", "-q"])
        _run(["apt-get", *apt_opts, "source", "--download-only", "timescaledb"], cwd=work)
        tarballs = sorted(work.glob("timescaledb_*.orig.tar.*"))
        if not tarballs:
            raise MissingDependencyError(
                "apt downloaded no timescaledb source tarball",
                f"check that `{build.source_line()}` is reachable",
            )
        _run(["tar", "-xf", str(tarballs[0]), "-C", str(work / "src"), "--strip-components=1"])
        _run(["./bootstrap", *build.cmake_options()], cwd=work / "src")
        _run(["make", "-C", "build", f"-j{os.cpu_count() or 1}", "install"], cwd=work / "src")


def ensure_installed(allow_install: bool) -> Toolchain:
    """The toolchain, installing what is missing when allowed and root; else a clear error."""
    have = detect()
    if not have.missing():
        return have
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    plan = plan_install(have, os_release, read_apt_sources())
    if not allow_install or os.geteuid() != 0:
        why = "installing is turned off" if not allow_install else "this is not root"
        raise MissingDependencyError(
            f"missing: {', '.join(have.missing())} ({why})",
            "run as root:\n" + plan.describe(),
        )
    logger.warning("installing missing components: %s", ", ".join(have.missing()))
    install(plan)
    have = detect()
    if have.missing():
        raise MissingDependencyError(
            f"still missing after install: {', '.join(have.missing())}",
            "install them by hand:\n" + plan.describe(),
        )
    return have


# --- Compose v2 ------------------------------------------------------------------------------


def compose_major(command: list[str]) -> int | None:
    """The major version of the Compose that ``command`` runs (``["docker", "compose"]``,
    ``["docker-compose"]``), or None when it does not run."""
    try:
        result = subprocess.run(
            [*command, "version", "--short"], capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.match(r"v?(\d+)\.", result.stdout.strip())
    return int(found.group(1)) if result.returncode == 0 and found else None


def find_compose_v2(tools: Path) -> list[str] | None:
    """A command that runs Compose v2: Docker's plugin (``docker compose``), a docker-compose
    2.x on the PATH, or the one :func:`ensure_compose_v2` unpacked into ``tools``."""
    candidates = [["docker", "compose"]] if shutil.which("docker") else []
    on_path = shutil.which("docker-compose")
    if on_path:
        candidates.append([on_path])
    if (tools / "docker-compose").exists():
        candidates.append([str(tools / "docker-compose")])
    return next((c for c in candidates if (compose_major(c) or 0) >= 2), None)


def compose_source_line(mirror: str) -> str:
    """The apt source of Debian 13's binary packages on ``mirror``."""
    return f"deb [signed-by={KEYRING}] {mirror} {COMPOSE_SUITE} main"


def fetch_compose_v2(tools: Path, apt_sources: dict[str, str], os_release: str) -> Path:
    """Debian 13's docker-compose (Compose v2) unpacked into ``tools``; its path.

    apt downloads the package from the mirror it already uses for this release, through a
    source list of its own; the package is unpacked, not installed, so the system's packages
    (Debian 12's docker-compose 1.29 among them) stay as they are.
    """
    _, codename = debian_release(os_release)
    mirror = debian_mirror(apt_sources, codename) if codename else None
    if mirror is None:
        raise MissingDependencyError(
            "Compose v2 is missing, and apt has no Debian archive configured to fetch it from",
            "install Docker's Compose plugin (`docker compose`), or docker-compose 2.x",
        )
    with tempfile.TemporaryDirectory(prefix="pantau-compose-") as tmp:
        work = Path(tmp)
        apt_opts = _private_apt(work, compose_source_line(mirror))
        _run(["apt-get", *apt_opts, "update", "-q"])
        _run(["apt-get", *apt_opts, "download", "docker-compose"], cwd=work)
        packages = sorted(work.glob("docker-compose_*.deb"))
        if not packages:
            raise MissingDependencyError(
                "apt downloaded no docker-compose package",
                f"check that `{compose_source_line(mirror)}` is reachable",
            )
        _run(["dpkg-deb", "-x", str(packages[0]), str(work / "package")])
        tools.mkdir(parents=True, exist_ok=True)
        partial = tools / f".docker-compose-{os.getpid()}"
        shutil.copy2(work / "package" / COMPOSE_IN_PACKAGE, partial)
        partial.replace(tools / "docker-compose")  # atomic: a concurrent reader sees all or none
    return tools / "docker-compose"


def ensure_compose_v2(tools: Path, allow_install: bool = True) -> list[str]:
    """A command that runs Compose v2 (see :func:`find_compose_v2`), fetching Debian 13's into
    ``tools`` when there is none and fetching is allowed; else a clear error."""
    found = find_compose_v2(tools)
    if found is not None:
        return found
    if not allow_install:
        raise MissingDependencyError(
            "Compose v2 is missing (`docker compose` or docker-compose 2.x; Debian 12's "
            "docker-compose 1.29 cannot read docker-compose.yml)",
            "install Docker's Compose plugin, or Debian 13's docker-compose package",
        )
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    logger.warning("fetching Compose v2 (Debian 13's docker-compose) into %s", tools)
    fetch_compose_v2(tools, read_apt_sources(), os_release)
    found = find_compose_v2(tools)
    if found is None:
        raise MissingDependencyError(
            f"the docker-compose fetched into {tools} does not run here",
            "install Docker's Compose plugin, or Debian 13's docker-compose package",
        )
    return found
