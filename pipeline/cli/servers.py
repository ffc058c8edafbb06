"""``pipeline emulator`` and ``pipeline wallboard``: the local stand-ins for Genesys and the
dashboard, each served until stopped."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from pipeline.cli.runner import add_command, add_duration, run_service
from pipeline.core.workers.push import DEFAULT_MAX_SKEW_S
from pipeline.emulator.config import (
    DEFAULTS,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    EmulatorConfig,
    help_of,
    history_seconds,
)
from pipeline.errors import ConfigError

__all__ = ["EMULATOR_FLAGS", "add_parsers", "run_emulator", "run_wallboard"]

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
    "history",
    "history_budget_s",
    "heartbeat_s",
    "frame_interval_s",
    "socket_closing_delay_s",
    "token_lifetime_s",
    "bad_credentials_status",
    "rate_limit",
    "rate_limit_scope",
    "family_rate_limits",
    "listing_max_page_size",
    "restricted_queues",
    "channels_die_with_token",
    "send_initial_state",
    "omit_zero_qualifiers",
    "query_max_interval_days",
    "conversation_granularity_minutes",
    "user_granularity_minutes",
)
_EMULATOR_CHOICES: dict[str, list[Any]] = {
    "bad_credentials_status": [400, 401],
    "rate_limit_scope": ["token", "client"],
}


def _history(text: str) -> str:
    # --history is checked while parsing, so a bad value is a usage error, not a traceback.
    try:
        history_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


_EMULATOR_TYPES: dict[str, Any] = {"history": _history}


def run_emulator(args: argparse.Namespace) -> int:
    """``pipeline emulator``: serve the Genesys Cloud emulator until stopped."""
    from pipeline.emulator.server import Emulator

    config = EmulatorConfig(
        client_id=os.environ.get("GENESYS_CLIENT_ID", DEMO_CLIENT_ID),
        client_secret=os.environ.get("GENESYS_CLIENT_SECRET", DEMO_CLIENT_SECRET),
        **{name: getattr(args, name) for name in EMULATOR_FLAGS},
    )

    emulator = Emulator(config)

    async def serve(stop: asyncio.Event) -> None:
        async with emulator:
            print(f"GENESYS_API_URL={emulator.base_url}", flush=True)
            await stop.wait()

    def details() -> str:
        frames = emulator.frames.frames()
        return f"{len(frames)} frames sent on {len({f.channel_id for f in frames})} channels"

    return run_service("emulator", args, serve, details)


def run_wallboard(args: argparse.Namespace) -> int:
    """``pipeline wallboard``: serve the live wallboard (push endpoint, state API, page).

    Raises:
        ConfigError: ``DASHBOARD_SECRET`` is unset or a well-known example value (without
            ``--insecure-dev-secret``), or a ``--queue-name`` is not ``ID=NAME``.
    """
    from pydantic import SecretStr

    from pipeline.dashboard.wallboard import Wallboard

    secret = os.environ.get("DASHBOARD_SECRET", "")
    if not secret and not args.insecure_dev_secret:
        raise ConfigError("DASHBOARD_SECRET must be set (the dashboard push signing secret)")
    names: dict[str, str] = {}
    for item in args.queue_name:
        queue_id, sep, name = item.partition("=")
        if not sep or not queue_id or not name:
            raise ConfigError(f"--queue-name wants ID=NAME, got {item!r}")
        names[queue_id] = name

    board = Wallboard(
        args.host,
        args.port,
        SecretStr(secret),
        queue_names=names,
        max_skew_s=args.max_skew_s,
        insecure_dev_secret=args.insecure_dev_secret,
    )

    async def serve(stop: asyncio.Event) -> None:
        url = await board.start()
        try:
            print(f"WALLBOARD_URL={url}", flush=True)
            print(f"DASHBOARD_URL={url}/api/push", flush=True)
            await stop.wait()
        finally:
            await board.aclose()

    def details() -> str:
        totals = board.state()["totals"]
        return (
            f"{totals['pushes']} pushes applied ({totals['rejected']} rejected), "
            f"{totals['values_held']} values held"
        )

    return run_service("wallboard", args, serve, details)


def add_parsers(commands: Any) -> None:
    """Add ``emulator`` and ``wallboard`` to the subcommands."""
    emulator = add_command(
        commands,
        "emulator",
        "serve a local Genesys Cloud emulator (login, API, notification sockets)",
        long=True,
    )
    for name in EMULATOR_FLAGS:
        flag, default = "--" + name.replace("_", "-"), getattr(DEFAULTS, name)
        if isinstance(default, bool):  # --x / --no-x, whatever the default
            emulator.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=_escape(help_of(name)),
            )
            continue
        emulator.add_argument(
            flag,
            type=_EMULATOR_TYPES.get(name, type(default)),
            default=default,
            choices=_EMULATOR_CHOICES.get(name),
            help=f"{_escape(help_of(name))} (default %(default)s)",
        )
    emulator.set_defaults(handler=run_emulator)

    wallboard = add_command(
        commands,
        "wallboard",
        "serve the live queue wallboard (signed pushes in, tiles out; DASHBOARD_SECRET)",
        long=True,
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
    add(
        "--max-skew-s",
        type=float,
        default=DEFAULT_MAX_SKEW_S,
        help="refuse pushes signed more than this many seconds away (default %(default)s)",
    )
    add(
        "--insecure-dev-secret",
        action="store_true",
        help="accept an empty or well-known DASHBOARD_SECRET (local development only)",
    )
    add_duration(wallboard)
    wallboard.set_defaults(handler=run_wallboard)


def _escape(help_text: str) -> str:
    return help_text.replace("%", "%%")  # argparse formats help with %
