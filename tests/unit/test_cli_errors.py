"""Every error the CLI reports is one line: what went wrong (and for settings, which variable)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.cli.dispatch import describe_error
from pipeline.errors import DashboardError
from pipeline.settings import ShutdownSettings


def test_a_settings_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_SHUTDOWN_TIMEOUT_S", "-1")
    with pytest.raises(ValidationError) as info:
        ShutdownSettings()
    assert describe_error(info.value) == (
        "PIPELINE_SHUTDOWN_TIMEOUT_S: Input should be greater than 0"
    )


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (DashboardError("HTTP 401: check\nDASHBOARD_SECRET"), "HTTP 401: check DASHBOARD_SECRET"),
        (RuntimeError("task\n  broke"), "RuntimeError: task broke"),
        (OSError(98, "address already in use"), "OSError: [Errno 98] address already in use"),
        (KeyError(), "KeyError"),
    ],
)
def test_other_errors_are_one_line(error: Exception, line: str) -> None:
    assert describe_error(error) == line
