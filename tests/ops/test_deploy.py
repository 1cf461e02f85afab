"""docker-compose.yml, the Dockerfile and the broker config, checked without a Docker engine.

The compose file is validated by Compose v2 itself (`docker compose config`; where no Compose v2
is installed, ops.stack.install fetches Debian 13's docker-compose 2.x into .pantau/tools), and
every command a service runs is parsed by the `pantau` command line the image runs.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from cli.main import build_parser
from dashboards.provisioning import DB_ENV
from ops.stack.install import compose_major, ensure_compose_v2
from ops.stack.mosquitto import BrokerConfig
from pantau.db.roles import LOGINS
from pantau.masking import is_placeholder

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def conf_settings(text: str) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in text.splitlines() if line and line[0] != "#")
    return {p[0]: p[1] for p in pairs if len(p) == 2 and p[0] != "log_type"}


def test_services_and_their_order():
    assert set(SERVICES) >= {
        "mosquitto",
        "timescaledb",
        "db-bootstrap",
        "mqtt-credentials",
        "migrate",
        "ingest",
        "api",
        "process",
        "simulator",
        "grafana",
    }
    conditions = {"service_healthy", "service_completed_successfully", "service_started"}
    for name, service in SERVICES.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            assert rule["condition"] in conditions
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency} has no healthcheck"
    assert SERVICES["simulator"]["profiles"] == ["sim"]


def test_every_variable_is_documented_in_env_example():
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    assert used <= documented, f"undocumented: {used - documented}"
    # Secrets are required, never defaulted.
    assert re.search(r"\$\{POSTGRES_PASSWORD:\?", text)


def test_mounted_files_and_copied_sources_exist():
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_the_image_copies_every_package_the_project_installs():
    """A package left out of the Dockerfile is an image whose `pantau` fails on its import."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = {
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and len(line.split()) == 3
    }
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    assert packages == {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}


def test_compose_broker_is_as_durable_as_the_local_stack():
    deployed = conf_settings((ROOT / "deploy/mosquitto/mosquitto.conf").read_text())
    local = conf_settings(BrokerConfig(port=1, directory=Path("/x")).render())
    for key in ("persistence", "persistent_client_expiration", "max_queued_messages",
                "max_inflight_messages", "max_packet_size"):  # fmt: skip
        assert deployed[key] == local[key], key
    assert int(deployed["max_queued_messages"]) > 0


def pantau_commands(service: dict) -> list[list[str]]:
    """The `pantau` argument lists a service of the Pantau image runs."""
    if "entrypoint" in service:
        script = service["entrypoint"][-1]
        return [shlex.split(part)[1:] for part in script.split("&&")]
    return [service["command"]]


def test_every_service_command_is_a_pantau_command():
    parser = build_parser()
    pantau_services = [s for s in SERVICES.values() if s.get("image") == "pantau:latest"]
    assert len(pantau_services) >= 6
    for service in pantau_services:
        for argv in pantau_commands(service):
            try:
                args = parser.parse_args(argv)
            except SystemExit:
                pytest.fail(f"`pantau {' '.join(argv)}` does not parse")
            assert callable(args.func)


def test_grafana_service():
    grafana = SERVICES["grafana"]
    assert grafana["image"].startswith("grafana/grafana-oss:")
    assert "./dashboards/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert grafana["depends_on"]["timescaledb"] == {"condition": "service_healthy"}
    assert "/api/health" in " ".join(grafana["healthcheck"]["test"])
    env = grafana["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert env["PANTAU_GRAFANA_DB_PASSWORD"].startswith("${GRAFANA_DB_PASSWORD:?")
    # The provisioned data source reads these from Grafana's environment.
    assert set(DB_ENV.values()) <= set(env)
    # Its login is the one db-bootstrap makes, with the same password.
    bootstrap = SERVICES["db-bootstrap"]["environment"]
    assert env["PANTAU_GRAFANA_DB_USER"] == next(g.name for g in LOGINS if g.service == "grafana")
    assert bootstrap["PANTAU_DB_GRAFANA_PASSWORD"] == env["PANTAU_GRAFANA_DB_PASSWORD"]
    assert grafana["depends_on"]["db-bootstrap"] == {"condition": "service_completed_successfully"}


def test_every_service_connects_as_itself_in_production():
    """No service but db-bootstrap knows the superuser; each uses its own login and account."""
    expected_db = {
        "migrate": "pantau_owner",
        "mqtt-credentials": "pantau_owner",
        "ingest": "pantau_ingest_user",
        "process": "pantau_ingest_user",
        "api": "pantau_api_user",
    }
    expected_mqtt = {
        "ingest": "pantau-ingest",
        "process": "pantau-process",
        "simulator": "pantau-simulator",
    }
    for name, service in SERVICES.items():
        if service.get("image") != "pantau:latest":
            continue
        env = service["environment"]
        assert env["PANTAU_ENV"] == "production", name
        url = env.get("PANTAU_DATABASE_URL", "")
        assert "POSTGRES_PASSWORD" not in url, name
        if name in expected_db:
            assert url.startswith(f"postgresql://{expected_db[name]}:${{DB_"), (name, url)
        mqtt = env.get("PANTAU_MQTT_URL", "")
        if name in expected_mqtt:
            assert mqtt.startswith(f"mqtt://{expected_mqtt[name]}:${{MQTT_"), (name, mqtt)
        else:
            assert not mqtt, name
    assert "POSTGRES_PASSWORD" in SERVICES["db-bootstrap"]["environment"]["PANTAU_DB_ADMIN_URL"]
    # The broker reads the files mqtt-credentials writes, as the same user.
    assert SERVICES["mqtt-credentials"]["user"] == "1883:1883"
    assert "mosquitto-auth:/mosquitto/auth:ro" in SERVICES["mosquitto"]["volumes"]
    assert "mosquitto-auth:/mosquitto/auth" in SERVICES["mqtt-credentials"]["volumes"]


def test_compose_broker_refuses_anonymous_clients():
    deployed = conf_settings((ROOT / "deploy/mosquitto/mosquitto.conf").read_text())
    assert deployed["allow_anonymous"] == "false"
    assert deployed["password_file"] == "/mosquitto/auth/passwd"
    assert deployed["acl_file"] == "/mosquitto/auth/acl"
    local = conf_settings(BrokerConfig(port=1, directory=Path("/x")).render())
    assert local["allow_anonymous"] == "false"
    assert local["per_listener_settings"] == deployed["per_listener_settings"] == "false"


def test_env_example_holds_placeholders_only():
    """Every secret in .env.example is a placeholder, which production refuses."""
    example = dict(
        re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", (ROOT / ".env.example").read_text(), re.M)
    )
    secrets = {k: v for k, v in example.items() if k.endswith("PASSWORD")}
    assert len(secrets) == 9
    assert all(is_placeholder(v) for v in secrets.values())


def test_compose_v2_validates_the_file_as_it_is():
    """Compose v2's `config` accepts docker-compose.yml, top-level `name` included, with the
    variables of .env.example. Debian 12's docker-compose 1.29 refuses that key; README's
    Deployment section says so."""
    compose = ensure_compose_v2(ROOT / ".pantau" / "tools")
    assert (compose_major(compose) or 0) >= 2
    example = dict(
        re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", (ROOT / ".env.example").read_text(), re.M)
    )
    env = {k: v for k, v in os.environ.items() if k not in example} | example
    result = subprocess.run(
        [*compose, "--env-file", ".env.example", "-f", "docker-compose.yml", "--profile", "sim",
         "config"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["name"] == COMPOSE["name"] == "pantau"
    resolved = yaml.safe_load(result.stdout)["services"]
    assert set(resolved) == set(SERVICES)
    assert resolved["db-bootstrap"]["command"] == ["db", "bootstrap"]


def test_docker_waits_longer_than_a_service_takes_to_give_up_stopping():
    """A service that cannot stop within PANTAU_STOP_GRACE_S dumps its stacks and exits; Docker
    must not kill it before that (its stop_grace_period is longer)."""
    pantau = {name: s for name, s in SERVICES.items() if s.get("image") == "pantau:latest"}
    assert pantau, "no service runs the Pantau image"
    for name, service in pantau.items():
        grace_s = float(service["environment"]["PANTAU_STOP_GRACE_S"])
        docker_s = float(str(service["stop_grace_period"]).removesuffix("s"))
        assert docker_s > grace_s, name
