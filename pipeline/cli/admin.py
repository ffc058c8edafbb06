"""``pipeline config`` and ``pipeline schemas``: the configuration reference, and the Avro
contract in the schema registry."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pipeline.cli.runner import EXIT_OK, add_command

__all__ = ["add_parsers", "run_config", "run_schemas"]


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
    config = registry.client_config()
    if args.action == "check":
        return schemas.check(
            registry.url, prefix, sys.stdout, client_config=config, as_json=args.json
        )
    return schemas.register(registry.url, prefix, sys.stdout, client_config=config)


def add_parsers(commands: Any) -> None:
    """Add ``config`` and ``schemas`` to the subcommands."""
    config = add_command(commands, "config", "print the configuration reference (Markdown)")
    config.set_defaults(handler=run_config)
    schemas = add_command(
        commands, "schemas", "register or check the Avro contract in the schema registry"
    )
    schemas.add_argument("action", choices=["register", "check"])
    schemas.add_argument(
        "--json", action="store_true", help="check: print every subject's status as JSON"
    )
    schemas.add_argument(
        "--prefix", default=None, help="topic prefix (default PIPELINE_TOPIC_PREFIX or genesys)"
    )
    schemas.set_defaults(handler=run_schemas)
