"""cli.settings: in development a command gets the local stack's URLs for its own service;
in production, or with the URLs set, it gets only what it was given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.settings import ApiSettings
from cli.settings import load
from ingest.settings import IngestSettings
from pantau.errors import ConfigError


def _state(path: Path) -> None:
    (path / "stack.json").write_text(
        json.dumps(
            {
                "database_url": "postgresql://postgres@h:5/pantau",
                "mqtt_url": "mqtt://pantau-admin:a@h:6",
                "database_urls": {
                    "ingest": "postgresql://pantau_ingest_user:i@h:5/pantau",
                    "api": "postgresql://pantau_api_user:p@h:5/pantau",
                },
                "mqtt_urls": {"ingest": "mqtt://pantau-ingest:m@h:6"},
            }
        )
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("PANTAU_DATABASE_URL", "PANTAU_MQTT_URL", "PANTAU_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PANTAU_STATE_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    return tmp_path


def test_development_commands_take_their_own_logins_from_the_stack(clean_env: Path) -> None:
    _state(clean_env)
    ingest = load(IngestSettings, client_id="w1", batch_max_readings=None)
    assert ingest.resolved_database_url() == "postgresql://pantau_ingest_user:i@h:5/pantau"
    assert ingest.resolved_mqtt_url() == "mqtt://pantau-ingest:m@h:6"
    assert ingest.client_id == "w1"
    assert ingest.batch_max_readings == 5000  # None: the option was not given
    api = load(ApiSettings)
    assert api.resolved_database_url() == "postgresql://pantau_api_user:p@h:5/pantau"
    # a service with no account of its own on the stack falls back to the operator's
    assert api.resolved_mqtt_url() == "mqtt://pantau-admin:a@h:6"


def test_urls_set_win_over_the_stack(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _state(clean_env)
    monkeypatch.setenv("PANTAU_DATABASE_URL", "postgresql://mine@db/pantau")
    settings = load(IngestSettings)
    assert settings.resolved_database_url() == "postgresql://mine@db/pantau"
    assert settings.resolved_mqtt_url() == "mqtt://pantau-ingest:m@h:6"


def test_production_never_reads_the_stack(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _state(clean_env)
    monkeypatch.setenv("PANTAU_ENV", "production")
    with pytest.raises(ConfigError, match="PANTAU_DATABASE_URL is not set"):
        load(IngestSettings).resolved_database_url()


def test_no_stack_leaves_the_urls_unset_with_a_fix(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match="PANTAU_MQTT_URL is not set") as info:
        load(IngestSettings).resolved_mqtt_url()
    assert "pantau stack up" in info.value.fix


def test_a_corrupt_stack_state_is_a_clear_error(clean_env: Path) -> None:
    (clean_env / "stack.json").write_text("{not json")
    with pytest.raises(ConfigError, match="corrupt") as info:
        load(IngestSettings)
    assert "pantau stack up" in info.value.fix
