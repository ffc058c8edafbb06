"""The local infrastructure as one unit: a Kafka-protocol broker and a schema registry.

Used by ``pipeline local up``, the demo and the test fixtures. Production never uses it:
there ``KAFKA_BOOTSTRAP_SERVERS`` and ``SCHEMA_REGISTRY_URL`` point at real services.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pipeline.local.broker import LocalBroker
from pipeline.local.process import ManagedProcess

__all__ = ["Endpoints", "LocalStack"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where clients find Kafka and the schema registry."""

    bootstrap_servers: str
    schema_registry_url: str

    def as_env_lines(self) -> list[str]:
        """Shell-sourceable ``NAME=value`` lines."""
        return [
            f"KAFKA_BOOTSTRAP_SERVERS={self.bootstrap_servers}",
            f"SCHEMA_REGISTRY_URL={self.schema_registry_url}",
        ]


class LocalStack:
    """Start and stop the local broker and registry together.

    Args:
        workdir: logs go here (``broker.log``, ``registry.log``).
        registry_dir: where the registry persists its schemas; defaults to
            ``workdir / "registry"``. Keep it across runs to keep schema ids stable.
        ready_timeout: seconds each service gets to become ready.
    """

    def __init__(
        self, workdir: Path, registry_dir: Path | None = None, ready_timeout: float = 20.0
    ) -> None:
        self.workdir = workdir
        self.registry_dir = registry_dir or workdir / "registry"
        self.ready_timeout = ready_timeout
        self.broker = LocalBroker(workdir, ready_timeout=ready_timeout)
        self.registry = ManagedProcess(
            "registry",
            [
                sys.executable,
                "-m",
                "pipeline.local.registry_server",
                "--port",
                "0",
                "--data-dir",
                str(self.registry_dir),
            ],
            workdir / "registry.log",
        )
        self.endpoints: Endpoints | None = None

    def start(self) -> Endpoints:
        """Start both services; on failure stop whatever started and re-raise."""
        try:
            bootstrap = self.broker.start()
            self.registry.start()
            match = self.registry.wait_for_log(r"SCHEMA_REGISTRY_URL=(\S+)", self.ready_timeout)
        except BaseException:
            self.stop()
            raise
        self.endpoints = Endpoints(bootstrap, match.group(1))
        log.info("local stack up: %s", ", ".join(self.endpoints.as_env_lines()))
        return self.endpoints

    def failure(self) -> str | None:
        """Why the broker or the registry is gone although nobody stopped it, or None.

        The demo and ``local up`` poll this: a child that died is a failure to report, not
        a reason to wait for it forever.
        """
        return self.broker.failure() or self.registry.failure()

    def stop(self) -> None:
        """Stop both services (safe to call twice)."""
        self.registry.stop()
        self.broker.stop()

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
