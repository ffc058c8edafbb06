"""Shared fixtures: real local infrastructure, started once per session.

Bring your own cluster: set both ``KAFKA_BOOTSTRAP_SERVERS`` and ``SCHEMA_REGISTRY_URL`` (for
example to the docker-compose services) and the same suite runs against them instead.
Timeouts derive from one unit, ``PIPELINE_TEST_TIME_UNIT`` seconds (default 1), so a slow
machine can scale them all at once.
"""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from pipeline.emulator.clock import Clock
from pipeline.emulator.config import EmulatorConfig
from pipeline.emulator.thread import EmulatorThread
from pipeline.errors import InfrastructureError
from pipeline.local.stack import Endpoints, LocalStack

TIME_UNIT = float(os.environ.get("PIPELINE_TEST_TIME_UNIT", "1"))


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Undo what an in-process ``main([...])`` did to the root logger.

    ``configure_logging`` replaces the root handlers with one writing to this test's captured
    stderr; left in place, a thread still running after the test (an emulator's) would log into
    a closed stream ("--- Logging error ---" in later tests' output).
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def seconds(n: float) -> float:
    """``n`` test time units, in seconds."""
    return n * TIME_UNIT


def _bring_your_own() -> Endpoints | None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    registry = os.environ.get("SCHEMA_REGISTRY_URL")
    if bootstrap and registry:
        return Endpoints(bootstrap, registry)
    if bootstrap or registry:
        pytest.exit(
            "set both KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL, or neither", returncode=3
        )
    return None


@pytest.fixture(scope="session")
def is_local_broker() -> bool:
    """True when the tests run against the embedded Tansu broker (with its known gaps)."""
    return _bring_your_own() is None


@pytest.fixture(scope="session")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """Kafka and schema registry addresses; starts the local stack unless brought."""
    brought = _bring_your_own()
    if brought is not None:
        yield brought
        return
    stack = LocalStack(tmp_path_factory.mktemp("local-stack"), ready_timeout=seconds(30))
    try:
        started = stack.start()
    except InfrastructureError as exc:
        pytest.exit(f"local infrastructure did not start:\n{exc}", returncode=3)
    yield started
    stack.stop()


@pytest.fixture(scope="session")
def group_timeouts(is_local_broker: bool) -> dict[str, int]:
    """Consumer-group timeouts: Tansu joins after session.timeout/2, real Kafka wants ≥6 s."""
    session_ms = 2000 if is_local_broker else 6000
    return {"session.timeout.ms": session_ms, "heartbeat.interval.ms": session_ms // 4}


_counter = itertools.count()


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Make names (topics, groups) unique per test so tests never share state."""
    run = uuid.uuid4().hex[:8]

    def make(prefix: str) -> str:
        return f"{prefix}-{run}-{next(_counter)}"

    return make


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorThread]]:
    """Start emulators (real HTTP + WebSocket servers on free ports) with chosen settings.

    ``clock=ManualClock()`` makes the emulator's time move only when the test advances it;
    the other keywords are :class:`EmulatorConfig` fields. Unlike the CLI (``--history PT24H``),
    these emulators start without simulated history (``history="PT0S"``): it costs up to ~3 s
    of start-up per emulator, so the tests that look at the past ask for it.
    """
    started: list[EmulatorThread] = []

    def start(clock: Clock | None = None, **overrides: object) -> EmulatorThread:
        settings = {"port": 0, "tick_s": 0.02, "history": "PT0S", **overrides}
        config = EmulatorConfig(**settings)  # type: ignore[arg-type]
        emulator = EmulatorThread(config, clock=clock)
        emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()
