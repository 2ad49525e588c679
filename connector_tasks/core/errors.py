"""The one error tree of ml-connector.

Clients raise these; flows raise :class:`MappingError`; tasks let the tree decide whether a
job is retried, parked as ``failed`` or finished. Nothing returns ``{}`` on failure.

Shape of the decision (see ``retryable``):

* retried: :class:`RateLimitedError`, :class:`TransientApiError` (connect errors, timeouts,
  5xx, a target or its agent that is down);
* parked at once: :class:`AuthError`, :class:`ConflictError`, :class:`RejectedError`
  (a ledger's line error, 4xx validation), :class:`MappingError`, :class:`ConfigurationError`.
"""
from __future__ import annotations


class ConnectorError(Exception):
    """Root of every error ml-connector raises on purpose.

    ``retryable`` tells a task whether another attempt may succeed.
    """

    retryable = False

    def __init__(self, message: str, *, system: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.system = system
        self.detail = detail

    def __str__(self) -> str:  # pragma: no cover - trivial
        prefix = f"[{self.system}] " if self.system else ""
        suffix = f": {self.detail}" if self.detail else ""
        return f"{prefix}{self.message}{suffix}"


class ConfigurationError(ConnectorError):
    """A setting is missing or invalid (names the variable or the connection field)."""


class MappingError(ConnectorError):
    """Source data cannot be mapped onto the target (unbalanced totals, missing mapping)."""


class ExternalApiError(ConnectorError):
    """A remote system answered with an error or did not answer.

    ``status`` is the HTTP status when there was one; ``body`` the (truncated) reply text.
    """

    def __init__(self, message: str, *, system: str | None = None, status: int | None = None,
                 body: str | None = None, detail: str | None = None):
        super().__init__(message, system=system, detail=detail)
        self.status = status
        self.body = body


class AuthError(ExternalApiError):
    """Credentials were refused (401/403, ``invalid_grant``) and a refresh did not help."""


class RateLimitedError(ExternalApiError):
    """The remote or our own budget refused the call; ``retry_after`` is in seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TransientApiError(ExternalApiError):
    """Connect error, timeout, 5xx or a target that is temporarily unavailable."""

    retryable = True


class ConflictError(ExternalApiError):
    """Optimistic-concurrency conflict (409/412) or an object locked by another request."""


class RejectedError(ExternalApiError):
    """The remote validated and refused the request (4xx validation, a ledger's line error).

    ``lines`` holds each error text the remote gave, in order.
    """

    def __init__(self, message: str, *, lines: list[str] | None = None, **kw):
        super().__init__(message, **kw)
        self.lines = list(lines or [])
