"""Process settings from the environment (pydantic-settings), one frozen model per concern.

Only ``pipeline.cli`` constructs these: library code receives settings or plain arguments
and never reads ``os.environ``. Secrets are ``SecretStr`` end to end.

Environment variables use the names operators already know: ``GENESYS_CLIENT_ID``,
``GENESYS_CLIENT_SECRET``, ``GENESYS_REGION`` or ``GENESYS_API_URL``.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.core.genesys.regions import REGION_API_HOSTS, login_base
from pipeline.errors import ConfigError
from pipeline.settings_rules import kafka_problems, registry_problems, require_secure_url

__all__ = [
    "DashboardSettings",
    "GenesysSettings",
    "KafkaSettings",
    "ProducerSettings",
    "RegistrySettings",
    "ShutdownSettings",
    "WorkerSettings",
]

log = logging.getLogger(__name__)


def _tls_files(settings: KafkaSettings | RegistrySettings) -> dict[str, str]:
    """The set TLS file settings (and key password) under their client config keys."""
    pairs = (
        ("ssl.ca.location", settings.ssl_ca_location),
        ("ssl.certificate.location", settings.ssl_certificate_location),
        ("ssl.key.location", settings.ssl_key_location),
        ("ssl.key.password", _reveal(settings.ssl_key_password)),
    )
    return {key: value for key, value in pairs if value}


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


class GenesysSettings(BaseSettings):
    """Where and as whom to reach Genesys Cloud.

    Attributes:
        client_id: OAuth client id (client-credentials grant).
        client_secret: its secret.
        region: an SDK region name such as ``eu_west_1`` (docs/genesys-api.md §2.1).
        api_url: an explicit API base URL; wins over ``region`` (the emulator:
            ``http://127.0.0.1:8089``).
        allow_plain_http: send the client secret over plain ``http://`` to a host other than
            this machine (a compose network's emulator only; never for Genesys Cloud).
    """

    model_config = SettingsConfigDict(env_prefix="GENESYS_", frozen=True, extra="ignore")

    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    region: str | None = None
    api_url: str | None = None
    allow_plain_http: bool = False

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
            ConfigError: no region or URL anywhere; a plain-HTTP URL to another machine (the
                client secret would travel in clear) unless ``allow_plain_http``.
        """
        base = self._api_base(spec_region, spec_api_url)
        if not self.allow_plain_http:
            require_secure_url(base, "the Genesys client secret")
        return base

    def _api_base(self, spec_region: str | None, spec_api_url: str | None) -> str:
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
        """The login base for ``api_base`` (docs/genesys-api.md §2 rule)."""
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


class KafkaSettings(BaseSettings):
    """How to reach Kafka (``KAFKA_*``, librdkafka's names upper-cased); checked when built.

    One model for both clients: :meth:`client_config` gives librdkafka's settings (producer,
    admin) and :func:`pipeline.kafka.security.aiokafka_options` the worker consumers'. An
    inconsistent combination raises :class:`~pipeline.errors.ConfigError`, one line per
    problem, before any client is built.

    Attributes:
        bootstrap_servers: ``host:port[,host:port]``.
        security_protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (any case).
        sasl_mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (SASL protocols
            only).
        sasl_username: SASL user (PLAIN, SCRAM; Confluent Cloud: the API key).
        sasl_password: its password (Confluent Cloud: the API secret).
        sasl_oauthbearer_token_endpoint_url: OAUTHBEARER: the OIDC token endpoint
            (client-credentials grant; https unless on this machine).
        sasl_oauthbearer_client_id: OAUTHBEARER: the OIDC client id.
        sasl_oauthbearer_client_secret: OAUTHBEARER: its secret.
        sasl_oauthbearer_scope: OAUTHBEARER: the scope to ask for, if the provider needs one.
        sasl_oauthbearer_method: OAUTHBEARER token source: ``oidc`` (the client credentials
            above) or ``aws_msk_iam`` (Amazon MSK IAM: AWS credentials from the usual chain,
            tokens signed by aws-msk-iam-sasl-signer-python, the ``msk`` extra).
        sasl_oauthbearer_aws_region: ``aws_msk_iam``: the cluster's AWS region.
        ssl_ca_location: PEM file of the CA(s) that signed the brokers' certificates
            (default: the system's trust store).
        ssl_certificate_location: PEM client certificate for mutual TLS (with the key).
        ssl_key_location: PEM private key of that certificate.
        ssl_key_password: the key's password, if it is encrypted.
        ssl_endpoint_identification_algorithm: ``https`` checks the broker's host name
            against its certificate; ``none`` does not (logged as a warning).
        compression_type: zstd (default), lz4, snappy, gzip or none.
        linger_ms: how long to batch records.
        delivery_timeout_ms: librdkafka's retry window for one record (an outage shorter than
            this loses and duplicates nothing).
    """

    model_config = SettingsConfigDict(env_prefix="KAFKA_", frozen=True, extra="ignore")

    bootstrap_servers: str = "localhost:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_oauthbearer_token_endpoint_url: str | None = None
    sasl_oauthbearer_client_id: str | None = None
    sasl_oauthbearer_client_secret: SecretStr | None = None
    sasl_oauthbearer_scope: str | None = None
    sasl_oauthbearer_method: str = "oidc"
    sasl_oauthbearer_aws_region: str | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    ssl_endpoint_identification_algorithm: str = "https"
    compression_type: str = "zstd"
    linger_ms: int = 5
    delivery_timeout_ms: int = 300_000

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("ssl_endpoint_identification_algorithm", "sasl_oauthbearer_method",
                     mode="before")  # fmt: skip
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        problems = kafka_problems(self)
        if problems:
            raise ConfigError("\n".join(problems))
        if self.uses_ssl and self.ssl_endpoint_identification_algorithm == "none":
            log.warning(
                "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM=none: broker host names are not "
                "checked against their certificates"
            )
        return self

    @property
    def uses_ssl(self) -> bool:
        """True for SSL and SASL_SSL."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """True for SASL_PLAINTEXT and SASL_SSL."""
        return self.security_protocol.startswith("SASL_")

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings (secrets included: pass straight to the client, never log).

        For MSK IAM, build clients from :func:`pipeline.kafka.security.librdkafka_config`
        instead: it adds the token callback.
        """
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.uses_sasl:
            config.update(self._sasl_config())
        if self.uses_ssl:
            config["ssl.endpoint.identification.algorithm"] = (
                self.ssl_endpoint_identification_algorithm
            )
            config.update(_tls_files(self))
        return config

    def _sasl_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"sasl.mechanism": self.sasl_mechanism}
        if self.sasl_mechanism != "OAUTHBEARER":
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = _reveal(self.sasl_password)
            return config
        if self.sasl_oauthbearer_method == "aws_msk_iam":
            return config  # pipeline.kafka.security.librdkafka_config adds the oauth_cb
        config.update(
            {
                "sasl.oauthbearer.method": "oidc",
                "sasl.oauthbearer.token.endpoint.url": self.sasl_oauthbearer_token_endpoint_url,
                "sasl.oauthbearer.client.id": self.sasl_oauthbearer_client_id,
                "sasl.oauthbearer.client.secret": _reveal(self.sasl_oauthbearer_client_secret),
            }
        )
        if self.sasl_oauthbearer_scope:
            config["sasl.oauthbearer.scope"] = self.sasl_oauthbearer_scope
        return config

    def producer_config(self) -> dict[str, Any]:
        """The client settings plus the producer's batching and delivery window."""
        return {
            **self.client_config(),
            "compression.type": self.compression_type,
            "linger.ms": self.linger_ms,
            "delivery.timeout.ms": self.delivery_timeout_ms,
        }


class RegistrySettings(BaseSettings):
    """Where the Confluent-compatible schema registry is (``SCHEMA_REGISTRY_*``); checked
    when built (files readable, one kind of credentials, no credentials over plain HTTP to
    another machine).

    Attributes:
        url: the registry's base URL.
        basic_auth_user_info: ``user:password`` for HTTP basic auth (Confluent Cloud: the
            registry API key and secret).
        bearer_token: a static bearer token, sent as ``Authorization: Bearer ...``.
        bearer_logical_cluster: the ``target-sr-cluster`` header sent with the bearer token
            (Confluent Cloud: the registry's ``lsrc-...`` id).
        ssl_ca_location: PEM file of the CA that signed the registry's certificate (default:
            the certifi bundle).
        ssl_certificate_location: PEM client certificate for mutual TLS (with the key).
        ssl_key_location: PEM private key of that certificate.
        ssl_key_password: the key's password, if it is encrypted.
        timeout_s: seconds each registry request may take: a hung registry fails each call
            after this, never hangs the caller (the producer retries its start-up check; a
            worker treats it as down, stops fetching and asks again later).
    """

    model_config = SettingsConfigDict(env_prefix="SCHEMA_REGISTRY_", frozen=True, extra="ignore")

    url: str = "http://localhost:8081"
    basic_auth_user_info: SecretStr | None = None
    bearer_token: SecretStr | None = None
    bearer_logical_cluster: str = ""
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    timeout_s: float = 10.0

    @model_validator(mode="after")
    def _consistent(self) -> RegistrySettings:
        problems = registry_problems(self)
        if problems:
            raise ConfigError("\n".join(problems))
        return self

    def client_config(self) -> dict[str, Any]:
        """Extra ``SchemaRegistryClient`` settings (auth, TLS, timeout), secrets included:
        never log."""
        config: dict[str, Any] = {"timeout": self.timeout_s}
        if self.basic_auth_user_info is not None and self.basic_auth_user_info.get_secret_value():
            config["basic.auth.user.info"] = self.basic_auth_user_info.get_secret_value()
        if self.bearer_token is not None and self.bearer_token.get_secret_value():
            config["bearer.auth.credentials.source"] = "STATIC_TOKEN"
            config["bearer.auth.token"] = self.bearer_token.get_secret_value()
            config["bearer.auth.logical.cluster"] = self.bearer_logical_cluster
        config.update(_tls_files(self))
        return config


class ProducerSettings(BaseSettings):
    """The producer service's own knobs (``PIPELINE_*``).

    Attributes:
        topic_prefix: topics are ``<prefix>.metrics``, ``.current.v2``, ``.audit``, ``.dlq``.
        instance: this process's name in records and audit (default ``producer-<shard>``).
        partitions: partitions of topics the producer creates.
        replication: their replication factor; -1 (the default) leaves it to the broker's
            ``default.replication.factor`` (KIP-464).
        max_in_flight: unacknowledged records before the stream is slowed down.
        ops_port: port of ``/metrics``, ``/healthz`` and ``/readyz`` (0: any free port).
        ops_host: interface of that server.
        auto_register: register the schemas at start (local development only; production
            runs ``pipeline schemas register`` once instead).
        heartbeat_s: seconds between ``producer.heartbeat`` audit records (the workers'
            sign of life on a quiet org; they also carry the dead-letter count).
        shutdown_timeout_s: the whole shutdown (channels, audit facts, Kafka flush) ends
            within this many seconds after SIGTERM, whatever Kafka does.
        publish_stall_s: a hand-off to Kafka blocked longer than this makes that interval a
            gap of the Genesys stream, backfilled once Kafka takes records again.
        max_frame_bytes: the largest WebSocket message read from Genesys; a larger one is
            dead-lettered (without its bytes) and the socket reconnects.
        max_queued_facts: the producer's own audit facts held while Kafka is unreachable;
            more are counted and summarised (``audit.suppressed``).
        max_dead_letter_bytes: the raw bytes a dead letter keeps at most (the rest is cut,
            and the reason says so), so that it fits in a Kafka record.
    """

    model_config = SettingsConfigDict(env_prefix="PIPELINE_", frozen=True, extra="ignore")

    topic_prefix: str = "genesys"
    instance: str | None = None
    partitions: int = 6
    replication: int = -1
    max_in_flight: int = 50_000
    ops_port: int = 9100
    ops_host: str = "0.0.0.0"  # noqa: S104 - a container's metrics and probes port
    auto_register: bool = False
    heartbeat_s: float = 20.0
    shutdown_timeout_s: float = 20.0
    publish_stall_s: float = 30.0
    max_frame_bytes: int = 1 << 20
    max_queued_facts: int = 1000
    max_dead_letter_bytes: int = 256 * 1024


class WorkerSettings(BaseSettings):
    """Settings shared by the consumer workers (``PIPELINE_*``).

    Attributes:
        topic_prefix: the contract's topic prefix.
        instance: this worker's name in reports and audit (default ``<kind>-<hostname>``).
        group_id: the consumer group (default ``genesys-<kind>``): instances of one group
            share the partitions.
        session_timeout_ms: group session timeout (real Kafka ≥ 6000).
        ops_port: port of ``/metrics``, ``/healthz``, ``/readyz`` (0: any free port).
        ops_host: interface of that server.
        max_record_bytes: the largest Kafka record the worker writes (librdkafka's and the
            broker's ``message.max.bytes``, about 1 MB by default): a dead letter whose bytes
            do not fit is cut to fit, and says so.
        replication: replication factor of a topic the worker creates (the freshness
            topic); -1 (the default) leaves it to the broker's ``default.replication.factor``.
    """

    model_config = SettingsConfigDict(env_prefix="PIPELINE_", frozen=True, extra="ignore")

    topic_prefix: str = "genesys"
    instance: str | None = None
    group_id: str | None = None
    session_timeout_ms: int = 10_000
    ops_port: int = 9101
    ops_host: str = "0.0.0.0"  # noqa: S104 - a container's metrics and probes port
    max_record_bytes: int = 1_000_000
    replication: int = -1


class DashboardSettings(BaseSettings):
    """Where and how the dashboard worker pushes (``DASHBOARD_*``).

    Attributes:
        url: the dashboard's push endpoint.
        secret: the HMAC-SHA256 key for the signature header.
        push_interval_s: seconds between pushes (coalescing window).
        max_batch: values per push at most.
        max_batch_bytes: bytes of JSON per push at most, below the usual 1 MiB request
            limit of web servers (a single larger value is still sent, alone).
        max_pending: keys waiting for a push before the worker stops fetching (it also
            stops while the circuit is open) until pushes catch up.
        timeout_s: per-request timeout.
        failure_threshold: failures in a row that open the circuit breaker.
        reset_after_s: seconds the circuit stays open before one trial push.
    """

    model_config = SettingsConfigDict(env_prefix="DASHBOARD_", frozen=True, extra="ignore")

    url: str = "http://localhost:8088/api/push"
    secret: SecretStr = SecretStr("")
    push_interval_s: float = 0.5
    max_batch: int = 5_000
    max_batch_bytes: int = 900 * 1024
    max_pending: int = 100_000
    timeout_s: float = 10.0
    failure_threshold: int = 5
    reset_after_s: float = 30.0


class ShutdownSettings(BaseSettings):
    """How every long-running command stops (``PIPELINE_*``).

    Attributes:
        shutdown_timeout_s: seconds a command has, after SIGINT, SIGTERM or the end of
            ``--duration``, to flush, print its report and exit; past three quarters of it the
            work still pending is logged and cancelled, at the full deadline the process exits
            1 regardless (its child processes killed).
    """

    model_config = SettingsConfigDict(env_prefix="PIPELINE_", frozen=True, extra="ignore")

    shutdown_timeout_s: float = Field(default=20.0, gt=0)
