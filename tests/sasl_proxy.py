"""A minimal SASL front end for the local broker (which has no SASL of its own here).

It speaks just enough of the Kafka protocol to authenticate a client the way a real broker
does, then relays bytes to the broker untouched: ``ApiVersions`` is relayed (the broker lists
SaslHandshake and SaslAuthenticate), ``SaslHandshake`` (v0-1) and ``SaslAuthenticate``
(v0-2) are answered here, for PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (RFC 5802, the proof
checked and the server signature sent) and OAUTHBEARER (RFC 7628; the bearer token must be
one of :attr:`SaslFrontEnd.tokens`). Any other request before authentication closes the
connection, like a broker with SASL listeners. With ``ssl`` it is a SASL_SSL listener.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import ssl as _ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["SaslFrontEnd"]

_API_VERSIONS, _HANDSHAKE, _AUTHENTICATE = 18, 17, 36
_UNSUPPORTED_MECHANISM, _AUTHENTICATION_FAILED, _ILLEGAL_STATE = 33, 58, 34
_HASHES = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}
_ITERATIONS = 4096


@dataclass
class _Request:
    api_key: int
    version: int
    correlation_id: int
    body: bytes


def _parse(frame: bytes) -> _Request:
    api_key, version, correlation_id, client_len = struct.unpack(">hhih", frame[:10])
    offset = 10 + max(client_len, 0)
    if api_key == _AUTHENTICATE and version >= 2:  # flexible header: tagged fields
        offset += 1
    return _Request(api_key, version, correlation_id, frame[offset:])


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def _write_uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@dataclass
class _Scram:
    hash_name: str
    user: str = ""
    client_first_bare: str = ""
    server_first: str = ""
    nonce: str = ""
    salt: bytes = field(default_factory=lambda: os.urandom(16))


class SaslFrontEnd:
    """Authenticate Kafka clients on ``listen_port``, then relay to ``target_port``.

    Args:
        target_port: the broker.
        listen_port: where to listen (the port the broker advertises).
        users: user → password, for PLAIN and SCRAM.
        ssl: a server context: SASL_SSL instead of SASL_PLAINTEXT.
        accepts: an OAUTHBEARER token check besides :attr:`tokens` (MSK IAM's signed URLs).
    """

    def __init__(
        self,
        target_port: int,
        listen_port: int,
        users: dict[str, str] | None = None,
        ssl: _ssl.SSLContext | None = None,
        accepts: Callable[[str], bool] | None = None,
    ) -> None:
        self.target_port, self.listen_port = target_port, listen_port
        self._accepts = accepts
        self.users = dict(users or {})
        self.tokens: set[str] = set()
        """Bearer tokens OAUTHBEARER accepts (the test's token endpoint adds what it issues)."""
        self.authenticated: list[tuple[str, str]] = []
        """(mechanism, user or token) of every successful authentication."""
        self.failures: list[str] = []
        self._ssl = ssl
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start listening."""
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.listen_port, ssl=self._ssl
        )

    async def aclose(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            if await self._authenticate(reader, writer, up_reader, up_writer):
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.CancelledError, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            for w in (writer, up_writer):
                if w is not None:
                    w.transport.abort()

    async def _authenticate(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        mechanism: str | None = None
        scram: _Scram | None = None
        while True:
            frame = await _read_frame(reader)
            request = _parse(frame)
            if request.api_key == _API_VERSIONS:
                up_writer.write(struct.pack(">i", len(frame)) + frame)
                writer.write(await _read_whole_frame(up_reader))
            elif request.api_key == _HANDSHAKE:
                (length,) = struct.unpack(">h", request.body[:2])
                mechanism = request.body[2 : 2 + length].decode()
                known = mechanism in ("PLAIN", "OAUTHBEARER", *_HASHES)
                error = 0 if known else _UNSUPPORTED_MECHANISM
                names = [b"PLAIN", b"SCRAM-SHA-256", b"SCRAM-SHA-512", b"OAUTHBEARER"]
                body = struct.pack(">hi", error, len(names)) + b"".join(
                    struct.pack(">h", len(n)) + n for n in names
                )
                _respond(writer, request, body, flexible=False)
                if mechanism in _HASHES:
                    scram = _Scram(mechanism)
            elif request.api_key == _AUTHENTICATE and mechanism is not None:
                token = _auth_bytes(request)
                answer, done, error = self._step(mechanism, scram, token)
                _respond(writer, request, _auth_body(request.version, error, answer),
                         flexible=request.version >= 2)  # fmt: skip
                await writer.drain()
                if error:
                    return False
                if done:
                    return True
            else:
                return False  # anything else before authentication: close
            await writer.drain()

    def _step(self, mechanism: str, scram: _Scram | None, token: bytes) -> tuple[bytes, bool, int]:
        """(answer, authenticated, error code) for one SaslAuthenticate."""
        if mechanism == "PLAIN":
            parts = token.split(b"\0")
            user, password = (parts[1].decode(), parts[2].decode()) if len(parts) == 3 else ("", "")
            return self._verdict(mechanism, user, self.users.get(user) == password and bool(user))
        if mechanism == "OAUTHBEARER":
            fields = token.decode().split("\x01")
            bearer = next((f[len("auth=Bearer ") :] for f in fields if f.startswith("auth=")), "")
            ok = bearer in self.tokens or (self._accepts is not None and self._accepts(bearer))
            return self._verdict(mechanism, bearer, ok)
        assert scram is not None
        return self._scram_step(scram, token.decode())

    def _verdict(self, mechanism: str, who: str, ok: bool) -> tuple[bytes, bool, int]:
        if ok:
            self.authenticated.append((mechanism, who))
            return b"", True, 0
        self.failures.append(mechanism)
        return b"", False, _AUTHENTICATION_FAILED

    def _scram_step(self, scram: _Scram, message: str) -> tuple[bytes, bool, int]:
        digest = _HASHES[scram.hash_name]
        if not scram.server_first:  # client-first: "n,,n=user,r=nonce"
            bare = message.split(",", 2)[2]
            attrs = dict(part.split("=", 1) for part in bare.split(","))
            scram.user, scram.client_first_bare = attrs["n"], bare
            scram.nonce = attrs["r"] + base64.b64encode(os.urandom(18)).decode()
            salt = base64.b64encode(scram.salt).decode()
            scram.server_first = f"r={scram.nonce},s={salt},i={_ITERATIONS}"
            return scram.server_first.encode(), False, 0
        without_proof, proof = message.rsplit(",p=", 1)
        password = self.users.get(scram.user)
        if password is None or f"r={scram.nonce}" not in without_proof.split(","):
            return self._verdict(scram.hash_name, scram.user, False)
        salted = hashlib.pbkdf2_hmac(digest().name, password.encode(), scram.salt, _ITERATIONS)
        client_key = hmac.new(salted, b"Client Key", digest).digest()
        auth_message = f"{scram.client_first_bare},{scram.server_first},{without_proof}".encode()
        signature = hmac.new(digest(client_key).digest(), auth_message, digest).digest()
        given = base64.b64decode(proof)
        recovered = bytes(a ^ b for a, b in zip(given, signature, strict=False))
        if digest(recovered).digest() != digest(client_key).digest():
            return self._verdict(scram.hash_name, scram.user, False)
        server_key = hmac.new(salted, b"Server Key", digest).digest()
        server_signature = hmac.new(server_key, auth_message, digest).digest()
        self._verdict(scram.hash_name, scram.user, True)
        return b"v=" + base64.b64encode(server_signature), True, 0


def _auth_bytes(request: _Request) -> bytes:
    if request.version >= 2:
        length, offset = _uvarint(request.body, 0)
        return request.body[offset : offset + length - 1]
    (length,) = struct.unpack(">i", request.body[:4])
    return request.body[4 : 4 + length]


def _auth_body(version: int, error: int, answer: bytes) -> bytes:
    message = b"Authentication failed" if error else None
    if version >= 2:
        text = _write_uvarint(0) if message is None else _write_uvarint(len(message) + 1) + message
        body = struct.pack(">h", error) + text + _write_uvarint(len(answer) + 1) + answer
        return body + struct.pack(">q", 0) + b"\0"
    text = struct.pack(">h", -1) if message is None else struct.pack(">h", len(message)) + message
    body = struct.pack(">h", error) + text + struct.pack(">i", len(answer)) + answer
    return body + (struct.pack(">q", 0) if version >= 1 else b"")


def _respond(
    writer: asyncio.StreamWriter, request: _Request, body: bytes, *, flexible: bool
) -> None:
    header = struct.pack(">i", request.correlation_id) + (b"\0" if flexible else b"")
    payload = header + body
    writer.write(struct.pack(">i", len(payload)) + payload)


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


async def _read_whole_frame(reader: asyncio.StreamReader) -> bytes:
    frame = await _read_frame(reader)
    return struct.pack(">i", len(frame)) + frame


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
