"""Reading a whole Genesys listing by following its ``nextUri`` (docs/genesys-api.md §8.1).

Every directory listing the pipeline reads (queues, queue members, users, wrap-up codes) is
page-number paged, and the members listing has no ``total``/``pageCount``/``lastUri``
(VERIFIED), so the one rule that works for all of them is: fetch a page, then the page its
``nextUri`` names, until an answer has no ``nextUri`` (or an empty page). :class:`Pager`
makes those decisions; the shell fetches.

Guards, each a :class:`~pipeline.errors.PagingError` rather than a silent stop or an endless
loop: a ``nextUri`` that names a page already read, one outside ``/api/v2/`` (we follow only
its path and query, always on our own API base, so the token never goes elsewhere), and more
than ``max_pages`` pages.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from pipeline.errors import PagingError

__all__ = ["MAX_PAGES", "PAGE_SIZE", "PageLink", "Pager"]

PAGE_SIZE: Final = 100
"""The page size asked for: the documented maximum of the members listing (§8.1)."""
MAX_PAGES: Final = 1000
"""Pages read at most from one listing (100,000 entities at ``PAGE_SIZE``)."""
_API_PREFIX: Final = "/api/v2/"


@dataclass(frozen=True, slots=True)
class PageLink:
    """One page to fetch: a path under the API base and its query parameters."""

    path: str
    params: tuple[tuple[str, str], ...]


class Pager:
    """Walks one listing from its first page to its last.

    Args:
        path: the listing's path (``/api/v2/routing/queues/{id}/members`` ...).
        params: its filters (``name`` ...), sent with the first page.
        page_size: ``pageSize`` of the first page (later pages follow ``nextUri`` as given).
        max_pages: pages read at most before :class:`~pipeline.errors.PagingError`.
    """

    def __init__(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.path = path
        self._first = PageLink(
            path, (*sorted((params or {}).items()), ("pageSize", str(page_size)))
        )
        self._max_pages = max_pages
        self._seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
        self.pages = 0

    def first(self) -> PageLink:
        """The first page."""
        self._remember(self._first)
        return self._first

    def next(self, listing: Mapping[str, Any]) -> PageLink | None:
        """The page after the one that answered ``listing``; None when it was the last.

        Raises:
            PagingError: the ``nextUri`` leaves the API, names a page already read, or the
                listing runs past ``max_pages``.
        """
        next_uri = listing.get("nextUri")
        entities = listing.get("entities")
        if not next_uri or not entities:
            return None  # no later page, or an empty one: the listing is complete
        if not isinstance(next_uri, str):
            raise PagingError(self.path, f"nextUri is not a string: {type(next_uri).__name__}")
        parts = urlsplit(next_uri)
        if not parts.path.startswith(_API_PREFIX):
            raise PagingError(self.path, f"nextUri {next_uri!r} is not under {_API_PREFIX}")
        link = PageLink(parts.path, tuple(parse_qsl(parts.query, keep_blank_values=True)))
        self._remember(link)
        return link

    def _remember(self, link: PageLink) -> None:
        key = (link.path, frozenset(link.params))
        if key in self._seen:
            raise PagingError(self.path, f"nextUri loops back to a page already read ({key[0]})")
        if self.pages >= self._max_pages:
            raise PagingError(
                self.path, f"more than {self._max_pages} pages: stopped (nextUri kept coming)"
            )
        self._seen.add(key)
        self.pages += 1
