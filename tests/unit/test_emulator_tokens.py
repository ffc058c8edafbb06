"""OAuth client-credentials grant and bearer checks of the emulated login service."""

from __future__ import annotations

import random

import pytest

from pipeline.emulator.errors import EmulatorError, OAuthError
from pipeline.emulator.state.tokens import ClientId, OAuthClientConfig, TokenId, TokenRegistry

CANARY = "canary-secret-7f3a"
CLIENT = ClientId("client-a")


def registry(*, lifetime: int = 86399, bad_client_status: int = 401) -> TokenRegistry:
    config = OAuthClientConfig(CLIENT, CANARY, token_lifetime=lifetime)
    return TokenRegistry([config], random.Random(1), bad_client_status=bad_client_status)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_registry_issues_a_bearer_token_with_the_default_lifetime() -> None:
    grant = registry().issue("client-a", CANARY, "client_credentials", now=0.0)
    body = grant.to_json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    assert isinstance(body["access_token"], str)
    assert len(body["access_token"]) >= 32


def test_registry_issues_distinct_tokens_with_distinct_handles() -> None:
    tokens = registry()
    first = tokens.issue("client-a", CANARY, "client_credentials", now=0.0)
    second = tokens.issue("client-a", CANARY, "client_credentials", now=0.0)
    assert first.access_token != second.access_token
    assert first.token_id != second.token_id


def test_registry_is_repeatable_with_the_same_seed() -> None:
    one = registry().issue("client-a", CANARY, "client_credentials", now=0.0)
    two = registry().issue("client-a", CANARY, "client_credentials", now=0.0)
    assert one.access_token == two.access_token


def test_token_authenticates_until_its_lifetime_ends() -> None:
    tokens = registry(lifetime=100)
    grant = tokens.issue("client-a", CANARY, "client_credentials", now=10.0)
    principal = tokens.authenticate(bearer(grant.access_token), now=109.9)
    assert (principal.client_id, principal.token_id) == (CLIENT, grant.token_id)
    with pytest.raises(EmulatorError) as caught:
        tokens.authenticate(bearer(grant.access_token), now=110.0)
    assert (caught.value.status, caught.value.code) == (401, "bad.credentials")
    assert caught.value.message == "Invalid login credentials."


def test_wrong_secret_is_invalid_client() -> None:
    with pytest.raises(OAuthError) as caught:
        registry().issue("client-a", "wrong", "client_credentials", now=0.0)
    assert caught.value.status == 401
    assert caught.value.body("c") == {
        "error": "invalid_client",
        "description": "authentication failed",
        "error_description": "authentication failed",
    }


def test_unknown_client_is_invalid_client() -> None:
    with pytest.raises(OAuthError, match="invalid_client"):
        registry().issue("nobody", CANARY, "client_credentials", now=0.0)


def test_missing_credentials_are_invalid_client() -> None:
    with pytest.raises(OAuthError, match="invalid_client"):
        registry().issue(None, None, "client_credentials", now=0.0)


def test_bad_client_status_is_configurable() -> None:
    with pytest.raises(OAuthError) as caught:
        registry(bad_client_status=400).issue("client-a", "wrong", "client_credentials", now=0)
    assert caught.value.status == 400


def test_other_grant_type_is_unsupported() -> None:
    with pytest.raises(OAuthError) as caught:
        registry().issue("client-a", CANARY, "password", now=0.0)
    assert (caught.value.status, caught.value.code) == (400, "unsupported_grant_type")


def test_missing_grant_type_is_an_invalid_request() -> None:
    with pytest.raises(OAuthError) as caught:
        registry().issue("client-a", CANARY, None, now=0.0)
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   ", "token-only"])
def test_missing_or_malformed_header_is_authentication_required(header: str | None) -> None:
    with pytest.raises(EmulatorError) as caught:
        registry().authenticate(header, now=0.0)
    assert (caught.value.status, caught.value.code) == (401, "authentication.required")
    assert caught.value.message == (
        "No authentication bearer token specified in authorization header."
    )


def test_scheme_is_case_insensitive() -> None:
    tokens = registry()
    grant = tokens.issue("client-a", CANARY, "client_credentials", now=0.0)
    assert tokens.authenticate(f"bearer {grant.access_token}", now=1.0).client_id == CLIENT


def test_unknown_token_is_bad_credentials() -> None:
    with pytest.raises(EmulatorError) as caught:
        registry().authenticate("Bearer not-a-token", now=0.0)
    assert caught.value.code == "bad.credentials"


def test_expired_token_hook_makes_the_token_bad_credentials() -> None:
    tokens = registry()
    grant = tokens.issue("client-a", CANARY, "client_credentials", now=0.0)
    assert tokens.expire(grant.token_id, now=5.0)
    assert tokens.state_of(grant.token_id, now=5.0) == "expired"
    with pytest.raises(EmulatorError, match=r"bad\.credentials"):
        tokens.authenticate(bearer(grant.access_token), now=5.0)


def test_revoked_token_is_reported_once_and_refused() -> None:
    tokens = registry()
    grant = tokens.issue("client-a", CANARY, "client_credentials", now=0.0)
    report = tokens.revoke(grant.token_id)
    assert report is not None
    assert (report.client_id, report.token_id) == (CLIENT, grant.token_id)
    assert tokens.revoke(grant.token_id) is None
    assert tokens.state_of(grant.token_id, now=1.0) == "revoked"
    with pytest.raises(EmulatorError, match=r"bad\.credentials"):
        tokens.authenticate(bearer(grant.access_token), now=1.0)


def test_hooks_on_unknown_tokens_report_nothing() -> None:
    tokens = registry()
    assert tokens.expire(TokenId("tok-9999"), now=0.0) is False
    assert tokens.revoke(TokenId("tok-9999")) is None


def test_pop_expired_reports_each_expiry_once_and_skips_revocations() -> None:
    tokens = registry(lifetime=10)
    kept = tokens.issue("client-a", CANARY, "client_credentials", now=0.0)
    revoked = tokens.issue("client-a", CANARY, "client_credentials", now=0.0)
    fresh = tokens.issue("client-a", CANARY, "client_credentials", now=5.0)
    tokens.revoke(revoked.token_id)
    gone = tokens.pop_expired(now=10.0)
    assert [p.token_id for p in gone] == [kept.token_id]
    assert tokens.pop_expired(now=10.0) == []
    assert tokens.token_ids() == [fresh.token_id]


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    tokens = registry()
    grant = tokens.issue("client-a", CANARY, "client_credentials", now=0.0)
    texts = [repr(tokens.client(CLIENT)), repr(grant)]
    for attempt in (
        lambda: tokens.issue("client-a", CANARY + "x", "client_credentials", now=0.0),
        lambda: tokens.authenticate(f"Bearer {grant.access_token}x", now=0.0),
    ):
        with pytest.raises(EmulatorError) as caught:
            attempt()
        texts += [str(caught.value), repr(caught.value), repr(caught.value.body("c"))]
    for text in texts:
        assert CANARY not in text
        assert grant.access_token not in text
