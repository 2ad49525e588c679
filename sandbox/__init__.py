"""Emulators of the external systems (tests and demos only).

Every emulator refuses to start when the environment says production.
"""
from __future__ import annotations

import os


class ProductionRefused(RuntimeError):
    """An emulator was asked to start where ``ML_CONNECTOR_ENV=production``."""


def refuse_in_production(env: str | None = None, what: str = "emulator") -> None:
    """Raise :class:`ProductionRefused` when ``env`` (default: ``ML_CONNECTOR_ENV``) is production."""
    if env is None:
        env = os.environ.get("ML_CONNECTOR_ENV", "")
    if env.strip().lower() == "production":
        raise ProductionRefused(f"the {what} refuses to start when ML_CONNECTOR_ENV=production")
