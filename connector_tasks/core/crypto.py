"""Encryption at rest for credentials and OAuth tokens (Fernet / MultiFernet).

Keys come from ``FERNET_KEYS`` (newest first). Encrypting always uses the first key;
decrypting tries each, so keys rotate without downtime; :meth:`Vault.rotate` re-encrypts a
token under the newest key.
"""
from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from connector_tasks.core.errors import ConfigurationError


class Vault:
    """Encrypts and decrypts JSON-able secrets.

    ``keys`` are url-safe base64 Fernet keys, newest first. Raises
    :class:`ConfigurationError` when no key is given or a key is malformed.
    """

    def __init__(self, keys: tuple[str, ...] | list[str]):
        if not keys:
            raise ConfigurationError("FERNET_KEYS is empty: credentials cannot be encrypted")
        try:
            self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise ConfigurationError("FERNET_KEYS holds a key that is not a Fernet key") from exc

    @staticmethod
    def generate_key() -> str:
        """A new random Fernet key (str)."""
        return Fernet.generate_key().decode()

    def encrypt(self, value) -> str:
        """Encrypt a JSON-able ``value``; returns the Fernet token as ``str``."""
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def decrypt(self, token: str):
        """Decrypt a token made by :meth:`encrypt`. Raises :class:`ConfigurationError` when
        no configured key opens it (a key was dropped too early)."""
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ConfigurationError("stored credentials cannot be decrypted with FERNET_KEYS") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the newest key. Raises :class:`ConfigurationError` when
        no configured key opens it."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise ConfigurationError("a stored secret cannot be decrypted with FERNET_KEYS; "
                                     "keep the old key in the list while rotating") from exc
