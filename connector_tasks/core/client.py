"""The one request pipeline of the JSON vendor clients (every connector's ``client.py``).

Per request (:meth:`JsonApiClient._call`):

1. budget: ``before_request()`` (the global rate budget draw), then a concurrency slot
   (``slots.slot()``) where the vendor has one;
2. :func:`connector_tasks.core.http.send` (transport errors → :class:`TransientApiError`,
   logged without secrets);
3. ``on_response(headers)`` for every response but a 429 (rate headers such as
   ``X-RateLimit-Remaining``/``X-RateLimit-Reset``, fed to the global budget);
4. a 401 lets the ``auth`` renew once and the request is sent again;
5. a non-2xx reply becomes an error of :mod:`connector_tasks.core.errors`: the vendor's special
   cases (:meth:`JsonApiClient._special_error`) over the shared defaults of
   :func:`connector_tasks.core.http.classify_status` (401/403 AuthError, 409/412 ConflictError,
   429 RateLimitedError after ``on_rate_limited(retry_after)``, 408/5xx TransientApiError, other
   4xx RejectedError with the vendor's messages as ``lines``, RFC 9110 §15,
   https://www.rfc-editor.org/rfc/rfc9110#section-15);
6. :meth:`JsonApiClient._json` decodes the body with exact decimals (a body that is not JSON →
   :class:`TransientApiError` naming the system).
"""
from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import Any, Callable, ClassVar, ContextManager, Mapping, Protocol

import requests

from connector_tasks.core.errors import ConnectorError, TransientApiError
from connector_tasks.core.http import BODY_SNIPPET, DEFAULT_TIMEOUT, error_for_response, send


def parse_json(text: str) -> Any:
    """Parse JSON ``text`` with every number that has a fraction or exponent as ``Decimal``
    (a float would lose cents). Vendors type amounts as numbers in their schemas and send
    strings in their examples, or the other way round: both must read exactly.
    Integers stay ``int``. Raises ``ValueError`` on invalid JSON (including an empty text)."""
    return json.loads(text, parse_float=Decimal)


class RequestAuth(Protocol):
    """How a request is authorised: :meth:`headers` before each attempt, :meth:`unauthorized`
    with the headers that drew a 401 (then the request is sent once more)."""

    def headers(self) -> dict[str, str]:
        """Headers that authorise the next attempt (may log in or renew a token first)."""

    def unauthorized(self, sent: Mapping[str, str]) -> None:
        """The attempt with headers ``sent`` was answered 401: renew, forget or log in again."""


class Slots(Protocol):
    """Concurrent-request slots (a licence's limit on requests in flight at once): ``slot()``
    is a context manager holding one."""

    def slot(self) -> ContextManager[Any]:
        """Hold one slot while the request is in flight."""


class JsonApiClient:
    """Base of every JSON vendor client: budget → send → observe → errors → exact JSON.

    Subclasses set ``SYSTEM`` (the name in errors and logs: the registry name) and ``LABEL`` (the
    vendor as a person reads it), and override only their special cases:
    :meth:`_error_lines` (the vendor's error messages of a reply), :meth:`_special_error`
    (statuses or texts that do not follow the defaults), :meth:`_error_summary` (the wording of
    an error's message). ``EMPTY_BODY_OK``: an empty 2xx body decodes to ``None`` instead of
    raising.

    Constructor: ``base_url`` without a trailing slash is kept as ``self.base_url``;
    ``session`` (a ``requests.Session``, one is made when omitted); ``timeout`` (connect, read)
    seconds; ``before_request()`` called before every budgeted request (may raise
    :class:`RateLimitedError` when the budget is spent); ``on_rate_limited(retry_after seconds |
    None)`` called on a 429 before the error is raised; ``on_response(headers)`` called with the
    headers of every budgeted non-429 response; ``slots`` concurrent-request slots or ``None``.
    """

    SYSTEM: ClassVar[str] = ""
    LABEL: ClassVar[str] = ""
    EMPTY_BODY_OK: ClassVar[bool] = False

    def __init__(self, base_url: str, *, session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 before_request: Callable[[], None] | None = None,
                 on_rate_limited: Callable[[float | None], None] | None = None,
                 on_response: Callable[[Mapping[str, str]], object] | None = None,
                 slots: Slots | None = None):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.before_request = before_request
        self.on_rate_limited = on_rate_limited
        self.on_response = on_response
        self.slots = slots

    # ------------------------------------------------------------------ pipeline
    def _send(self, method: str, url: str, *, budget: bool = True, slot: bool | None = None,
              **kw) -> requests.Response:
        """Send one request and return the response, whatever its status.

        ``budget``: draw from ``before_request()`` first and show the reply's headers to
        ``on_response`` (unless a 429); ``slot`` (default: as ``budget``): hold a concurrency
        slot while in flight. ``kw`` goes to :func:`connector_tasks.core.http.send`. Raises
        :class:`TransientApiError` for transport failures, and what ``before_request`` raises.
        """
        if budget and self.before_request is not None:
            self.before_request()
        use_slot = budget if slot is None else slot
        hold = self.slots.slot() if use_slot and self.slots is not None else contextlib.nullcontext()
        with hold:
            resp = send(self.session, method, url, system=self.SYSTEM, timeout=self.timeout, **kw)
        if budget and self.on_response is not None and resp.status_code != 429:
            self.on_response(resp.headers)
        return resp

    def _call(self, method: str, url: str, *, auth: RequestAuth | None = None, what: str | None = None,
              headers: Mapping[str, str] | None = None, **kw) -> requests.Response:
        """One budgeted request to absolute ``url`` with ``headers`` plus ``auth``'s; a 401 is
        shown to ``auth.unauthorized`` and the request sent once more. Returns the 2xx
        response; raises :meth:`_error`'s error otherwise (``what`` names the request in it,
        default ``"<method> <url without query>"``), and the :meth:`_send` errors."""
        for attempt in (1, 2):
            sent = {**(headers or {}), **(auth.headers() if auth is not None else {})}
            resp = self._send(method, url, headers=sent, **kw)
            if resp.status_code != 401 or auth is None or attempt == 2:
                break
            auth.unauthorized(sent)
        if not 200 <= resp.status_code < 300:
            raise self._error(resp, what or f"{method} {url.split('?')[0]}")
        return resp

    def _error(self, resp: requests.Response, what: str) -> ConnectorError:
        """The error for non-2xx ``resp`` (returned, not raised): :meth:`_special_error` when
        it has one, else :func:`connector_tasks.core.http.error_for_response` with the vendor's
        messages (``detail``; ``lines`` of a RejectedError) and ``on_rate_limited`` on a 429."""
        lines = self._error_lines(resp)
        special = self._special_error(resp, lines, what)
        if special is not None:
            return special
        return error_for_response(resp, system=self.SYSTEM, message=self._error_summary(resp, what),
                                  messages=lines, on_rate_limited=self.on_rate_limited)

    def _json(self, resp: requests.Response) -> Any:
        """``resp``'s body through :func:`parse_json` (``None`` for an empty body when
        ``EMPTY_BODY_OK``). Raises :class:`TransientApiError` naming the vendor when the body
        is not JSON (a proxy's or gateway's page: nothing was learnt)."""
        if self.EMPTY_BODY_OK and not resp.text:
            return None
        try:
            return parse_json(resp.text)
        except ValueError as exc:
            raise TransientApiError(f"{self.LABEL} answered {resp.status_code} with a body that is not JSON",
                                    system=self.SYSTEM, status=resp.status_code,
                                    body=resp.text[:BODY_SNIPPET]) from exc

    # ------------------------------------------------------------------ vendor hooks
    def _error_lines(self, resp: requests.Response) -> list[str]:
        """The vendor's own error messages in ``resp``'s body, in order (default: none)."""
        return []

    def _special_error(self, resp: requests.Response, lines: list[str], what: str) -> ConnectorError | None:
        """The vendor's exception to the default mapping for ``resp``, or ``None`` (default)."""
        return None

    def _error_summary(self, resp: requests.Response, what: str) -> str | None:
        """The message of a default-mapped error; ``None`` (default) keeps
        :func:`~connector_tasks.core.http.classify_status`'s ``"<method> <url> answered <status>"``."""
        return None
