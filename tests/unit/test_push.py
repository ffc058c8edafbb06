"""The dashboard push: HMAC signatures, and what each answer means for a batch."""

from __future__ import annotations

import pytest

from pipeline.core.http_policy import is_retriable
from pipeline.core.workers.push import PushAction, classify_push, sign, verify


# ---------------------------------------------------------------------------- signing
def test_signature_is_hmac_sha256_hex() -> None:
    # RFC 4231, test case 2.
    digest = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

    assert sign(b"what do ya want for nothing?", b"Jefe") == digest


def test_verify_accepts_the_right_signature_in_any_case() -> None:
    signature = sign(b"body", b"secret")

    assert verify(b"body", signature, b"secret")
    assert verify(b"body", signature.upper(), b"secret")


@pytest.mark.parametrize(
    ("body", "secret", "signature"),
    [
        (b"body!", b"secret", sign(b"body", b"secret")),
        (b"body", b"other", sign(b"body", b"secret")),
        (b"body", b"secret", "not hex"),
        (b"body", b"secret", "é" * 64),
    ],
    ids=["body changed", "wrong secret", "garbage", "non-ascii"],
)
def test_verify_refuses_a_wrong_signature(body: bytes, secret: bytes, signature: str) -> None:
    assert not verify(body, signature, secret)


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
