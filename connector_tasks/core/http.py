"""The one choke point through which every outbound HTTP request goes.

:func:`send` maps transport failures into the error tree (connect error, timeout →
:class:`TransientApiError`) and logs each call without secrets (method, URL without its query,
status, milliseconds). Status handling is the caller's (each vendor words its errors
differently), helped by :func:`classify_status`, the shared defaults; the JSON vendor clients
get the whole pipeline from :class:`connector_tasks.core.client.JsonApiClient`.
"""
from __future__ import annotations

import logging
import time

import requests

from connector_tasks.core.errors import (
    AuthError, ConflictError, ExternalApiError, RateLimitedError, RejectedError, TransientApiError,
)

log = logging.getLogger("ml_connector.http")

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
BODY_SNIPPET = 2000


def send(session: requests.Session, method: str, url: str, *, system: str,
         timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, **kwargs) -> requests.Response:
    """Send one request and return the response, whatever its status.

    ``system`` names the remote for errors and logs. Raises :class:`TransientApiError` on a
    connect error, a timeout or a broken connection (nothing was learnt about the request's
    effect: callers must be idempotent or check before retrying).
    """
    started = time.monotonic()
    try:
        resp = session.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout as exc:
        raise TransientApiError(f"{method} {url} timed out", system=system,
                                detail=type(exc).__name__) from exc
    except requests.ConnectionError as exc:
        raise TransientApiError(f"{method} {url} could not connect", system=system,
                                detail=type(exc).__name__) from exc
    log.info("%s %s %s -> %s in %.0f ms", system, method, url.split("?")[0], resp.status_code,
             (time.monotonic() - started) * 1000)
    return resp


def retry_after_seconds(resp: requests.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form, RFC 9110 §10.2.3,
    https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3), or ``None`` when absent or
    unreadable (e.g. the HTTP-date form)."""
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify_status(resp: requests.Response, *, system: str, message: str | None = None) -> ExternalApiError:
    """The error-tree exception that fits a non-2xx response (returned, not raised).

    401/403 → AuthError; 409/412 → ConflictError; 429 → RateLimitedError (with Retry-After);
    408/5xx → TransientApiError; other 4xx → RejectedError (status classes: RFC 9110 §15,
    https://www.rfc-editor.org/rfc/rfc9110#section-15). ``message`` defaults to
    ``"<method> <url> answered <status>"``; ``body`` keeps the first 2000 characters.
    """
    status = resp.status_code
    body = (resp.text or "")[:BODY_SNIPPET]
    msg = message or f"{resp.request.method if resp.request else ''} {resp.url} answered {status}".strip()
    if status in (401, 403):
        return AuthError(msg, system=system, status=status, body=body)
    if status in (409, 412):
        return ConflictError(msg, system=system, status=status, body=body)
    if status == 429:
        return RateLimitedError(msg, system=system, status=status, body=body,
                                retry_after=retry_after_seconds(resp))
    if status == 408 or status >= 500:
        return TransientApiError(msg, system=system, status=status, body=body)
    return RejectedError(msg, system=system, status=status, body=body)


def error_for_response(resp: requests.Response, *, system: str, message: str | None = None,
                       messages=(), on_rate_limited=None) -> ExternalApiError:
    """:func:`classify_status` with the vendor's own error ``messages`` attached (joined into
    ``detail``; a RejectedError also carries them as ``lines``). On a 429,
    ``on_rate_limited(retry_after_seconds | None)`` is called first, so a shared budget can
    hold back every worker. Returned, not raised."""
    exc = classify_status(resp, system=system, message=message)
    messages = list(messages)
    exc.detail = "; ".join(messages) or None
    if isinstance(exc, RejectedError):
        exc.lines = messages
    if isinstance(exc, RateLimitedError) and on_rate_limited is not None:
        on_rate_limited(exc.retry_after)
    return exc
