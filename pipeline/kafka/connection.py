"""Fail fast, on one line, when Kafka refuses us (TLS or SASL), instead of retrying forever.

librdkafka retries a failed TLS handshake or SASL authentication for ever and only logs why;
aiokafka gives up with "Unable to bootstrap" and logs why. :func:`check_connection` (the
librdkafka side) and :func:`refusal_reason` (the aiokafka side) read those log lines, so a
wrong CA, an expired certificate, a missing client certificate or a wrong password stops
start-up within seconds with the reason. A broker that is merely down is not refused: the
callers' own outage handling applies.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any, Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline.errors import ConfigError

__all__ = ["captured_logs", "check_connection", "refusal_reason", "refused_error"]

log = logging.getLogger(__name__)

# What TLS and SASL failures look like in librdkafka's and aiokafka's log lines.
_REFUSED: Final = re.compile(
    r"SSL handshake failed|\[SSL|CERTIFICATE|certificate|SASL authentication|Sasl"
    r"|[Aa]uthentication failed|TLSV1",
)
# A TLS connection the broker closes at the first request, right after the handshake: the
# broker wanted a client certificate (TLS 1.3 reports that only after the handshake).
_CLOSED_AFTER_TLS: Final = re.compile(
    r"SSL connection closed by peer .*APIVERSION_QUERY|Connection at \S+ closed"
)
_CLIENT_CERTIFICATE_HINT: Final = (
    "the broker closed the TLS connection at the first request: it probably requires a client "
    "certificate it did not get or does not trust (KAFKA_SSL_CERTIFICATE_LOCATION, "
    "KAFKA_SSL_KEY_LOCATION)"
)
_SECRET_LIKE: Final = re.compile(r"(password|secret|token)=\S+", re.IGNORECASE)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def captured_logs(name: str) -> Iterator[list[str]]:
    """Collect the messages logged under ``name`` while the block runs (they still propagate)."""
    handler = _Capture()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def refusal_reason(messages: list[str], tls: bool = False) -> str | None:
    """The last TLS or SASL failure among log ``messages``, on one line (None: none).

    Args:
        messages: librdkafka's or aiokafka's log lines.
        tls: the connection was TLS (then a close at the first request counts too).
    """
    for message in reversed(messages):
        if tls and _CLOSED_AFTER_TLS.search(message):
            return _CLIENT_CERTIFICATE_HINT
        if _REFUSED.search(message):
            text = " ".join(message.split())
            text = re.sub(
                r"^.*?(SSL handshake failed|SASL authentication|\[SSL)", r"\1", text, count=1
            )
            return _SECRET_LIKE.sub(r"\1=***", text)
    return None


def refused_error(bootstrap: str, reason: str) -> ConfigError:
    """The one-line error for a Kafka that refused the connection."""
    return ConfigError(f"Kafka at {bootstrap} refused the connection: {reason}")


def check_connection(config: Mapping[str, Any], timeout_s: float = 5.0) -> bool:
    """Ask the cluster for metadata with the librdkafka ``config``; fail fast on a refusal.

    Args:
        config: librdkafka client settings (``KafkaSettings.client_config()``).
        timeout_s: how long to keep asking while the brokers do not answer.

    Returns:
        True when a broker answered; False when none did within ``timeout_s`` (down, not
        refusing: the caller's outage handling applies).

    Raises:
        ConfigError: the TLS handshake or SASL authentication failed (the reason from
            librdkafka, without secrets).
    """
    name = "pipeline.kafka.connection.librdkafka"
    bootstrap = str(config.get("bootstrap.servers", ""))
    is_tls = str(config.get("security.protocol", "")).upper().endswith("SSL")
    logging.getLogger(name).setLevel(logging.INFO)  # "Disconnected: ..." is an INFO line
    with captured_logs(name) as messages:
        settings: dict[str, Any] = {**config, "logger": logging.getLogger(name)}
        admin = AdminClient(settings)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                admin.list_topics(timeout=min(1.0, timeout_s))
            except KafkaException:
                admin.poll(0)  # serves the queued log lines to the logger
                reason = refusal_reason(messages, tls=is_tls)
                if reason is not None:
                    raise refused_error(bootstrap, reason) from None
                if time.monotonic() >= deadline:
                    log.warning(
                        "no Kafka broker at %s answered within %.0f s", bootstrap, timeout_s
                    )
                    return False
                continue
            return True
