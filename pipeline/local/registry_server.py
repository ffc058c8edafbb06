"""The local, Confluent-compatible Avro schema registry as a server: bind, persist, serve.

A local stand-in for tests and the demo; production points ``SCHEMA_REGISTRY_URL`` at a real
registry. It serves :mod:`~pipeline.local.registry_routes` over
:class:`~pipeline.local.registry_state.RegistryState`, which does all the deciding. With a data
dir, every change is written atomically to ``registry.json`` and read back on start, so ids and
versions survive restarts.

Optionally it serves HTTPS (``ssl``: a server context, client certificates required if the
context says so) and demands HTTP basic auth or a bearer token, like a managed registry, so
the pipeline's registry TLS and credential settings can be tried locally.

Run standalone: ``python -m pipeline.local.registry_server --port 0 --data-dir DIR`` prints one
line ``SCHEMA_REGISTRY_URL=http://127.0.0.1:PORT`` once listening and exits 0 on SIGTERM/SIGINT.
``--tls-cert FILE --tls-key FILE`` serves HTTPS; ``LOCAL_REGISTRY_BASIC_AUTH=user:password``
in the environment demands basic auth (never on the command line: ``ps`` would show it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import json
import logging
import os
import pathlib
import signal
import ssl
import sys
import tempfile
from collections.abc import Sequence
from types import TracebackType
from typing import Final

from aiohttp import web

from pipeline.local.registry_routes import STATE, Handler, errors, routes
from pipeline.local.registry_state import RegistryState

__all__ = [
    "DATA_FILE_NAME",
    "RegistryServer",
    "authorization_header",
    "build_app",
    "load_state",
    "main",
    "save_state",
]

log = logging.getLogger(__name__)

DATA_FILE_NAME: Final = "registry.json"

_DATA_FILE: Final = web.AppKey("data_file", pathlib.Path)
_AUTHORIZATION: Final = web.AppKey("authorization", str)
_BASIC_AUTH_ENV: Final = "LOCAL_REGISTRY_BASIC_AUTH"


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


@web.middleware
async def _persist(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Save the state after a request that changed it (synchronously, so writes stay ordered)."""
    state, data_file = request.app[STATE], request.app.get(_DATA_FILE)
    before = state.revision
    response = await handler(request)
    if data_file is not None and state.revision != before:
        save_state(data_file, state)
    return response


@web.middleware
async def _authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 (Confluent's error body) unless the request carries the expected credentials."""
    expected = request.app.get(_AUTHORIZATION)
    given = request.headers.get("Authorization", "")
    if expected is not None and not hmac.compare_digest(given.encode(), expected.encode()):
        return web.json_response(
            {"error_code": 401, "message": "Unauthorized"},
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="schema-registry"'},
        )
    return await handler(request)


def authorization_header(
    basic_auth: tuple[str, str] | None = None, bearer_token: str | None = None
) -> str | None:
    """The ``Authorization`` value a client must send (None: no credentials required)."""
    if basic_auth is not None:
        pair = f"{basic_auth[0]}:{basic_auth[1]}".encode()
        return "Basic " + base64.b64encode(pair).decode()
    if bearer_token is not None:
        return f"Bearer {bearer_token}"
    return None


# ---------------------------------------------------------------------------- app and server
def build_app(
    state: RegistryState,
    *,
    data_file: pathlib.Path | None = None,
    authorization: str | None = None,
) -> web.Application:
    """Build the registry web app over ``state``.

    Args:
        state: The registry state the handlers read and change.
        data_file: If given, the state is saved there after every change.
        authorization: If given, the ``Authorization`` header every request must carry
            (:func:`authorization_header`); others get 401.

    Returns:
        An aiohttp application serving the Confluent REST subset.
    """
    app = web.Application(middlewares=[_authorize, errors, _persist])
    app[STATE] = state
    if authorization is not None:
        app[_AUTHORIZATION] = authorization
    if data_file is not None:
        app[_DATA_FILE] = data_file
    app.add_routes(routes)
    return app


class RegistryServer:
    """The local registry listening on a TCP port; use as ``async with`` or start/aclose.

    Args:
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        data_dir: Directory of ``registry.json``; ``None`` keeps everything in memory.
        ssl: serve HTTPS with this server context (None: plain HTTP).
        basic_auth: ``(user, password)`` every request must present.
        bearer_token: a bearer token every request must present (instead of basic auth).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: pathlib.Path | None = None,
        *,
        ssl: ssl.SSLContext | None = None,
        basic_auth: tuple[str, str] | None = None,
        bearer_token: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._ssl = ssl
        self._authorization = authorization_header(basic_auth, bearer_token)
        self._data_file = None if data_dir is None else pathlib.Path(data_dir) / DATA_FILE_NAME
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self) -> str:
        """Load the state, bind and serve; return the base URL (``http[s]://127.0.0.1:PORT``)."""
        if self._runner is not None:
            raise RuntimeError("registry server already started")
        state = RegistryState()
        if self._data_file is not None:
            state = await asyncio.to_thread(load_state, self._data_file)
        app = build_app(state, data_file=self._data_file, authorization=self._authorization)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"{'https' if self._ssl is not None else 'http'}://{host}:{port}"
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
async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    user_info = os.environ.get(_BASIC_AUTH_ENV)
    if user_info is not None and ":" not in user_info:
        raise ValueError(f"{_BASIC_AUTH_ENV} must be user:password")
    basic = tuple(user_info.split(":", 1)) if user_info else None
    server = RegistryServer(
        args.host,
        args.port,
        args.data_dir,
        ssl=context,
        basic_auth=basic,  # type: ignore[arg-type]
    )
    async with server:
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
    parser.add_argument("--tls-cert", default=None, help="PEM certificate: serve HTTPS")
    parser.add_argument("--tls-key", default=None, help="PEM key of --tls-cert")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        return asyncio.run(_serve(args))
    except (
        OSError,
        ValueError,
        ssl.SSLError,
    ) as exc:  # port taken, unreadable or corrupt data file
        log.error("local schema registry could not start: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
