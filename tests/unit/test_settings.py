"""Genesys settings from the environment: location, credentials, secrets kept secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.errors import ConfigError
from pipeline.settings import GenesysSettings

CANARY = "canary-client-secret-42"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET", "GENESYS_REGION", "GENESYS_API_URL"):
        monkeypatch.delenv(name, raising=False)


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENESYS_CLIENT_ID", "cid")
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", CANARY)
    monkeypatch.setenv("GENESYS_REGION", "eu_west_1")
    settings = GenesysSettings()
    assert settings.client_id == "cid"
    assert settings.api_base() == "https://api.mypurecloud.ie"
    assert settings.login_base(settings.api_base()) == "https://login.mypurecloud.ie"
    assert CANARY not in repr(settings)
    assert CANARY not in str(settings.model_dump())


def test_api_url_wins_over_region_and_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENESYS_API_URL", "http://127.0.0.1:8089/")
    monkeypatch.setenv("GENESYS_REGION", "eu_west_1")
    assert GenesysSettings().api_base("us_east_1", "https://x") == "http://127.0.0.1:8089"


def test_file_location_is_the_fallback() -> None:
    assert GenesysSettings().api_base("ap_southeast_2") == "https://api.mypurecloud.com.au"
    assert GenesysSettings().api_base(None, "https://api.example/") == "https://api.example"


def test_no_location_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="GENESYS_API_URL or GENESYS_REGION"):
        GenesysSettings().api_base()


def test_bad_region_and_url_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENESYS_REGION", "mars_north_1")
    with pytest.raises(ValidationError, match="unknown region"):
        GenesysSettings()
    monkeypatch.delenv("GENESYS_REGION")
    monkeypatch.setenv("GENESYS_API_URL", "ftp://x")
    with pytest.raises(ValidationError, match="must start with http"):
        GenesysSettings()


def test_missing_credentials_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENESYS_CLIENT_ID", "cid")
    settings = GenesysSettings()
    assert not settings.has_credentials()
    with pytest.raises(ConfigError, match=r"set GENESYS_CLIENT_SECRET$"):
        settings.require_credentials()
