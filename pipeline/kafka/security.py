"""The worker consumers' side of :class:`~pipeline.settings.KafkaSettings`: aiokafka options.

librdkafka (producer, admin) takes :meth:`KafkaSettings.client_config` as it is; aiokafka
needs an ``ssl.SSLContext`` built from the same CA, certificate and key files, its own SASL
argument names, and for OAUTHBEARER a token provider
(:class:`~pipeline.kafka.oauth.OidcTokenProvider`) that does what librdkafka's built-in
``sasl.oauthbearer.method=oidc`` does.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from pipeline.errors import ConfigError
from pipeline.kafka.oauth import OidcTokenProvider
from pipeline.settings import KafkaSettings

__all__ = ["SaslRedactionFilter", "aiokafka_options", "librdkafka_config", "ssl_context"]


class SaslRedactionFilter(logging.Filter):
    """Blanks aiokafka's DEBUG dump of SaslAuthenticate requests.

    ``aiokafka.conn`` logs every request at DEBUG, and a SaslAuthenticate request carries the
    PLAIN password, the SCRAM proof or the OAUTHBEARER token in clear. The record is kept
    (it still shows the exchange happened); its request is replaced with ``<redacted>``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the request argument of a SaslAuthenticate record; keep every record."""
        args = record.args
        if isinstance(args, tuple) and any("SaslAuthenticate" in type(a).__name__ for a in args):
            record.args = tuple(
                "<SaslAuthenticate request redacted>"
                if "SaslAuthenticate" in type(a).__name__
                else a
                for a in args
            )
        return True


_REDACTION = SaslRedactionFilter()


def _redact_aiokafka_sasl() -> None:
    logger = logging.getLogger("aiokafka.conn")
    if _REDACTION not in logger.filters:
        logger.addFilter(_REDACTION)


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """A TLS client context from the ``KAFKA_SSL_*`` files (the system's CAs by default).

    Raises:
        ConfigError: a file is not PEM, the key does not match the certificate, or the key
            password is wrong (the message names the variables, never the password).
    """
    try:
        context = ssl.create_default_context(cafile=kafka.ssl_ca_location)
    except ssl.SSLError as exc:
        raise ConfigError(f"KAFKA_SSL_CA_LOCATION: not a PEM CA file ({exc.reason})") from None
    if kafka.ssl_endpoint_identification_algorithm == "none":
        context.check_hostname = False
    if kafka.ssl_certificate_location:
        password = kafka.ssl_key_password
        try:
            context.load_cert_chain(
                kafka.ssl_certificate_location,
                kafka.ssl_key_location,
                password.get_secret_value() if password is not None else None,
            )
        except ssl.SSLError as exc:
            raise ConfigError(
                "KAFKA_SSL_CERTIFICATE_LOCATION / KAFKA_SSL_KEY_LOCATION: cannot load the client "
                f"certificate and key ({exc.reason}; a wrong KAFKA_SSL_KEY_PASSWORD?)"
            ) from None
    return context


def librdkafka_config(kafka: KafkaSettings, *, producer: bool = False) -> dict[str, Any]:
    """librdkafka settings for a client (``producer``: with batching and delivery window).

    :meth:`KafkaSettings.client_config` plus, for MSK IAM, the ``oauth_cb`` that signs tokens
    (a callable cannot come from the settings module, which stays free of Kafka imports).

    Raises:
        ConfigError: MSK IAM without the ``msk`` extra.
    """
    config = kafka.producer_config() if producer else kafka.client_config()
    if kafka.uses_sasl and kafka.sasl_oauthbearer_method == "aws_msk_iam":
        from pipeline.kafka.msk import oauth_callback  # the optional msk extra

        config["oauth_cb"] = oauth_callback(kafka.sasl_oauthbearer_aws_region or "")
    return config


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaConsumer`` / ``AIOKafkaProducer`` (secrets included).

    Args:
        kafka: the checked settings.

    Returns:
        ``bootstrap_servers``, ``security_protocol`` and, as the protocol needs them,
        ``ssl_context`` and the ``sasl_*`` arguments.

    Raises:
        ConfigError: the TLS files cannot be loaded (:func:`ssl_context`).
    """
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.uses_ssl:
        options["ssl_context"] = ssl_context(kafka)
    if not kafka.uses_sasl:
        return options
    _redact_aiokafka_sasl()
    options["sasl_mechanism"] = kafka.sasl_mechanism
    if kafka.sasl_mechanism == "OAUTHBEARER" and kafka.sasl_oauthbearer_method == "aws_msk_iam":
        from pipeline.kafka.msk import MskIamTokenProvider  # the optional msk extra

        region = kafka.sasl_oauthbearer_aws_region or ""
        options["sasl_oauth_token_provider"] = MskIamTokenProvider(region)
    elif kafka.sasl_mechanism == "OAUTHBEARER":
        options["sasl_oauth_token_provider"] = OidcTokenProvider.from_settings(kafka)
    else:
        options["sasl_plain_username"] = kafka.sasl_username
        password = kafka.sasl_password
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options
