"""Open a Genesys connection: one httpx client, one token provider, one REST client.

Every caller of one OAuth client must share these three (the token cache and the request
budgets are per client), so services create them once here and pass the REST client around.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from pydantic import SecretStr

from pipeline.core.genesys.regions import login_base
from pipeline.genesys.auth import TokenObserver, TokenProvider
from pipeline.genesys.rest import GenesysRest, RestObserver

__all__ = ["genesys_client"]


@contextlib.asynccontextmanager
async def genesys_client(
    api_base: str,
    client_id: str,
    client_secret: SecretStr,
    *,
    timeout_s: float = 30.0,
    observer: (TokenObserver | RestObserver) | None = None,
) -> AsyncIterator[GenesysRest]:
    """A ready REST client for ``api_base``; login goes to the matching login host (§2).

    Args:
        api_base: the API base URL.
        client_id: the OAuth client id.
        client_secret: its secret.
        timeout_s: per-request timeout (the SDK has none, docs/genesys-api.md §8; we do).
        observer: receives token and REST events (an object may implement both hook sets).
    """
    async with httpx.AsyncClient(base_url=api_base, timeout=timeout_s) as http:
        tokens = TokenProvider(
            http,
            login_base(api_base),
            client_id,
            client_secret,
            observer=observer if isinstance(observer, TokenObserver) else None,
        )
        yield GenesysRest(
            http, tokens, observer=observer if isinstance(observer, RestObserver) else None
        )
