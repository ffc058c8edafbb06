"""The README's verification snippet (for third-party dashboards) accepts exactly what the
worker's client signs, and refuses what it must."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import httpx
import pytest
from pydantic import SecretStr

from pipeline.dashboard.client import DashboardClient

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "third-party-secret-5e1f"
BODY = b'{"idempotency_key":"k-1","values":[]}'

Verify = Callable[[bytes, dict[str, str], bytes], bool]


@pytest.fixture(scope="module")
def verify_push() -> Verify:
    text = README.read_text()
    section = text[text.index("### Signed, replay-proof dashboard pushes") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README's snippet"
    snippet = match.group(1)
    assert len([line for line in snippet.splitlines() if line.strip()]) <= 10, "10 lines"
    namespace: dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    function = namespace["verify_push"]
    assert callable(function)
    return function  # type: ignore[return-value]  # checked callable above


def signed(key: str = "k-1", at: float | None = None) -> dict[str, str]:
    """The headers the worker's client sends (``headers`` never touches the HTTP client)."""
    now = time.time() if at is None else at
    client = DashboardClient(
        _UNUSED, "http://x/api/push", SecretStr(SECRET), 1.0, clock=lambda: now
    )
    return client.headers(BODY, key)


_UNUSED = cast(httpx.AsyncClient, None)


def test_snippet_accepts_the_workers_signature(verify_push: Verify) -> None:
    assert verify_push(SECRET.encode(), signed(), BODY)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda h, b: ({**h, "Idempotency-Key": "k-2"}, b), "new key"),
        (lambda h, b: (h, b + b" "), "body changed"),
        (lambda h, b: (signed(at=time.time() - 301), b), "old timestamp"),
        (lambda h, b: ({**h, "X-Signature-SHA256": h["X-Signature-SHA256"][3:]}, b), "no v1="),
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-Signature-Timestamp"}, b), "no ts"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_snippet_refuses(
    verify_push: Verify,
    change: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
    why: str,
) -> None:
    headers, body = change(signed(), BODY)

    assert not verify_push(SECRET.encode(), headers, body), why


def test_snippet_refuses_another_secret(verify_push: Verify) -> None:
    assert not verify_push(b"other-secret", signed(), BODY)
