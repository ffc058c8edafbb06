"""A private test CA and its certificates, written to PEM files, and TLS server contexts.

``Certificates(directory)`` makes a CA, a second CA nobody trusts, a server certificate for
127.0.0.1 and ``localhost`` (valid, and one that expired yesterday), and a client
certificate with its key both plain and encrypted with :data:`KEY_PASSWORD` (a canary: it
must never show up in output).
"""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

__all__ = ["KEY_PASSWORD", "Certificates", "server_context"]

KEY_PASSWORD = "canary-key-password-5150"


class Certificates:
    """PEM files of a test CA and its certificates under ``directory``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.ca = trustme.CA()
        self.server = self.ca.issue_cert("127.0.0.1", "localhost")
        yesterday = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
        self.expired = self.ca.issue_cert(
            "127.0.0.1", "localhost", not_before=yesterday - datetime.timedelta(days=30),
            not_after=yesterday,
        )  # fmt: skip
        self.client = self.ca.issue_cert("worker@example.test")
        self.ca_file = self._write("ca.pem", self.ca.cert_pem.bytes())
        self.other_ca_file = self._write("other-ca.pem", trustme.CA().cert_pem.bytes())
        self.client_cert = self._write("client.pem", self.client.cert_chain_pems[0].bytes())
        self.client_key = self._write("client.key", self.client.private_key_pem.bytes())
        key = serialization.load_pem_private_key(self.client.private_key_pem.bytes(), None)
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
        self.client_key_encrypted = self._write("client-encrypted.key", encrypted)

    def _write(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.write_bytes(data)
        return str(path)


def server_context(leaf: trustme.LeafCert, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    """A TLS server context presenting ``leaf``; with ``client_ca`` it requires a client
    certificate signed by it (mutual TLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
