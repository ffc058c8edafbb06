"""The dashboard push: signatures, the replay guard, and what each answer means for a batch."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from pipeline.core.http_policy import is_retriable
from pipeline.core.workers.push import (
    Admission,
    PushAction,
    SeenKeys,
    SignatureCheck,
    classify_push,
    is_default_secret,
    is_valid_key,
    sign,
    signed_payload,
    verify,
)

# ---------------------------------------------------------------------------- signing
SECRET = b"push-secret"
KEY = "batch-key_1"
TS = 1_700_000_000


def check(
    body: bytes = b"body",
    signature: str | None = None,
    *,
    timestamp: str = str(TS),
    key: str = KEY,
    now: float = TS,
    secret: bytes = SECRET,
) -> SignatureCheck:
    signature = sign(SECRET, TS, KEY, b"body") if signature is None else signature
    return verify(
        secret, timestamp=timestamp, idempotency_key=key, body=body, signature=signature, now=now
    )


def test_signature_is_hmac_sha256_over_timestamp_key_and_body() -> None:
    payload = b"1700000000.batch-key_1.body"
    digest = hmac.new(SECRET, payload, hashlib.sha256).hexdigest()

    assert signed_payload(TS, KEY, b"body") == payload
    assert sign(SECRET, TS, KEY, b"body") == f"v1={digest}"


def test_verify_accepts_the_right_signature_in_any_case_and_among_several() -> None:
    good = sign(SECRET, TS, KEY, b"body")
    other = sign(b"old-secret", TS, KEY, b"body")

    assert check() is SignatureCheck.VALID
    assert check(signature=good.upper().replace("V1=", "v1=")) is SignatureCheck.VALID
    assert check(signature=f"{other}, {good}") is SignatureCheck.VALID


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"body": b"body!"}, SignatureCheck.MISMATCH),
        ({"secret": b"other"}, SignatureCheck.MISMATCH),
        ({"key": "another-key"}, SignatureCheck.MISMATCH),
        ({"timestamp": str(TS + 1), "now": TS + 1}, SignatureCheck.MISMATCH),
        ({"signature": "v1=" + "0" * 64}, SignatureCheck.MISMATCH),
        ({"signature": "v2=" + "0" * 64}, SignatureCheck.MALFORMED),
        ({"signature": "not hex"}, SignatureCheck.MALFORMED),
        ({"signature": "v1=" + "é" * 64}, SignatureCheck.MALFORMED),
        ({"signature": hashlib.sha256(b"x").hexdigest()}, SignatureCheck.MALFORMED),
        ({"signature": ""}, SignatureCheck.MISSING),
        ({"timestamp": ""}, SignatureCheck.MISSING),
        ({"key": ""}, SignatureCheck.MISSING),
        ({"timestamp": "17e8"}, SignatureCheck.MALFORMED),
        ({"key": "a.b"}, SignatureCheck.MALFORMED),
        ({"now": TS + 301}, SignatureCheck.EXPIRED),
        ({"now": TS - 301}, SignatureCheck.EXPIRED),
    ],
    ids=lambda v: str(v),
)
def test_verify_refuses_what_was_not_signed_so(
    changes: dict[str, Any], expected: SignatureCheck
) -> None:
    assert check(**changes) is expected


def test_verify_accepts_the_edges_of_the_window() -> None:
    assert check(now=TS + 300) is SignatureCheck.VALID
    assert check(now=TS - 300) is SignatureCheck.VALID


def test_a_key_with_a_separator_cannot_be_signed() -> None:
    # "1.a.b" + "c" and "1.a" + "b.c" would be the same signed bytes.
    assert not is_valid_key("a.b")
    with pytest.raises(ValueError, match="idempotency key"):
        sign(SECRET, TS, "a.b", b"c")


@pytest.mark.parametrize("secret", ["", "  ", "change-me", "CHANGE-ME", "demo-dashboard-secret"])
def test_default_secrets_are_known(secret: str) -> None:
    assert is_default_secret(secret)


def test_a_random_secret_is_not_a_default() -> None:
    assert not is_default_secret("9f2c1e7a0b4d4c3e8a6f")


# ---------------------------------------------------------------------------- seen keys
def test_seen_keys_knows_a_key_until_its_signature_expires() -> None:
    seen = SeenKeys(window_s=300)

    assert seen.admit("k", TS, now=TS) is Admission.NEW
    assert seen.admit("k", TS, now=TS + 300) is Admission.DUPLICATE
    assert seen.admit("other", TS + 301, now=TS + 301) is Admission.NEW
    assert len(seen) == 1  # "k" was forgotten: a signature of TS no longer verifies


def test_seen_keys_extends_a_key_re_sent_with_a_newer_timestamp() -> None:
    seen = SeenKeys(window_s=300)
    seen.admit("k", TS, now=TS)

    assert seen.admit("k", TS + 200, now=TS + 200) is Admission.DUPLICATE
    assert seen.admit("k", TS + 200, now=TS + 450) is Admission.DUPLICATE


def test_seen_keys_refuses_new_keys_when_full_rather_than_forget() -> None:
    seen = SeenKeys(window_s=300, max_keys=2)
    seen.admit("a", TS, now=TS)
    seen.admit("b", TS, now=TS)

    assert seen.admit("c", TS, now=TS) is Admission.FULL
    assert seen.admit("a", TS, now=TS) is Admission.DUPLICATE
    assert seen.admit("c", TS + 301, now=TS + 301) is Admission.NEW


# ---------------------------------------------------------------------------- push decisions
@pytest.mark.parametrize(
    ("status", "retry_after", "action", "wait_s", "is_failure"),
    [
        (200, None, PushAction.ACK, None, False),
        (204, None, PushAction.ACK, None, False),
        (429, 7.0, PushAction.RETRY, 7.0, False),
        (429, None, PushAction.RETRY, None, False),
        (500, 3.0, PushAction.RETRY, 3.0, True),
        (503, None, PushAction.RETRY, None, True),
        (408, None, PushAction.RETRY, None, True),
        (None, None, PushAction.RETRY, None, True),
        (400, None, PushAction.REJECT, None, False),
        (422, None, PushAction.REJECT, None, False),
        (413, None, PushAction.TOO_LARGE, None, False),
        (401, None, PushAction.FATAL_CONFIG, None, False),
        (403, None, PushAction.FATAL_CONFIG, None, False),
        (404, None, PushAction.FATAL_CONFIG, None, False),
        (501, None, PushAction.FATAL_CONFIG, None, False),
        (302, None, PushAction.FATAL_CONFIG, None, False),
    ],
)
def test_classify_push_maps_answers_to_actions(
    status: int | None,
    retry_after: float | None,
    action: PushAction,
    wait_s: float | None,
    is_failure: bool,
) -> None:
    decision = classify_push(status, retry_after)

    assert (decision.action, decision.wait_s, decision.is_failure) == (action, wait_s, is_failure)
    assert decision.reason.startswith("dashboard push: ")


def expected_push(status: int | None) -> PushAction:
    """The push table of :mod:`pipeline.core.workers.push`, written out independently."""
    if status is None or status in (408, 429) or (500 <= status < 600 and status not in (501, 505)):
        return PushAction.RETRY
    if 200 <= status < 300:
        return PushAction.ACK
    if status == 413:
        return PushAction.TOO_LARGE
    if status in (401, 403, 404, 405, 407) or not 400 <= status < 500:
        return PushAction.FATAL_CONFIG
    return PushAction.REJECT


@pytest.mark.parametrize("status", [None, *range(100, 600)])
def test_every_status_has_its_push_action_and_retries_agree_with_the_shared_table(
    status: int | None,
) -> None:
    decision = classify_push(status, 2.0)

    assert decision.action is expected_push(status)
    assert (decision.action is PushAction.RETRY) == is_retriable(status)
    assert decision.wait_s == (2.0 if decision.action is PushAction.RETRY else None)
    assert decision.is_failure == (decision.action is PushAction.RETRY and status != 429)
