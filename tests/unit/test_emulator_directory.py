"""The emulator's directory listings page exactly like the SDK models say (§8.1)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PureCloudPlatformClientV2 import models
from PureCloudPlatformClientV2.api_client import ApiClient

from pipeline.emulator.http.directory import PageRequest, page

MEMBERS = "/api/v2/routing/queues/q1/members"
MEMBER_FIELDS = {"entities", "pageSize", "pageNumber", "firstUri", "selfUri", "nextUri",
                 "previousUri"}  # fmt: skip


class _Response:
    def __init__(self, body: Any) -> None:
        self.data = json.dumps(body)

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return "application/json" if name.lower() == "content-type" else default


def model_fields(type_name: str) -> set[str]:
    return set(getattr(models, type_name)().attribute_map.values())


def test_a_middle_members_page_has_exactly_the_member_listing_fields() -> None:
    items, fields = page(list(range(250)), PageRequest(MEMBERS, 100, 2), totals=False)
    assert items == list(range(100, 200))
    assert {"entities", *fields} == MEMBER_FIELDS == model_fields("QueueMemberEntityListing")
    assert fields["nextUri"] == f"{MEMBERS}?pageSize=100&pageNumber=3"
    assert fields["previousUri"] == f"{MEMBERS}?pageSize=100&pageNumber=1"


def test_the_last_page_has_no_next_uri_and_the_first_no_previous_uri() -> None:
    request = PageRequest(MEMBERS, 100, 3)
    items, last = page(list(range(250)), request, totals=False)
    assert len(items) == 50
    assert "nextUri" not in last
    _, first = page(list(range(250)), PageRequest(MEMBERS, 100, 1), totals=False)
    assert "previousUri" not in first
    assert not {"total", "pageCount", "lastUri"} & first.keys()


def test_full_listings_add_total_page_count_and_last_uri_and_keep_filters() -> None:
    request = PageRequest("/api/v2/routing/queues", 25, 1, (("name", "Support*"),))
    _, fields = page(list(range(30)), request, totals=True)
    assert (fields["total"], fields["pageCount"]) == (30, 2)
    assert fields["lastUri"] == "/api/v2/routing/queues?pageSize=25&pageNumber=2&name=Support%2A"
    assert {"entities", *fields} == model_fields("QueueEntityListing") - {"previousUri"}


def test_an_out_of_range_page_is_empty() -> None:
    items, fields = page(list(range(3)), PageRequest(MEMBERS, 25, 9), totals=False)
    assert items == []
    assert "nextUri" not in fields


@pytest.mark.parametrize(
    "type_name", ["QueueEntityListing", "UserEntityListing", "WrapupCodeEntityListing"]
)
def test_every_full_listing_model_has_the_same_paging_fields(type_name: str) -> None:
    _, fields = page(list(range(60)), PageRequest("/api/v2/x", 25, 2), totals=True)
    assert {"entities", *fields} == model_fields(type_name)


def test_the_sdk_reads_a_members_page() -> None:
    _, fields = page(list(range(250)), PageRequest(MEMBERS, 100, 1), totals=False)
    body = {"entities": [{"id": "u1", "name": "Agent 001", "joined": True}], **fields}
    sdk = ApiClient(host="http://127.0.0.1:1")
    listing = sdk.deserialize(_Response(body), "QueueMemberEntityListing")
    assert listing.next_uri == f"{MEMBERS}?pageSize=100&pageNumber=2"
    assert listing.entities[0].joined is True
