"""Install planning: which packages, which mirror, which build; pure, no apt runs here."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.stack.install import Toolchain, debian_mirror, debian_release, plan_install
from pantau.errors import MissingDependencyError

BOOKWORM = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
    "VERSION_CODENAME=bookworm\n"
)
TRIXIE = 'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n'
DEB822 = {
    "debian.sources": (
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
}
ONE_LINE = {
    "sources.list": "# deb http://old.example/debian bookworm main\n"
    "deb [arch=amd64] http://mirror.example/debian bookworm main contrib\n"
}
PG15 = Path("/usr/lib/postgresql/15/bin")


def have(*, mosquitto: bool = True, pg: Path | None = PG15, tsdb: bool = False) -> Toolchain:
    return Toolchain(
        mosquitto=Path("/usr/sbin/mosquitto") if mosquitto else None,
        mosquitto_clients=mosquitto,
        pg_bindir=pg,
        timescaledb=tsdb,
    )


def test_release_parsing():
    assert debian_release(BOOKWORM) == (12, "bookworm")
    assert debian_release(TRIXIE) == (13, "trixie")
    assert debian_release('ID=fedora\nVERSION_ID="40"\n') == (None, None)


@pytest.mark.parametrize("sources", [DEB822, ONE_LINE])
def test_mirror_is_the_one_apt_already_uses(sources):
    assert debian_mirror(sources, "bookworm") == "http://mirror.example/debian"


def test_no_mirror_for_another_release():
    assert debian_mirror(DEB822, "trixie") is None


def test_nothing_missing_means_nothing_to_do():
    assert plan_install(have(tsdb=True), BOOKWORM, DEB822).empty()


def test_debian_12_builds_timescaledb_from_trixie_source():
    plan = plan_install(have(), BOOKWORM, DEB822)
    assert plan.apt_packages == []
    assert plan.timescaledb_package is None
    assert plan.source_build is not None
    assert plan.source_build.source_line().endswith("http://mirror.example/debian trixie main")
    assert "postgresql-server-dev-15" in plan.source_build.build_packages
    assert "-DAPACHE_ONLY=ON" in plan.source_build.cmake_options()
    assert "-DPG_CONFIG=/usr/lib/postgresql/15/bin/pg_config" in plan.source_build.cmake_options()
    described = plan.describe()
    assert "apt-get install -y postgresql-server-dev-15 cmake" in described
    assert "source --download-only timescaledb" in described


def test_debian_13_installs_the_package():
    plan = plan_install(have(pg=None, mosquitto=False), TRIXIE, DEB822)
    assert plan.apt_packages == ["mosquitto", "mosquitto-clients", "postgresql-17"]
    assert plan.timescaledb_package == "postgresql-17-timescaledb"
    assert plan.source_build is None


def test_not_debian_says_what_to_install():
    with pytest.raises(MissingDependencyError, match="not a Debian system") as info:
        plan_install(have(), "ID=arch\n", {})
    assert "docker-compose.yml" in info.value.fix


def test_debian_12_without_a_mirror_explains():
    with pytest.raises(MissingDependencyError, match="no Debian archive configured"):
        plan_install(have(), BOOKWORM, {})
