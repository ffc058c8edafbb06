"""A TCP proxy that can be cut and restored: "Kafka unreachable" without killing the broker.

The local broker keeps records in memory, so a broker restart loses them; an outage is
therefore simulated between client and broker. :meth:`TcpProxy.cut` closes every open
connection abruptly and refuses new ones until :meth:`TcpProxy.restore`;
:meth:`TcpProxy.hang` plays a hung server instead: connections are accepted and then nothing
comes back, until :meth:`TcpProxy.restore` (any proxied TCP service works: a schema registry
too).

The broker must advertise the proxy's address, or clients would bypass the proxy after the
first metadata answer (see ``LocalBroker(advertised_port=...)``).

With ``ssl`` (a server-side ``ssl.SSLContext``) the proxy terminates TLS: clients speak TLS
to it, it speaks plain TCP to the target; a context that requires client certificates makes
it a mutual-TLS front end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
from collections.abc import AsyncIterator
from pathlib import Path

from pipeline.local.broker import LocalBroker

__all__ = ["TcpProxy", "proxied_local_broker"]

log = logging.getLogger(__name__)


class TcpProxy:
    """Forward ``listen_port`` → ``target_host:target_port`` on 127.0.0.1.

    Args:
        target_port: where to forward to.
        listen_port: where to listen (0: any free port).
        target_host: the target's host.
        ssl: terminate TLS with this server context (None: plain TCP).
    """

    def __init__(
        self,
        target_port: int,
        listen_port: int = 0,
        target_host: str = "127.0.0.1",
        ssl: _ssl.SSLContext | None = None,
    ):
        self.target = (target_host, target_port)
        self._ssl = ssl
        self.listen_port = listen_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = True
        self._hung: asyncio.Event | None = None  # set while hanging: released by restore()
        self.connections = 0
        self.hung_connections = 0

    async def start(self) -> int:
        """Start listening; returns the port."""
        self._server = await asyncio.start_server(
            self._serve,
            "127.0.0.1",
            self.listen_port,
            ssl=self._ssl,
            ssl_handshake_timeout=5.0 if self._ssl is not None else None,
        )
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self.listen_port

    def cut(self) -> None:
        """Drop every connection abruptly (hung ones too) and refuse new ones."""
        if self._hung is not None:
            self._hung.set()
            self._hung = None
        self._open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        log.info("proxy :%d cut", self.listen_port)

    def hang(self) -> None:
        """Drop every connection; accept new ones but answer nothing until :meth:`restore`."""
        self.cut()
        self._open = True
        self._hung = asyncio.Event()
        log.info("proxy :%d hung", self.listen_port)

    def restore(self) -> None:
        """Accept and forward connections again (hung ones are dropped)."""
        if self._hung is not None:
            self._hung.set()
            self._hung = None
        self._open = True
        log.info("proxy :%d restored", self.listen_port)

    async def aclose(self) -> None:
        """Stop listening and drop every connection."""
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A connection task cancelled at shutdown just ends: asyncio 3.11 logs a cancelled
        # client_connected_cb as an error otherwise.
        with contextlib.suppress(asyncio.CancelledError):
            await self._forward(reader, writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.transport.abort()
            return
        if self._hung is not None:
            self.hung_connections += 1
            await self._hung.wait()  # a hung server: never a byte back
            writer.transport.abort()
            return
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if not self._open or writer.transport.is_closing():  # cut while we connected
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.add(up_writer)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


@contextlib.asynccontextmanager
async def proxied_local_broker(workdir: Path) -> AsyncIterator[tuple[LocalBroker, TcpProxy]]:
    """A private local broker that advertises a proxy in front of it; yields both.

    The proxy listens (on any free port) before the broker starts, so no other process can
    take the advertised port in between; it forwards to the broker once the broker is up.
    """
    proxy = TcpProxy(0)
    port = await proxy.start()
    broker = LocalBroker(workdir, advertised_port=port)
    try:
        await asyncio.to_thread(broker.start)
        proxy.target = ("127.0.0.1", broker.port)
        yield broker, proxy
    finally:
        await proxy.aclose()
        await asyncio.to_thread(broker.stop)
