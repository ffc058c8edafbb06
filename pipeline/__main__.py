"""``python -m pipeline`` runs the command-line interface."""

from __future__ import annotations

from pipeline.cli import main

raise SystemExit(main())
