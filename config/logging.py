"""Logging set-up with secret redaction.

:class:`RedactingFilter` masks bearer tokens, OAuth tokens and secrets, Authorization headers
and webhook signatures in every record, whatever the logger, before any handler sees it.
"""
from __future__ import annotations

import logging
import re

_PATTERNS = [
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1\2 [REDACTED]"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [REDACTED]"),
    (re.compile(r"(?i)(['\"]?(?:access_token|refresh_token|client_secret|verification_token|password|secret|api_key|token)['\"]?\s*[:=]\s*['\"]?)[^'\"&\s,}]+"), r"\1[REDACTED]"),
    (re.compile(r"(?i)(x-[a-z0-9-]*signature[a-z0-9-]*['\"]?\s*[:=]\s*['\"]?)(?:sha256=)?[0-9a-f]{16,}"), r"\1[REDACTED]"),
    (re.compile(r"(?i)([?&](?:code|client_secret|refresh_token|access_token)=)[^&\s]+"), r"\1[REDACTED]"),
]


def redact(text: str) -> str:
    """``text`` with every token, secret, Authorization value and signature masked."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites the formatted message with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 - logging API
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover - a broken record is logged as is
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: str = "INFO") -> None:
    """Root logging at ``level`` with the redacting filter on every root handler."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
