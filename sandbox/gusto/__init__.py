"""Gusto API emulator (sandbox only): :func:`create_app` and :func:`serve`.

See ``sandbox/gusto/app.py`` for the rules it implements (each citing
``shared/reference/external-apis.md`` §1 or marked ``ASSUMPTION:``).
"""
from sandbox.gusto.app import create_app, sign  # noqa: F401
from sandbox.gusto.server import serve  # noqa: F401
