"""Genesys Cloud real-time analytics → Kafka.

The package is a functional core (``pipeline.core``: pure, no I/O) inside thin shells
(``genesys``, ``kafka``, ``dashboard``, ``services``, ``emulator``, ``local``).
See docs/architecture.md.

Citations: a comment's ``§N.M`` is a section of ``docs/genesys-api.md``, where each Genesys
fact the code relies on is written down with its public source (VERIFIED or BELIEF).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
