"""docker-compose.yml, the Dockerfile and the broker config, checked without a Docker engine."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pantau.stack.mosquitto import BrokerConfig

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def conf_settings(text: str) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in text.splitlines() if line and line[0] != "#")
    return {p[0]: p[1] for p in pairs if len(p) == 2 and p[0] != "log_type"}


def test_services_and_their_order():
    assert set(SERVICES) >= {"mosquitto", "timescaledb", "migrate", "ingest", "simulator"}
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


def test_compose_broker_is_as_durable_as_the_local_stack():
    deployed = conf_settings((ROOT / "deploy/mosquitto/mosquitto.conf").read_text())
    local = conf_settings(BrokerConfig(port=1, directory=Path("/x")).render())
    for key in ("persistence", "persistent_client_expiration", "max_queued_messages",
                "max_inflight_messages", "max_packet_size"):  # fmt: skip
        assert deployed[key] == local[key], key
    assert int(deployed["max_queued_messages"]) > 0
