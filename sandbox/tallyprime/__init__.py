"""TallyPrime XML-gateway emulator (sandbox only; see app.py for what it emulates)."""
from .app import create_app

__all__ = ["create_app"]
