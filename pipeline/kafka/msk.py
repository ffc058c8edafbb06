"""Amazon MSK IAM authentication (OAUTHBEARER with a SigV4-signed token), the ``msk`` extra.

``KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam`` signs tokens with AWS's
``aws-msk-iam-sasl-signer-python`` from the usual AWS credential chain (environment, profile,
web identity, instance role): librdkafka gets them through ``oauth_cb``
(:func:`oauth_callback`), the workers' aiokafka through :class:`MskIamTokenProvider`. Tokens
are signed locally (no network call) and replaced at 80 % of their lifetime. No credential or
token is logged.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable
from typing import Any

from aiokafka.abc import AbstractTokenProvider

from pipeline.errors import ConfigError
from pipeline.kafka.oauth import refresh_at

__all__ = ["SIGNER_MODULE", "MskIamTokenProvider", "generate_token", "oauth_callback"]

SIGNER_MODULE = "aws_msk_iam_sasl_signer"
"""The signer package's module (``pip install 'genesys-kafka-pipeline[msk]'``)."""


def generate_token(region: str) -> tuple[str, float]:
    """A fresh MSK IAM token for ``region`` and when it expires (epoch seconds).

    Raises:
        ConfigError: the signer is not installed, or no AWS credentials were found.
    """
    try:
        signer: Any = importlib.import_module(f"{SIGNER_MODULE}.MSKAuthTokenProvider")
    except ImportError:
        raise ConfigError(
            "KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam needs the msk extra: "
            "pip install 'genesys-kafka-pipeline[msk]'"
        ) from None
    boto_error: Any = importlib.import_module("botocore.exceptions").BotoCoreError
    try:
        token, expiry_ms = signer.generate_auth_token(region)
    except boto_error as exc:  # NoCredentialsError and friends
        raise ConfigError(f"MSK IAM: cannot sign a token ({type(exc).__name__}: {exc})") from None
    return str(token), float(expiry_ms) / 1000.0


def oauth_callback(region: str) -> Callable[[str], tuple[str, float]]:
    """librdkafka's ``oauth_cb``: called with the (unused) config string, returns (token,
    expiry in epoch seconds); librdkafka calls it again before the token expires."""

    def callback(_config: str) -> tuple[str, float]:
        return generate_token(region)

    return callback


class MskIamTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """aiokafka's OAUTHBEARER token callback for MSK IAM.

    Args:
        region: the cluster's AWS region.
        clock: epoch seconds (tests move it).
    """

    def __init__(self, region: str, clock: Callable[[], float] = time.time) -> None:
        self._region, self._clock = region, clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A valid token: the cached one, or a newly signed one once due for refresh.

        Raises:
            ConfigError: no signer or no AWS credentials (:func:`generate_token`).
        """
        async with self._lock:
            now = self._clock()
            if self._token is not None and now < self._refresh_at:
                return self._token
            token, expires_at = await asyncio.to_thread(generate_token, self._region)
            self._token, self._refresh_at = token, refresh_at(now, expires_at - now)
            return token
