"""The command line's conventions: every command says what it does in one line and lists its
exit codes; ``--log-level`` is checked before anything runs."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from pipeline.cli import build_parser, main
from pipeline.logs import LOG_LEVELS


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and nested command below ``parser``, with its path."""
    found = []
    for action in parser._actions:  # argparse keeps subcommands here only
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(((*path, name), sub))
                found.extend(_commands(sub, (*path, name)))
    return found


COMMANDS = _commands(build_parser())


def test_the_command_tree_is_what_the_cli_offers() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"validate", "plan", "schemas", "config", "produce", "worker", "demo"} <= names
    assert "local up" in names


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_a_one_line_description_and_its_exit_codes(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    description = parser.description or ""
    assert description.strip(), f"{' '.join(path)} has no description"
    assert "\n" not in description.strip()
    text = parser.format_help()
    assert "exit codes:" in text
    listed = text.split("exit codes:", 1)[1].splitlines()
    codes = {line.split()[0] for line in listed if line.strip() and line.split()[0].isdigit()}
    assert {"0", "1", "2", "130"} <= codes, text


def test_the_top_level_help_lists_every_command_with_its_summary() -> None:
    text = " ".join(build_parser().format_help().split()).lower()
    for path, parser in COMMANDS:
        if len(path) == 1:
            assert path[0] in text
            assert (parser.description or "").rstrip(".").lower() in text
    assert "exit codes:" in text


@pytest.mark.parametrize("level", ["debug", "Info", "WARNING", "error", "critical"])
def test_log_level_is_accepted_in_any_case(level: str) -> None:
    args = build_parser().parse_args(["--log-level", level, "config"])
    assert args.log_level in LOG_LEVELS
    assert args.log_level == level.upper()


def test_an_unknown_log_level_is_a_usage_error_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--log-level", "FOO", "config"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: pipeline")
    assert err.splitlines()[-1] == (
        "pipeline: error: argument --log-level: invalid choice: 'FOO' "
        "(choose from 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')"
    )
    assert "Traceback" not in err


def test_an_invalid_log_level_variable_is_a_usage_error_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_LOG_LEVEL", "loud")
    with pytest.raises(SystemExit) as info:
        main(["config"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "pipeline: error: PIPELINE_LOG_LEVEL: invalid choice 'loud' "
        "(choose from DEBUG, INFO, WARNING, ERROR, CRITICAL)"
    )


def test_the_installed_command_rejects_a_bad_log_level_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--log-level", "FOO", "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "invalid choice: 'FOO'" in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr
