"""docs/configuration.md is the generated reference, and it covers every setting."""

from __future__ import annotations

from pathlib import Path

from pipeline.settings_reference import SETTINGS, render_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_committed_reference_is_up_to_date() -> None:
    assert DOC.read_text() == render_reference(), "run: pipeline config > docs/configuration.md"


def test_every_setting_is_listed_with_a_meaning() -> None:
    text = render_reference()
    for _, cls in SETTINGS:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name in cls.model_fields:
            line = next(row for row in text.splitlines() if f"`{prefix}{name.upper()}`" in row)
            assert not line.endswith("|  |"), f"{prefix}{name.upper()} has no description"
