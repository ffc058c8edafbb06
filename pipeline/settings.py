"""Process settings from the environment (pydantic-settings), one frozen model per concern.

Only ``cli.py`` constructs these: library code receives settings or plain arguments and never
reads ``os.environ``. Secrets are ``SecretStr`` end to end.

Environment variables use the names operators already know: ``GENESYS_CLIENT_ID``,
``GENESYS_CLIENT_SECRET``, ``GENESYS_REGION`` or ``GENESYS_API_URL``.
"""

from __future__ import annotations

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.core.regions import REGION_API_HOSTS, login_base
from pipeline.errors import ConfigError

__all__ = ["GenesysSettings"]


class GenesysSettings(BaseSettings):
    """Where and as whom to reach Genesys Cloud.

    Attributes:
        client_id: OAuth client id (client-credentials grant).
        client_secret: its secret.
        region: an SDK region name such as ``eu_west_1`` (reference §2.1).
        api_url: an explicit API base URL; wins over ``region`` (the emulator:
            ``http://127.0.0.1:8089``).
    """

    model_config = SettingsConfigDict(env_prefix="GENESYS_", frozen=True, extra="ignore")

    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    region: str | None = None
    api_url: str | None = None

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is not None and value not in REGION_API_HOSTS:
            raise ValueError(f"unknown region {value!r}; one of {', '.join(REGION_API_HOSTS)}")
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"GENESYS_API_URL must start with http:// or https://, got {value!r}")
        return value.rstrip("/") if value else value

    def api_base(self, spec_region: str | None = None, spec_api_url: str | None = None) -> str:
        """The API base: environment first, then the subscription file's ``genesys`` section.

        Raises:
            ConfigError: no region or URL anywhere.
        """
        if self.api_url:
            return self.api_url
        if self.region:
            return REGION_API_HOSTS[self.region]
        if spec_api_url:
            return spec_api_url.rstrip("/")
        if spec_region and spec_region in REGION_API_HOSTS:
            return REGION_API_HOSTS[spec_region]
        raise ConfigError(
            "no Genesys location: set GENESYS_API_URL or GENESYS_REGION "
            "(or genesys.region / genesys.api_url in the subscription file)"
        )

    def login_base(self, api_base: str) -> str:
        """The login base for ``api_base`` (reference §2 rule)."""
        return login_base(api_base)

    def has_credentials(self) -> bool:
        """True when both the client id and the secret are set."""
        return bool(self.client_id and self.client_secret.get_secret_value())

    def require_credentials(self) -> None:
        """Raises ConfigError naming what is missing (never the secret itself)."""
        missing = [
            name
            for name, value in (
                ("GENESYS_CLIENT_ID", self.client_id),
                ("GENESYS_CLIENT_SECRET", self.client_secret.get_secret_value()),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"missing credentials: set {' and '.join(missing)}")
