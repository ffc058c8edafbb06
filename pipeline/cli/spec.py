"""``pipeline validate`` and ``pipeline plan``: check a subscription file, offline or against
the org, before anything runs."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from pipeline.cli.runner import EXIT_INVALID, EXIT_OK, add_command
from pipeline.errors import SubscriptionError

__all__ = ["add_parsers", "run_plan", "run_validate"]


def run_validate(args: argparse.Namespace) -> int:
    """``pipeline validate FILE [--json]``: check a subscription file before anything connects.

    With ``--json`` the outcome is one JSON document on stdout, invalid files included:
    ``{"file", "valid", "problems"}`` (exit 2) or ``{"file", "valid", "spec", "notes"}``.

    Raises:
        SubscriptionError: the file is invalid (without ``--json``: one problem per line).
    """
    from pipeline.core.subscription.resolution import ResolvedEntities, unresolved_references
    from pipeline.core.subscription.spec import load_spec, render_spec_text

    try:
        spec = load_spec(args.file, oauth_clients=args.oauth_clients)
    except SubscriptionError as exc:
        if not args.json:
            raise
        doc = {"file": str(args.file), "valid": False, "problems": list(exc.problems)}
        print(json.dumps(doc, indent=2))
        return EXIT_INVALID
    notes = unresolved_references(spec, ResolvedEntities())
    if args.json:
        spec_doc = spec.model_dump(mode="json", exclude_none=True)
        doc = {"file": str(args.file), "valid": True, "spec": spec_doc, "notes": list(notes)}
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(render_spec_text(spec))
    for line in notes:
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


def add_parsers(commands: Any) -> None:
    """Add ``validate`` and ``plan`` to the subcommands."""
    validate = add_command(commands, "validate", "validate a subscription file (no network)")
    validate.add_argument("file", type=Path)
    validate.add_argument("--json", action="store_true", help="print the outcome as JSON")
    validate.add_argument(
        "--oauth-clients",
        type=int,
        default=1,
        help="OAuth clients available (each holds 20 channels of 1,000 topics)",
    )
    validate.set_defaults(handler=run_validate)
    plan = add_command(
        commands,
        "plan",
        "dry run: topics, channels and shards (checks the org when credentials are set)",
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
