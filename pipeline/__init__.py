"""Genesys Cloud real-time analytics → Kafka.

The package is a functional core (``pipeline.core``: pure, no I/O) inside thin shells
(``genesys``, ``kafka``, ``dashboard``, ``services``, ``emulator``, ``local``).
See docs/architecture.md.

Modules at the root:
    errors              the exception tree (imported everywhere)
    settings            pydantic-settings models: every environment variable
    settings_rules      their consistency rules (Kafka protocol, SASL, TLS files, https)
    settings_reference  the settings models as a reference (``pipeline config``)
    telemetry           the ``genesys_pipeline_`` metrics registry of each service
    logs                logging: text or JSON, secrets masked, repeats held back

Citations: a comment's ``§N.M`` is a section of ``docs/genesys-api.md``, where each Genesys
fact the code relies on is written down with its public source (VERIFIED or BELIEF).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
