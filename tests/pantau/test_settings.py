"""Settings: URL parsing and masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.settings import IngestSettings
from ops.settings import BootstrapSettings
from pantau.errors import ConfigError
from pantau.masking import mask_url
from pantau.mqtt import MqttEndpoint
from simulators.settings import SimulateSettings


def test_mask_url_hides_passwords_only():
    assert mask_url("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_mqtt_url():
    ep = MqttEndpoint.parse("mqtt://dev%40x:p%3Aw@broker:1884")
    assert (ep.host, ep.port, ep.username, ep.password) == ("broker", 1884, "dev@x", "p:w")
    assert ep.url() == "mqtt://dev@x:***@broker:1884"
    assert MqttEndpoint.parse("mqtt://broker").port == 1883


@pytest.mark.parametrize("url", ["http://broker:1883", "mqtt://", "mqtt://h:99999"])
def test_bad_mqtt_urls(url):
    with pytest.raises(ConfigError):
        MqttEndpoint.parse(url)


def test_shared_names_and_prefixed_names(monkeypatch, tmp_path):
    monkeypatch.setenv("PANTAU_DATABASE_URL", "postgresql://u:pw@h/db")
    monkeypatch.setenv("PANTAU_INGEST_CLIENT_ID", "w7")
    settings = IngestSettings()
    assert settings.client_id == "w7"
    assert settings.resolved_database_url() == "postgresql://u:pw@h/db"
    assert "pw" not in str(settings.masked())


def test_no_url_explains(monkeypatch, tmp_path):
    monkeypatch.delenv("PANTAU_DATABASE_URL", raising=False)
    monkeypatch.delenv("PANTAU_MQTT_URL", raising=False)
    monkeypatch.setenv("PANTAU_STATE_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="PANTAU_DATABASE_URL is not set") as info:
        IngestSettings().resolved_database_url()
    assert "pantau stack up" in info.value.fix
    with pytest.raises(ConfigError, match="PANTAU_MQTT_URL is not set"):
        IngestSettings().resolved_mqtt()


def test_services_never_read_the_local_stack(monkeypatch, tmp_path):
    """A service's settings take no URL from a stack state file, even one that is there."""
    (tmp_path / "stack.json").write_text(
        '{"database_url": "postgresql://x@h/db", "mqtt_url": "mqtt://h:1"}'
    )
    monkeypatch.delenv("PANTAU_DATABASE_URL", raising=False)
    monkeypatch.setenv("PANTAU_STATE_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="is not set"):
        IngestSettings().resolved_database_url()


def test_secrets_come_from_files_named_by_a_file_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url_file, password_file = tmp_path / "url", tmp_path / "pw"
    url_file.write_text("postgresql://u:from-a-file-31@db/pantau\n")
    password_file.write_text("device-secret-77")
    monkeypatch.setenv("PANTAU_DATABASE_URL_FILE", str(url_file))
    monkeypatch.setenv("PANTAU_SIM_PASSWORD_FILE", str(password_file))
    monkeypatch.setenv("PANTAU_DB_OWNER_PASSWORD_FILE", str(password_file))
    sim = SimulateSettings()
    assert sim.database_url is not None
    assert sim.database_url.get_secret_value() == "postgresql://u:from-a-file-31@db/pantau"
    assert sim.password.get_secret_value() == "device-secret-77"
    assert BootstrapSettings().owner_password.get_secret_value() == "device-secret-77"
    # The variable itself wins over its _FILE; a file that cannot be read is a clear error.
    monkeypatch.setenv("PANTAU_SIM_PASSWORD", "from-the-environment")
    assert SimulateSettings().password.get_secret_value() == "from-the-environment"
    monkeypatch.setenv("PANTAU_DATABASE_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"PANTAU_DATABASE_URL_FILE names .*cannot be read"):
        IngestSettings()
