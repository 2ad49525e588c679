"""Webhook signature checks (HMAC over the raw request body, compared in constant time).

A signature header comes from a stranger: anything that is not exactly the hex digest's shape
(non-ASCII, wrong length, not hex) is refused as malformed before any comparison, so a bad
header is a 401 and never an exception (``hmac.compare_digest`` raises ``TypeError`` for a
non-ASCII ``str``).
"""
from __future__ import annotations

import hashlib
import hmac
import re

#: a SHA-256 hex digest: 64 hex digits (either case)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")


def hmac_sha256_hex(secret: str | bytes, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``body`` keyed by ``secret``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def well_formed_hex_signature(signature) -> bool:
    """Whether ``signature`` (a header value) has the shape of a SHA-256 hex digest: a ``str``
    of exactly 64 ASCII hex digits once surrounding whitespace is stripped."""
    return isinstance(signature, str) and bool(_HEX64.match(signature.strip()))


def verify_hex_signature(secret: str | bytes | None, body: bytes, signature) -> bool:
    """True when ``signature`` is the hex HMAC-SHA256 of the raw ``body`` keyed by ``secret``.

    ``False`` (never an exception) for a missing secret or signature and for a malformed one
    (:func:`well_formed_hex_signature`); the comparison is :func:`hmac.compare_digest` on
    ASCII bytes, so timing reveals nothing.
    """
    if not secret or not signature or not well_formed_hex_signature(signature):
        return False
    expected = hmac_sha256_hex(secret, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("ascii"))
