"""The ``pipeline`` command line.

This package is the only place that reads the environment (directly, or through the
``pipeline.settings`` models it builds), configures logging and maps errors to exit codes:
0 success, 1 a runtime failure, 2 invalid input or configuration, 130 stopped by Ctrl-C.

Modules:
    dispatch  the parser with every subcommand; main(): logging, dispatch, errors → exit codes
    redaction every configured secret (each SecretStr of the settings models), for the logs
    runner    the exit codes, running a service until it is stopped, its summary; shared flags
    shutdown  stop requests (signals, --duration), the shutdown deadline, the forced exit
    local     local up, demo: the embedded broker and registry, and the demo on them
    servers   emulator, wallboard: the local stand-ins for Genesys and the dashboard
    spec      validate, plan: check a subscription file, offline or against the org
    services  watch, produce, worker: the long-running services
    admin     config, schemas: the configuration reference, the contract in the registry
"""

from __future__ import annotations

from pipeline.cli.dispatch import build_parser, main

__all__ = ["build_parser", "main"]
