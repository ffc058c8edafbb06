"""The analytics query endpoints over the simulated contact center (docs/genesys-api.md §7).

Each ``POST .../query`` parses its JSON body, brings the simulation up to the emulator's
current instant (so the answer describes the same moment as the socket frames), and runs the
pure query function of :mod:`pipeline.emulator.analytics`. A
:class:`~pipeline.emulator.analytics.request.QueryError` becomes the same ``ErrorBody`` the
real API answers.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from pipeline.emulator.analytics.activity import query_routing_activity
from pipeline.emulator.analytics.queries import (
    query_conversation_aggregates,
    query_queue_observations,
    query_user_aggregates,
)
from pipeline.emulator.analytics.request import DEFAULT_RULES, QueryError, QueryRules
from pipeline.emulator.errors import EmulatorError, bad_request
from pipeline.emulator.http.answers import json_response, read_json_body
from pipeline.emulator.simulation.center import ContactCenter

__all__ = ["QUERIES", "AnalyticsApi"]

Query = Callable[[ContactCenter, Mapping[str, object]], dict[str, object]]
QUERIES: dict[str, Query] = {
    "/api/v2/analytics/queues/observations/query": query_queue_observations,
    "/api/v2/analytics/conversations/aggregates/query": query_conversation_aggregates,
    "/api/v2/analytics/users/aggregates/query": query_user_aggregates,
    "/api/v2/analytics/routing/activity/query": query_routing_activity,
}
"""Path → the pure query it runs."""


class AnalyticsApi:
    """The analytics query routes.

    Args:
        center: the simulated contact center.
        catch_up: brings the simulation up to the emulator's current instant.
        rules: the aggregate queries' interval and granularity limits (§7.4 BELIEF).
    """

    def __init__(
        self,
        center: ContactCenter,
        catch_up: Callable[[], None],
        rules: QueryRules = DEFAULT_RULES,
    ) -> None:
        self._center = center
        self._catch_up = catch_up
        self._rules = rules

    def routes(self) -> list[web.RouteDef]:
        """One POST route per query."""
        return [
            web.post(path, self._handler(self._ruled(query))) for path, query in QUERIES.items()
        ]

    def _ruled(self, query: Query) -> Query:
        if query in (query_conversation_aggregates, query_user_aggregates):
            return functools.partial(query, rules=self._rules)
        return query

    def _handler(self, query: Query) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            body = await read_json_body(request)
            if not isinstance(body, dict):
                raise bad_request("The request body must be a JSON object.")
            self._catch_up()  # answer from the same instant the socket frames come from
            try:
                return json_response(query(self._center, body))
            except QueryError as exc:
                raise EmulatorError(exc.status, exc.code, exc.message) from exc

        return handle
