"""The REST routes of the local schema registry: requests in, Confluent answers out.

The subset that confluent-kafka's ``SchemaRegistryClient`` (sync and async), ``AvroSerializer``
and ``AvroDeserializer`` use, over the :class:`~pipeline.local.registry_state.RegistryState`
held in the app under :data:`STATE`, which does all the deciding. Every failure becomes a
Confluent error body (:func:`errors`). The server, persistence and the standalone command live
in :mod:`pipeline.local.registry_server`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from pipeline.local.registry_compatibility import Compatibility
from pipeline.local.registry_model import RegistryError, SchemaReference, parse_version
from pipeline.local.registry_state import RegistryState

__all__ = ["CONTENT_TYPE", "STATE", "Handler", "errors", "routes"]

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "application/vnd.schemaregistry.v1+json"
"""The media type of every answer."""
STATE: Final = web.AppKey("state", RegistryState)
"""Where the app holds the registry state the routes read and change."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp request handler (what a middleware wraps)."""
routes = web.RouteTableDef()
"""Every route of the registry, for ``app.add_routes``."""


# ---------------------------------------------------------------------------- helpers
def _reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type=CONTENT_TYPE)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() == "true"


def _state(request: web.Request) -> RegistryState:
    return request.app[STATE]


def _subject(request: web.Request) -> str:
    return request.match_info["subject"]


def _version_arg(request: web.Request) -> int:
    return parse_version(request.match_info["version"])


def _page(request: web.Request, items: list[Any]) -> list[Any]:
    """Apply Confluent's ``offset``/``limit`` query (a negative limit means no limit)."""
    try:
        offset = max(int(request.query.get("offset", "0")), 0)
        limit = int(request.query.get("limit", "-1"))
    except ValueError:
        raise RegistryError(400, 400, "offset and limit must be integers") from None
    return items[offset:] if limit < 0 else items[offset : offset + limit]


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.text() or "null")
    except ValueError as exc:
        raise RegistryError(400, 400, f"Malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RegistryError(422, 422, "Request body must be a JSON object")
    return data


async def _schema_body(request: web.Request) -> tuple[str, str | None, list[SchemaReference]]:
    data = await _body(request)
    schema, schema_type = data.get("schema"), data.get("schemaType")
    if not isinstance(schema, str) or not schema.strip():
        raise RegistryError(422, 42201, "Invalid schema: empty or missing 'schema'")
    if schema_type is not None and not isinstance(schema_type, str):
        raise RegistryError(422, 42201, "Invalid schema: 'schemaType' must be a string")
    refs = [SchemaReference.from_json(r) for r in data.get("references") or []]
    return schema, schema_type, refs


def _schema_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise RegistryError(404, 40403, "Schema not found") from None


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a Confluent error body (a middleware)."""
    try:
        return await handler(request)
    except RegistryError as exc:
        return _reply(exc.to_json(), exc.http_status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _reply(
            {"error_code": exc.status, "message": f"HTTP {exc.status} {exc.reason}"}, exc.status
        )
    except Exception:
        log.exception("registry request %s %s failed", request.method, request.path)
        return _reply({"error_code": 50001, "message": "Internal error in the local registry"}, 500)


# ---------------------------------------------------------------------------- routes
@routes.get("/")
async def _root(request: web.Request) -> web.Response:
    return _reply({})


@routes.get("/schemas/types")
async def _schema_types(request: web.Request) -> web.Response:
    return _reply(["AVRO"])


@routes.get("/schemas/ids/{id}")
async def _schema_by_id(request: web.Request) -> web.Response:
    return _reply(_state(request).schema_by_id(_schema_id(request)).to_json())


@routes.get("/schemas/ids/{id}/schema")
async def _raw_schema_by_id(request: web.Request) -> web.Response:
    stored = _state(request).schema_by_id(_schema_id(request))
    return web.Response(text=stored.schema, content_type=CONTENT_TYPE)


@routes.get("/schemas/ids/{id}/subjects")
async def _subjects_by_id(request: web.Request) -> web.Response:
    pairs = _state(request).versions_for_id(_schema_id(request), deleted=_flag(request, "deleted"))
    return _reply(_page(request, sorted({subject for subject, _ in pairs})))


@routes.get("/schemas/ids/{id}/versions")
async def _versions_by_id(request: web.Request) -> web.Response:
    pairs = _state(request).versions_for_id(_schema_id(request), deleted=_flag(request, "deleted"))
    return _reply(_page(request, [{"subject": s, "version": v} for s, v in pairs]))


@routes.get("/subjects")
async def _subjects(request: web.Request) -> web.Response:
    names = _state(request).subjects(
        deleted=_flag(request, "deleted"), deleted_only=_flag(request, "deleted_only")
    )
    prefix = request.query.get("subjectPrefix", "")
    return _reply(_page(request, [name for name in names if name.startswith(prefix)]))


@routes.get("/subjects/{subject}/versions")
async def _versions(request: web.Request) -> web.Response:
    versions = _state(request).versions(
        _subject(request),
        deleted=_flag(request, "deleted"),
        deleted_only=_flag(request, "deleted_only"),
    )
    return _reply(_page(request, versions))


@routes.post("/subjects/{subject}/versions")
async def _register(request: web.Request) -> web.Response:
    schema, schema_type, refs = await _schema_body(request)
    registered = _state(request).register(_subject(request), schema, schema_type, refs)
    return _reply({"id": registered.schema_id})


@routes.get("/subjects/{subject}/versions/{version}")
async def _version(request: web.Request) -> web.Response:
    registered = _state(request).get_version(
        _subject(request),
        _version_arg(request),
        deleted=_flag(request, "deleted"),
    )
    return _reply(registered.to_json())


@routes.get("/subjects/{subject}/versions/{version}/schema")
async def _version_schema(request: web.Request) -> web.Response:
    registered = _state(request).get_version(_subject(request), _version_arg(request))
    return web.Response(text=registered.stored.schema, content_type=CONTENT_TYPE)


@routes.get("/subjects/{subject}/versions/{version}/referencedby")
async def _referenced_by(request: web.Request) -> web.Response:
    ids = _state(request).referenced_by(_subject(request), _version_arg(request))
    return _reply(_page(request, ids))


@routes.delete("/subjects/{subject}/versions/{version}")
async def _delete_version(request: web.Request) -> web.Response:
    deleted = _state(request).delete_version(
        _subject(request),
        _version_arg(request),
        permanent=_flag(request, "permanent"),
    )
    return _reply(deleted)


@routes.post("/subjects/{subject}")
async def _lookup(request: web.Request) -> web.Response:
    schema, schema_type, refs = await _schema_body(request)
    registered = _state(request).lookup(
        _subject(request), schema, schema_type, refs, deleted=_flag(request, "deleted")
    )
    return _reply(registered.to_json())


@routes.delete("/subjects/{subject}")
async def _delete_subject(request: web.Request) -> web.Response:
    versions = _state(request).delete_subject(
        _subject(request), permanent=_flag(request, "permanent")
    )
    return _reply(versions)


@routes.get("/config")
async def _get_config(request: web.Request) -> web.Response:
    return _reply({"compatibilityLevel": _state(request).global_compatibility.value})


@routes.put("/config")
async def _put_config(request: web.Request) -> web.Response:
    level = _level(await _body(request))
    _state(request).set_global_compatibility(level)
    return _reply({"compatibility": level.value})


@routes.delete("/config")
async def _delete_config(request: web.Request) -> web.Response:
    state = _state(request)
    old = state.global_compatibility
    state.set_global_compatibility(Compatibility.BACKWARD)
    return _reply({"compatibilityLevel": old.value})


@routes.get("/config/{subject}")
async def _get_subject_config(request: web.Request) -> web.Response:
    level = _state(request).subject_compatibility(
        _subject(request), default_to_global=_flag(request, "defaultToGlobal")
    )
    return _reply({"compatibilityLevel": level.value})


@routes.put("/config/{subject}")
async def _put_subject_config(request: web.Request) -> web.Response:
    level = _level(await _body(request))
    _state(request).set_subject_compatibility(_subject(request), level)
    return _reply({"compatibility": level.value})


@routes.delete("/config/{subject}")
async def _delete_subject_config(request: web.Request) -> web.Response:
    old = _state(request).delete_subject_compatibility(_subject(request))
    return _reply({"compatibilityLevel": old.value})


def _level(data: dict[str, Any]) -> Compatibility:
    return Compatibility.parse(data.get("compatibility", data.get("compatibilityLevel")))


@routes.post("/compatibility/subjects/{subject}/versions/{version}")
@routes.post("/compatibility/subjects/{subject}/versions")
async def _compatibility(request: web.Request) -> web.Response:
    schema, schema_type, refs = await _schema_body(request)
    text = request.match_info.get("version")
    report = _state(request).test_compatibility(
        _subject(request),
        schema,
        schema_type,
        refs,
        version=None if text is None else parse_version(text),
    )
    body: dict[str, Any] = {"is_compatible": report.is_compatible}
    if _flag(request, "verbose"):
        body["messages"] = list(report.messages)
    return _reply(body)


@routes.get("/mode")
async def _mode(request: web.Request) -> web.Response:
    return _reply({"mode": "READWRITE"})


@routes.get("/contexts")
async def _contexts(request: web.Request) -> web.Response:
    return _reply(["."])


@routes.get("/associations/resources/{namespace}/{name}")
@routes.get("/associations/subjects/{subject}")
async def _associations(request: web.Request) -> web.Response:
    """No associations are ever stored: clients fall back to ``<topic>-value``."""
    return _reply([])
