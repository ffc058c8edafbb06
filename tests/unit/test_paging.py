"""Following nextUri through a listing, with guards against loops, escapes and endless lists."""

from __future__ import annotations

import pytest

from pipeline.core.genesys.paging import PageLink, Pager
from pipeline.errors import PagingError

MEMBERS = "/api/v2/routing/queues/q1/members"


def listing(next_uri: str | None, entities: int = 2) -> dict[str, object]:
    doc: dict[str, object] = {"entities": [{"id": str(i)} for i in range(entities)]}
    if next_uri is not None:
        doc["nextUri"] = next_uri
    return doc


def test_pager_asks_for_the_first_page_with_the_filters_and_the_largest_page() -> None:
    pager = Pager("/api/v2/routing/queues", {"name": "Support*"})
    assert pager.first() == PageLink(
        "/api/v2/routing/queues", (("name", "Support*"), ("pageSize", "100"))
    )


def test_pager_follows_next_uri_path_and_query() -> None:
    pager = Pager(MEMBERS)
    pager.first()
    link = pager.next(listing(f"{MEMBERS}?pageSize=100&pageNumber=2"))
    assert link == PageLink(MEMBERS, (("pageSize", "100"), ("pageNumber", "2")))
    assert pager.pages == 2


def test_pager_keeps_only_path_and_query_of_an_absolute_next_uri() -> None:
    pager = Pager(MEMBERS)
    pager.first()
    link = pager.next(listing(f"https://api.mypurecloud.ie{MEMBERS}?pageNumber=2"))
    assert link == PageLink(MEMBERS, (("pageNumber", "2"),))


@pytest.mark.parametrize("last", [listing(None), listing(""), listing("/api/v2/x?p=2", 0)])
def test_pager_stops_without_next_uri_or_on_an_empty_page(last: dict[str, object]) -> None:
    pager = Pager(MEMBERS)
    pager.first()
    assert pager.next(last) is None


def test_pager_refuses_a_next_uri_that_loops_back() -> None:
    pager = Pager(MEMBERS)
    pager.first()
    pager.next(listing(f"{MEMBERS}?pageNumber=2&pageSize=100"))
    with pytest.raises(PagingError, match="loops back"):
        pager.next(listing(f"{MEMBERS}?pageSize=100&pageNumber=2"))


def test_pager_refuses_a_next_uri_outside_the_api() -> None:
    pager = Pager(MEMBERS)
    pager.first()
    with pytest.raises(PagingError, match="not under /api/v2/"):
        pager.next(listing("https://evil.example/steal?pageNumber=2"))


def test_pager_stops_with_a_clear_error_past_the_page_cap() -> None:
    pager = Pager(MEMBERS, max_pages=3)
    pager.first()
    pager.next(listing(f"{MEMBERS}?pageNumber=2"))
    pager.next(listing(f"{MEMBERS}?pageNumber=3"))
    with pytest.raises(PagingError, match="more than 3 pages") as info:
        pager.next(listing(f"{MEMBERS}?pageNumber=4"))
    assert info.value.path == MEMBERS
    assert str(info.value).startswith(f"{MEMBERS}: ")


def test_pager_refuses_a_next_uri_that_is_not_text() -> None:
    pager = Pager(MEMBERS)
    pager.first()
    with pytest.raises(PagingError, match="not a string"):
        pager.next({"entities": [{}], "nextUri": 2})
