"""Webhook signature checks (HMAC over the raw request body, compared in constant time)."""
from __future__ import annotations

import hashlib
import hmac


def hmac_sha256_hex(secret: str | bytes, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``body`` keyed by ``secret``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_hex_signature(secret: str | bytes | None, body: bytes, signature: str | None) -> bool:
    """True when ``signature`` is the lowercase-hex HMAC-SHA256 of the raw ``body``.

    ``False`` (never an exception) for a missing secret or signature; the comparison is
    :func:`hmac.compare_digest`, so timing reveals nothing.
    """
    if not secret or not signature:
        return False
    expected = hmac_sha256_hex(secret, body)
    return hmac.compare_digest(expected, signature.strip().lower())
