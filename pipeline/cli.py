"""The ``pipeline`` command line.

The only place that reads the environment, configures logging and maps errors to exit codes:
0 success, 1 a runtime failure, 2 invalid input or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from pipeline import __version__
from pipeline.emulator.config import (
    DEFAULTS,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    EmulatorConfig,
    help_of,
)
from pipeline.errors import ConfigError, PipelineError, SubscriptionError
from pipeline.logs import configure_logging

__all__ = ["main"]

log = logging.getLogger("pipeline.cli")

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2
DEFAULT_WORKDIR = Path(".local")

Handler = Callable[[argparse.Namespace], int]
T = TypeVar("T")


def wait_for_stop(duration: float | None) -> str:
    """Block until SIGINT or SIGTERM arrives, or ``duration`` seconds pass.

    Returns:
        ``"signal"`` or ``"duration"``: why it returned.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return "signal" if stop.wait(duration) else "duration"
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_local_up(args: argparse.Namespace) -> int:
    """``pipeline local up``: start the broker and registry, print their addresses, wait."""
    from pipeline.local.stack import LocalStack

    with LocalStack(args.workdir) as endpoints:
        for line in endpoints.as_env_lines():
            print(line, flush=True)
        wait_for_stop(args.duration)
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    """``pipeline demo``: local broker + registry, emulator and producer, until stopped.

    Exits 0 only when records flowed and every one was acknowledged.
    """
    from pipeline.local.smoke import run_smoke
    from pipeline.local.stack import LocalStack
    from pipeline.services.demo import run_demo

    with LocalStack(args.workdir) as endpoints:
        for line in endpoints.as_env_lines():
            print(line, flush=True)
        smoke = run_smoke(endpoints)
        print(
            f"local broker and registry ok: {smoke.consumed} Avro records round-tripped", flush=True
        )
        report = _run_until_stopped(
            lambda stop: run_demo(endpoints, stop, sys.stdout), args.duration
        )
    stats = report.producer
    p95 = "-" if report.freshness_p95_s is None else f"{report.freshness_p95_s:.2f}s"
    print(
        f"demo {'healthy' if report.healthy else 'NOT healthy'}: {stats.frames} Genesys events, "
        f"{stats.delivered} records delivered, {stats.in_flight} unacknowledged, "
        f"{stats.dead_letters} dead letters, {stats.gaps} gaps, {report.pushes} wallboard "
        f"pushes ({report.values_on_wallboard} values), freshness p95 {p95}; stopped cleanly",
        flush=True,
    )
    return EXIT_OK if report.healthy else EXIT_FAILURE


# The flags of `pipeline emulator`: each is an EmulatorConfig field, whose default and help it
# reads, so no default is written twice. The OAuth client comes from the environment instead.
EMULATOR_FLAGS: tuple[str, ...] = (
    "host",
    "port",
    "queues",
    "agents",
    "seed",
    "speed",
    "arrival_rate",
    "heartbeat_s",
    "frame_interval_s",
    "socket_closing_delay_s",
    "token_lifetime_s",
    "bad_credentials_status",
    "rate_limit",
    "send_initial_state",
)
_EMULATOR_CHOICES: dict[str, list[int]] = {"bad_credentials_status": [400, 401]}


def run_emulator(args: argparse.Namespace) -> int:
    """``pipeline emulator``: serve the Genesys Cloud emulator until stopped."""
    from pipeline.emulator.server import Emulator

    config = EmulatorConfig(
        client_id=os.environ.get("GENESYS_CLIENT_ID", DEMO_CLIENT_ID),
        client_secret=os.environ.get("GENESYS_CLIENT_SECRET", DEMO_CLIENT_SECRET),
        **{name: getattr(args, name) for name in EMULATOR_FLAGS},
    )

    async def serve(stop: asyncio.Event) -> None:
        async with Emulator(config) as emulator:
            print(f"GENESYS_API_URL={emulator.base_url}", flush=True)
            await stop.wait()

    _run_until_stopped(serve, None)
    return EXIT_OK


def _add_emulator_parser(commands: Any) -> None:
    emulator = commands.add_parser(
        "emulator", help="serve a local Genesys Cloud emulator (login, API, notification sockets)"
    )
    for name in EMULATOR_FLAGS:
        flag, default = "--" + name.replace("_", "-"), getattr(DEFAULTS, name)
        if isinstance(default, bool):
            emulator.add_argument(flag, action="store_true", help=_escape(help_of(name)))
            continue
        emulator.add_argument(
            flag,
            type=type(default),
            default=default,
            choices=_EMULATOR_CHOICES.get(name),
            help=f"{_escape(help_of(name))} (default %(default)s)",
        )
    emulator.set_defaults(handler=run_emulator)


def _escape(help_text: str) -> str:
    return help_text.replace("%", "%%")  # argparse formats help with %


def run_wallboard(args: argparse.Namespace) -> int:
    """``pipeline wallboard``: serve the live wallboard (push endpoint, state API, page)."""
    from pydantic import SecretStr

    from pipeline.dashboard.wallboard import Wallboard

    secret = os.environ.get("DASHBOARD_SECRET", "")
    if not secret:
        raise ConfigError("DASHBOARD_SECRET must be set (the dashboard push signing secret)")
    names: dict[str, str] = {}
    for item in args.queue_name:
        queue_id, sep, name = item.partition("=")
        if not sep or not queue_id or not name:
            raise ConfigError(f"--queue-name wants ID=NAME, got {item!r}")
        names[queue_id] = name

    async def serve(stop: asyncio.Event) -> None:
        board = Wallboard(args.host, args.port, SecretStr(secret), queue_names=names)
        url = await board.start()
        try:
            print(f"WALLBOARD_URL={url}", flush=True)
            print(f"DASHBOARD_URL={url}/api/push", flush=True)
            await stop.wait()
        finally:
            await board.aclose()

    _run_until_stopped(serve, args.duration)
    return EXIT_OK


def _add_wallboard_parser(commands: Any) -> None:
    wallboard = commands.add_parser(
        "wallboard",
        help="serve the live queue wallboard (signed pushes in, tiles out; DASHBOARD_SECRET)",
    )
    add = wallboard.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8088, help="0 picks a free port (default 8088)")
    add(
        "--queue-name",
        action="append",
        default=[],
        metavar="ID=NAME",
        help="display name of a queue (repeatable; default: the id's short form)",
    )
    add("--duration", type=float, default=None, help="stop after SECONDS")
    wallboard.set_defaults(handler=run_wallboard)


def run_validate(args: argparse.Namespace) -> int:
    """``pipeline validate FILE``: check a subscription file before anything connects."""
    from pipeline.core.subscription.resolution import ResolvedEntities, unresolved_references
    from pipeline.core.subscription.spec import load_spec, render_spec_text

    spec = load_spec(args.file, oauth_clients=args.oauth_clients)
    print(render_spec_text(spec))
    for line in unresolved_references(spec, ResolvedEntities()):
        print(f"note: {line}")
    print(f"{args.file}: valid")
    return EXIT_OK


def run_plan(args: argparse.Namespace) -> int:
    """``pipeline plan FILE [--shards N]``: the dry run (online when credentials are set)."""
    from pipeline.core.subscription.spec import load_spec
    from pipeline.services.planning import plan_offline, plan_online
    from pipeline.settings import GenesysSettings

    spec = load_spec(args.file, oauth_clients=args.shards if args.client_per_shard else 1)
    settings = GenesysSettings()
    if settings.has_credentials():
        api_base = settings.api_base(spec.genesys.region, spec.genesys.api_url)
        outcome = asyncio.run(
            plan_online(
                spec,
                api_base,
                settings.client_id,
                settings.client_secret,
                args.shards,
                args.client_per_shard,
            )
        )
    else:
        outcome = plan_offline(spec, args.shards, args.client_per_shard)
    if args.json:
        print(json.dumps(outcome.to_dict(), indent=2))
    else:
        print(outcome.render_text())
    return EXIT_OK


def _shard(text: str) -> tuple[int, int]:
    """``i/N`` → (i, N), with 0 ≤ i < N."""
    index, _, count = text.partition("/")
    try:
        shard, shards = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes i/N, e.g. 0/2, not {text!r}") from None
    if not 0 <= shard < shards:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= i < N")
    return shard, shards


def run_watch(args: argparse.Namespace) -> int:
    """``pipeline watch FILE``: stream one shard's channels, one JSON line per event."""
    from pipeline.core.subscription.spec import load_spec
    from pipeline.services.watch import watch
    from pipeline.settings import GenesysSettings

    spec = load_spec(args.file)
    settings = GenesysSettings()
    settings.require_credentials()
    api_base = settings.api_base(spec.genesys.region, spec.genesys.api_url)
    shard, shards = args.shard

    async def body(stop: asyncio.Event) -> int:
        return await watch(
            spec,
            api_base,
            settings.client_id,
            settings.client_secret,
            shard=shard,
            shards=shards,
            stop=stop,
        )

    printed = _run_until_stopped(body, args.duration)
    log.info("watch stopped after %d events", printed)
    return EXIT_OK


def run_produce(args: argparse.Namespace) -> int:
    """``pipeline produce FILE [--shard i/N]``: the producer service, until SIGINT/SIGTERM."""
    from pipeline.core.subscription.spec import load_spec
    from pipeline.services.producer import ProducerConfig, ProducerService
    from pipeline.settings import (
        GenesysSettings,
        KafkaSettings,
        ProducerSettings,
        RegistrySettings,
    )

    spec = load_spec(args.file)
    genesys = GenesysSettings()
    genesys.require_credentials()
    shard, shards = args.shard
    config = ProducerConfig(
        spec, genesys, KafkaSettings(), RegistrySettings(), ProducerSettings(), shard, shards
    )

    _run_until_stopped(ProducerService(config).run, args.duration)
    return EXIT_OK


def run_worker(args: argparse.Namespace) -> int:
    """``pipeline worker freshness|dashboard FILE``: a consumer worker, until SIGINT/SIGTERM."""
    from pipeline.core.subscription.spec import load_spec
    from pipeline.settings import KafkaSettings, RegistrySettings, WorkerSettings

    load_spec(args.file)  # the same file as the producer's: refuse a broken one early
    kafka, registry, worker = KafkaSettings(), RegistrySettings(), WorkerSettings()
    if args.kind == "freshness":
        from pipeline.services.freshness_worker import FreshnessConfig, FreshnessWorker

        freshness = FreshnessWorker(FreshnessConfig(kafka, registry, worker))
        _run_until_stopped(freshness.run, args.duration)
        return EXIT_OK
    from pipeline.services.dashboard_worker import DashboardConfig, DashboardWorker
    from pipeline.settings import DashboardSettings

    dashboard = DashboardSettings()
    if not dashboard.secret.get_secret_value():
        raise ConfigError("set DASHBOARD_SECRET: pushes are signed with HMAC-SHA256")
    pusher = DashboardWorker(DashboardConfig(kafka, registry, worker, dashboard))
    _run_until_stopped(pusher.run, args.duration)
    return EXIT_OK


def run_config(args: argparse.Namespace) -> int:
    """``pipeline config``: print the configuration reference (every environment variable)."""
    from pipeline.settings_reference import render_reference

    sys.stdout.write(render_reference())
    return EXIT_OK


def run_schemas(args: argparse.Namespace) -> int:
    """``pipeline schemas register|check``: the contract in the schema registry."""
    from pipeline.services import schemas
    from pipeline.settings import ProducerSettings, RegistrySettings

    registry = RegistrySettings()
    prefix = args.prefix or ProducerSettings().topic_prefix
    action = schemas.register if args.action == "register" else schemas.check
    return action(registry.url, prefix, sys.stdout, client_config=registry.client_config())


def _add_stream_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path)
    parser.add_argument("--shard", type=_shard, default=(0, 1), help="i/N (default 0/1)")
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")


def _run_until_stopped(
    body: Callable[[asyncio.Event], Coroutine[Any, Any, T]], duration: float | None
) -> T:
    """Run ``body(stop)`` on a new loop; ``stop`` is set by SIGINT, SIGTERM or ``duration``."""

    async def run() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if duration is not None:
            loop.call_later(duration, stop.set)
        return await body(stop)

    return asyncio.run(run())


def _add_spec_parsers(commands: Any) -> None:
    validate = commands.add_parser("validate", help="validate a subscription file (no network)")
    validate.add_argument("file", type=Path)
    validate.add_argument(
        "--oauth-clients",
        type=int,
        default=1,
        help="OAuth clients available (each holds 20 channels of 1,000 topics)",
    )
    validate.set_defaults(handler=run_validate)
    plan = commands.add_parser(
        "plan",
        help="dry run: topics, channels and shards (checks the org when credentials are set)",
    )
    plan.add_argument("file", type=Path)
    plan.add_argument("--shards", type=int, default=1, help="producer instances (default 1)")
    plan.add_argument(
        "--client-per-shard",
        action="store_true",
        help="each shard has its own OAuth client (its own 20-channel limit)",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(handler=run_plan)
    watch = commands.add_parser(
        "watch", help="stream one shard's notifications as JSON lines (no Kafka)"
    )
    _add_stream_args(watch)
    watch.set_defaults(handler=run_watch)
    produce = commands.add_parser(
        "produce", help="run the producer service: Genesys notifications → Avro records in Kafka"
    )
    _add_stream_args(produce)
    produce.set_defaults(handler=run_produce)
    worker = commands.add_parser(
        "worker", help="run a consumer worker: freshness checks or the dashboard sync"
    )
    worker.add_argument("kind", choices=["freshness", "dashboard"])
    worker.add_argument("file", type=Path, help="the subscription file (validated)")
    worker.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    worker.set_defaults(handler=run_worker)
    config = commands.add_parser("config", help="print the configuration reference (Markdown)")
    config.set_defaults(handler=run_config)
    schemas = commands.add_parser("schemas", help="the Avro contract in the schema registry")
    schemas.add_argument("action", choices=["register", "check"])
    schemas.add_argument(
        "--prefix", default=None, help="topic prefix (default PIPELINE_TOPIC_PREFIX or genesys)"
    )
    schemas.set_defaults(handler=run_schemas)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pipeline", description="Genesys Cloud real-time analytics → Kafka."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--log-format", choices=["json", "text"], default="text")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    local = commands.add_parser("local", help="local infrastructure for tests and the demo")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    up = local_commands.add_parser(
        "up", help="start a local Kafka broker and schema registry; print their addresses"
    )
    _add_workdir(up)
    up.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    up.set_defaults(handler=run_local_up)

    demo = commands.add_parser("demo", help="run the demo on the embedded local stack")
    _add_workdir(demo)
    demo.add_argument(
        "--duration", type=float, default=None, help="stop after SECONDS (default: until Ctrl-C)"
    )
    demo.set_defaults(handler=run_demo)
    _add_emulator_parser(commands)
    _add_wallboard_parser(commands)
    _add_spec_parsers(commands)
    return parser


def _add_workdir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="logs and registry data go here (default: .local)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, json_format=args.log_format == "json")
    handler: Handler = args.handler
    try:
        return handler(args)
    except SubscriptionError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''}; nothing was started", file=sys.stderr)
        return EXIT_INVALID
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
