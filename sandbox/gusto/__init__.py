"""Gusto API emulator (sandbox only): :func:`create_app` and :func:`serve`.

See ``sandbox/gusto/app.py`` for the module layout and the rules it implements (each citing the
Gusto documentation page or the Gusto OpenAPI spec 2025-06-15 operation/schema it follows, or
marked ``ASSUMPTION:``).
"""
from sandbox.gusto.app import create_app, sign  # noqa: F401
from sandbox.gusto.server import serve  # noqa: F401
