"""Acumatica contract-based REST API emulator (sandbox only; see :mod:`sandbox.acumatica.app`)."""
