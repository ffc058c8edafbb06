"""HTTP shell of the local, Confluent-compatible Avro schema registry.

A local stand-in for tests and the demo; production points ``SCHEMA_REGISTRY_URL`` at a real
registry. It serves the REST subset that confluent-kafka's ``SchemaRegistryClient`` (sync and
async), ``AvroSerializer`` and ``AvroDeserializer`` use, over :class:`RegistryState`, which
does all the deciding. With a data dir, every change is written atomically to
``registry.json`` and read back on start, so ids and versions survive restarts.

Run standalone: ``python -m pipeline.local.registry_server --port 0 --data-dir DIR`` prints one
line ``SCHEMA_REGISTRY_URL=http://127.0.0.1:PORT`` once listening and exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import pathlib
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Final

from aiohttp import web

from pipeline.local.registry_state import (
    Compatibility,
    RegistryError,
    RegistryState,
    SchemaReference,
    parse_version,
)

__all__ = [
    "CONTENT_TYPE",
    "DATA_FILE_NAME",
    "RegistryServer",
    "build_app",
    "load_state",
    "main",
    "save_state",
]

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "application/vnd.schemaregistry.v1+json"
DATA_FILE_NAME: Final = "registry.json"

_STATE: Final = web.AppKey("state", RegistryState)
_DATA_FILE: Final = web.AppKey("data_file", pathlib.Path)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_routes = web.RouteTableDef()


# ---------------------------------------------------------------------------- persistence
def load_state(path: pathlib.Path) -> RegistryState:
    """Read a state file written by :func:`save_state`; a missing file gives a new state."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RegistryState()
    return RegistryState.from_data(json.loads(text))


def save_state(path: pathlib.Path, state: RegistryState) -> None:
    """Write ``state`` to ``path`` atomically (temp file in the same dir, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state.to_data(), fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------- helpers
def _reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type=CONTENT_TYPE)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() == "true"


def _state(request: web.Request) -> RegistryState:
    return request.app[_STATE]


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
async def _persist(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Save the state after a request that changed it (synchronously, so writes stay ordered)."""
    state, data_file = request.app[_STATE], request.app.get(_DATA_FILE)
    before = state.revision
    response = await handler(request)
    if data_file is not None and state.revision != before:
        save_state(data_file, state)
    return response


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Turn every failure into a Confluent error body."""
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
@_routes.get("/")
async def _root(request: web.Request) -> web.Response:
    return _reply({})


@_routes.get("/schemas/types")
async def _schema_types(request: web.Request) -> web.Response:
    return _reply(["AVRO"])


@_routes.get("/schemas/ids/{id}")
async def _schema_by_id(request: web.Request) -> web.Response:
    return _reply(_state(request).schema_by_id(_schema_id(request)).to_json())


@_routes.get("/schemas/ids/{id}/schema")
async def _raw_schema_by_id(request: web.Request) -> web.Response:
    stored = _state(request).schema_by_id(_schema_id(request))
    return web.Response(text=stored.schema, content_type=CONTENT_TYPE)


@_routes.get("/schemas/ids/{id}/subjects")
async def _subjects_by_id(request: web.Request) -> web.Response:
    pairs = _state(request).versions_for_id(_schema_id(request), deleted=_flag(request, "deleted"))
    return _reply(_page(request, sorted({subject for subject, _ in pairs})))


@_routes.get("/schemas/ids/{id}/versions")
async def _versions_by_id(request: web.Request) -> web.Response:
    pairs = _state(request).versions_for_id(_schema_id(request), deleted=_flag(request, "deleted"))
    return _reply(_page(request, [{"subject": s, "version": v} for s, v in pairs]))


@_routes.get("/subjects")
async def _subjects(request: web.Request) -> web.Response:
    names = _state(request).subjects(
        deleted=_flag(request, "deleted"), deleted_only=_flag(request, "deleted_only")
    )
    prefix = request.query.get("subjectPrefix", "")
    return _reply(_page(request, [name for name in names if name.startswith(prefix)]))


@_routes.get("/subjects/{subject}/versions")
async def _versions(request: web.Request) -> web.Response:
    versions = _state(request).versions(
        _subject(request),
        deleted=_flag(request, "deleted"),
        deleted_only=_flag(request, "deleted_only"),
    )
    return _reply(_page(request, versions))


@_routes.post("/subjects/{subject}/versions")
async def _register(request: web.Request) -> web.Response:
    schema, schema_type, refs = await _schema_body(request)
    registered = _state(request).register(_subject(request), schema, schema_type, refs)
    return _reply({"id": registered.schema_id})


@_routes.get("/subjects/{subject}/versions/{version}")
async def _version(request: web.Request) -> web.Response:
    registered = _state(request).get_version(
        _subject(request),
        _version_arg(request),
        deleted=_flag(request, "deleted"),
    )
    return _reply(registered.to_json())


@_routes.get("/subjects/{subject}/versions/{version}/schema")
async def _version_schema(request: web.Request) -> web.Response:
    registered = _state(request).get_version(_subject(request), _version_arg(request))
    return web.Response(text=registered.stored.schema, content_type=CONTENT_TYPE)


@_routes.get("/subjects/{subject}/versions/{version}/referencedby")
async def _referenced_by(request: web.Request) -> web.Response:
    ids = _state(request).referenced_by(_subject(request), _version_arg(request))
    return _reply(_page(request, ids))


@_routes.delete("/subjects/{subject}/versions/{version}")
async def _delete_version(request: web.Request) -> web.Response:
    deleted = _state(request).delete_version(
        _subject(request),
        _version_arg(request),
        permanent=_flag(request, "permanent"),
    )
    return _reply(deleted)


@_routes.post("/subjects/{subject}")
async def _lookup(request: web.Request) -> web.Response:
    schema, schema_type, refs = await _schema_body(request)
    registered = _state(request).lookup(
        _subject(request), schema, schema_type, refs, deleted=_flag(request, "deleted")
    )
    return _reply(registered.to_json())


@_routes.delete("/subjects/{subject}")
async def _delete_subject(request: web.Request) -> web.Response:
    versions = _state(request).delete_subject(
        _subject(request), permanent=_flag(request, "permanent")
    )
    return _reply(versions)


@_routes.get("/config")
async def _get_config(request: web.Request) -> web.Response:
    return _reply({"compatibilityLevel": _state(request).global_compatibility.value})


@_routes.put("/config")
async def _put_config(request: web.Request) -> web.Response:
    level = _level(await _body(request))
    _state(request).set_global_compatibility(level)
    return _reply({"compatibility": level.value})


@_routes.delete("/config")
async def _delete_config(request: web.Request) -> web.Response:
    state = _state(request)
    old = state.global_compatibility
    state.set_global_compatibility(Compatibility.BACKWARD)
    return _reply({"compatibilityLevel": old.value})


@_routes.get("/config/{subject}")
async def _get_subject_config(request: web.Request) -> web.Response:
    level = _state(request).subject_compatibility(
        _subject(request), default_to_global=_flag(request, "defaultToGlobal")
    )
    return _reply({"compatibilityLevel": level.value})


@_routes.put("/config/{subject}")
async def _put_subject_config(request: web.Request) -> web.Response:
    level = _level(await _body(request))
    _state(request).set_subject_compatibility(_subject(request), level)
    return _reply({"compatibility": level.value})


@_routes.delete("/config/{subject}")
async def _delete_subject_config(request: web.Request) -> web.Response:
    old = _state(request).delete_subject_compatibility(_subject(request))
    return _reply({"compatibilityLevel": old.value})


def _level(data: dict[str, Any]) -> Compatibility:
    return Compatibility.parse(data.get("compatibility", data.get("compatibilityLevel")))


@_routes.post("/compatibility/subjects/{subject}/versions/{version}")
@_routes.post("/compatibility/subjects/{subject}/versions")
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


@_routes.get("/mode")
async def _mode(request: web.Request) -> web.Response:
    return _reply({"mode": "READWRITE"})


@_routes.get("/contexts")
async def _contexts(request: web.Request) -> web.Response:
    return _reply(["."])


@_routes.get("/associations/resources/{namespace}/{name}")
@_routes.get("/associations/subjects/{subject}")
async def _associations(request: web.Request) -> web.Response:
    """No associations are ever stored: clients fall back to ``<topic>-value``."""
    return _reply([])


# ---------------------------------------------------------------------------- app and server
def build_app(state: RegistryState, *, data_file: pathlib.Path | None = None) -> web.Application:
    """Build the registry web app over ``state``.

    Args:
        state: The registry state the handlers read and change.
        data_file: If given, the state is saved there after every change.

    Returns:
        An aiohttp application serving the Confluent REST subset.
    """
    app = web.Application(middlewares=[_errors, _persist])
    app[_STATE] = state
    if data_file is not None:
        app[_DATA_FILE] = data_file
    app.add_routes(_routes)
    return app


class RegistryServer:
    """The local registry listening on a TCP port; use as ``async with`` or start/aclose.

    Args:
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        data_dir: Directory of ``registry.json``; ``None`` keeps everything in memory.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, data_dir: pathlib.Path | None = None
    ) -> None:
        self._host = host
        self._port = port
        self._data_file = None if data_dir is None else pathlib.Path(data_dir) / DATA_FILE_NAME
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self) -> str:
        """Load the state, bind and serve; return the base URL (``http://127.0.0.1:PORT``)."""
        if self._runner is not None:
            raise RuntimeError("registry server already started")
        state = RegistryState()
        if self._data_file is not None:
            state = await asyncio.to_thread(load_state, self._data_file)
        runner = web.AppRunner(build_app(state, data_file=self._data_file), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        log.info("local schema registry listening on %s (data file %s)", self.url, self._data_file)
        return self.url

    async def aclose(self) -> None:
        """Stop serving; safe to call more than once."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> RegistryServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# ---------------------------------------------------------------------------- standalone
async def _serve(host: str, port: int, data_dir: pathlib.Path | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with RegistryServer(host, port, data_dir) as server:
        print(f"SCHEMA_REGISTRY_URL={server.url}", flush=True)
        await stop.wait()
    log.info("local schema registry stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the registry until SIGTERM/SIGINT.

    Args:
        argv: Command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The process exit code (0 on a clean stop).
    """
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.local.registry_server",
        description="Local Confluent-compatible Avro schema registry (a stand-in for dev/tests).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--data-dir", type=pathlib.Path, default=None)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        return asyncio.run(_serve(args.host, args.port, args.data_dir))
    except (OSError, ValueError) as exc:  # port taken, unreadable or corrupt data file
        log.error("local schema registry could not start: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
