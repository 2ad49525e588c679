"""Gusto API client: OAuth tokens (refresh under a lock), version pinning, paging, errors.

Implements ``shared/reference/external-apis.md`` §1 (Gusto): §1.1 OAuth (authorization code,
refresh rotation, system access token), §1.2 the ``X-Gusto-API-Version`` header (406 is not
retryable), §1.3 rate limits (429 + ``Retry-After``), §1.4 error bodies and ``page``/``per``
pagination, §1.5 webhook subscriptions and ``/v1/events``, §1.6 payroll JSON (amounts arrive
as strings *and* numbers: every body is parsed with ``parse_float=Decimal``).

Every request goes through :func:`connector_tasks.core.http.send`; every failure raises a
:mod:`connector_tasks.core.errors` exception. Nothing here reads the environment.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, ContextManager, Iterator, Mapping, Protocol
from urllib.parse import urlencode

import requests

from connector_tasks.core.errors import (
    AuthError, ConfigurationError, ExternalApiError, TransientApiError,
)
from connector_tasks.core.http import DEFAULT_TIMEOUT, error_for_response, send

SYSTEM = "gusto"
DEFAULT_API_VERSION = "2025-06-15"
REFRESH_MARGIN = 60.0          # seconds before expires_at at which a token counts as expired
PAGE_SIZE = 100                # §1.6: max 100 employee_compensations / payrolls per page
PAYROLL_INCLUDE = "benefits,deductions,taxes,totals,payroll_taxes"


def parse_json(text: str) -> Any:
    """Parse a Gusto JSON body with every JSON number with a fraction as ``Decimal``.

    §1.6 "Type inconsistency pitfall": amounts arrive as strings or numbers; a float would lose
    cents. Raises ``ValueError`` on invalid JSON.
    """
    return json.loads(text, parse_float=Decimal)


@dataclass(frozen=True)
class TokenSet:
    """One company connection's OAuth tokens (§1.1).

    ``expires_at`` is epoch seconds (float); ``scope`` the space-separated scopes;
    ``company_uuid`` the company the token reaches (strict access, §1.1), when known.
    """

    access_token: str
    refresh_token: str
    expires_at: float
    scope: str = ""
    company_uuid: str | None = None

    def expired(self, now: float | None = None, margin: float = REFRESH_MARGIN) -> bool:
        """True when the access token expires within ``margin`` seconds of ``now``."""
        return (time.time() if now is None else now) >= self.expires_at - margin

    @classmethod
    def from_response(cls, body: dict, *, company_uuid: str | None = None,
                      now: float | None = None) -> "TokenSet":
        """Build from a ``/oauth/token`` response body (``expires_in`` seconds from
        ``created_at``, else from ``now``). Raises :class:`AuthError` when a field is missing."""
        try:
            access, refresh = body["access_token"], body["refresh_token"]
            expires_in = float(body.get("expires_in") or 7200)
        except (KeyError, TypeError, ValueError) as exc:
            raise AuthError("Gusto token response lacks access_token/refresh_token", system=SYSTEM,
                            detail=str(exc)) from exc
        if not access or not refresh:
            raise AuthError("Gusto token response lacks access_token/refresh_token", system=SYSTEM)
        created = body.get("created_at")
        start = float(created) if isinstance(created, (int, float, Decimal)) \
            else (time.time() if now is None else now)
        return cls(access_token=access, refresh_token=refresh, expires_at=start + expires_in,
                   scope=str(body.get("scope") or ""), company_uuid=company_uuid)


class TokenStore(Protocol):
    """Where one connection's :class:`TokenSet` lives (the lead's is Redis/DB backed).

    ``lock()`` returns a context manager holding a per-connection lock across processes;
    refreshes happen inside it (§1.8 pitfall 1).
    """

    def load(self) -> TokenSet | None:
        """The stored tokens, or ``None`` when the connection has none."""

    def save(self, tokens: TokenSet) -> None:
        """Store ``tokens`` durably (before the new access token is used)."""

    def lock(self) -> ContextManager[Any]:
        """A per-connection lock, as a context manager."""


class InMemoryTokenStore:
    """A :class:`TokenStore` in process memory (tests, one-process demos).

    ``saves`` counts :meth:`save` calls; ``history`` keeps every saved set, oldest first.
    """

    def __init__(self, tokens: TokenSet | None = None):
        self._tokens = tokens
        self._data_lock = threading.Lock()
        self._conn_lock = threading.Lock()
        self.history: list[TokenSet] = []

    @property
    def saves(self) -> int:
        return len(self.history)

    def load(self) -> TokenSet | None:
        with self._data_lock:
            return self._tokens

    def save(self, tokens: TokenSet) -> None:
        with self._data_lock:
            self._tokens = tokens
            self.history.append(tokens)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with self._conn_lock:
            yield


def _error_messages(resp: requests.Response) -> list[str]:
    """The messages of a Gusto error body: ``errors[].message`` (§1.4, nested ``errors`` too),
    an OAuth ``error_description``/``error``, or a 406's ``message`` (§1.2)."""
    try:
        body = parse_json(resp.text) if resp.text else None
    except ValueError:
        return []
    out: list[str] = []

    def walk(errors):
        for e in errors or []:
            if isinstance(e, dict):
                msg = e.get("message") or e.get("category")
                if msg:
                    key = e.get("error_key")
                    out.append(f"{key}: {msg}" if key and key not in ("base", "request") else str(msg))
                walk(e.get("errors"))

    if isinstance(body, dict):
        walk(body.get("errors"))
        for k in ("error_description", "error", "message"):
            if not out and body.get(k):
                out.append(str(body[k]))
    return out


class GustoClient:
    """Talks to one Gusto application (``client_id``) on behalf of one company connection.

    ``base_url``: ``https://api.gusto.com`` / ``https://api.gusto-demo.com`` (§1.1) or the
    emulator. ``token_store``: the connection's :class:`TokenStore`. ``api_version``: pinned
    ``X-Gusto-API-Version`` (§1.2). ``before_request()``: called before every ``/v1`` call
    (global rate budget: Gusto allows 200 requests per rolling 60 s per grant, §1.3).
    ``on_rate_limited(retry_after_seconds | None)``: called on a 429 before
    :class:`RateLimitedError` is raised. ``on_response(headers)``: called with the headers of
    every other ``/v1`` response, so ``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset``
    (§1.3) holds the budget back before a 429 happens. ``timeout``: (connect, read) seconds.

    Errors: :class:`AuthError` (401/403 after one refresh, ``invalid_grant``, no tokens),
    :class:`RateLimitedError` (429, ``retry_after`` seconds), :class:`TransientApiError`
    (5xx, 408, transport), :class:`ConfigurationError` (406 version refused),
    :class:`ConflictError` (409), :class:`RejectedError` (other 4xx, ``lines`` = Gusto's
    messages). No call is retried here except once after a refresh on 401.
    """

    def __init__(self, base_url: str, client_id: str, client_secret: str, token_store: TokenStore, *,
                 api_version: str = DEFAULT_API_VERSION, session: requests.Session | None = None,
                 before_request: Callable[[], None] | None = None,
                 on_rate_limited: Callable[[float | None], None] | None = None,
                 on_response: Callable[[Mapping[str, str]], object] | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_store = token_store
        self.api_version = api_version
        self.session = session or requests.Session()
        self.before_request = before_request
        self.on_rate_limited = on_rate_limited
        self.on_response = on_response
        self.timeout = timeout
        self._system_lock = threading.Lock()
        self._system_token: tuple[str, float] | None = None

    # ------------------------------------------------------------------ OAuth (§1.1)
    def authorization_url(self, redirect_uri: str, state: str) -> str:
        """The consent URL: ``/oauth/authorize?client_id&redirect_uri&response_type=code&state``
        (redirect_uri percent-encoded, §1.1)."""
        return f"{self.base_url}/oauth/authorize?" + urlencode(
            {"client_id": self.client_id, "redirect_uri": redirect_uri, "response_type": "code",
             "state": state})

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Exchange an authorization code (single use, 10 minutes) for tokens, learn the company
        from ``GET /v1/token_info``, save them in the store (under its lock) and return them.
        Raises :class:`AuthError` on ``invalid_grant``/``invalid_client``."""
        body = self._token_call({"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": redirect_uri})
        tokens = TokenSet.from_response(body)
        resp = self._send_api("GET", "/v1/token_info", token=tokens.access_token)
        if not 200 <= resp.status_code < 300:
            raise self._error_for(resp)
        info = self._json(resp)
        resource = (info or {}).get("resource") or {}
        company = resource.get("uuid") if resource.get("type") == "Company" else None
        tokens = TokenSet(tokens.access_token, tokens.refresh_token, tokens.expires_at,
                          tokens.scope, company)
        with self.token_store.lock():
            self.token_store.save(tokens)
        return tokens

    def system_access_token(self) -> str:
        """The application's system access token (``grant_type=system_access``), cached in this
        client until ``REFRESH_MARGIN`` seconds before it expires."""
        with self._system_lock:
            if self._system_token and time.time() < self._system_token[1] - REFRESH_MARGIN:
                return self._system_token[0]
            body = self._token_call({"grant_type": "system_access"})
            token = body.get("access_token")
            if not token:
                raise AuthError("Gusto system_access response has no access_token", system=SYSTEM)
            created = body.get("created_at")
            start = float(created) if isinstance(created, (int, Decimal)) else time.time()
            self._system_token = (token, start + float(body.get("expires_in") or 7200))
            return token

    def _token_call(self, fields: dict) -> dict:
        """POST ``/oauth/token`` with a JSON body (client_secret never in the URL: §1.1 → 400)."""
        payload = {"client_id": self.client_id, "client_secret": self.client_secret, **fields}
        resp = send(self.session, "POST", f"{self.base_url}/oauth/token", system=SYSTEM,
                    timeout=self.timeout, json=payload,
                    headers={"X-Gusto-API-Version": self.api_version, "Accept": "application/json"})
        if resp.status_code in (400, 401):
            messages = _error_messages(resp)
            try:
                error = (parse_json(resp.text) or {}).get("error")
            except (ValueError, AttributeError):
                error = None
            if error in ("invalid_grant", "invalid_client", "unauthorized_client") or resp.status_code == 401:
                raise AuthError(f"Gusto refused the {fields.get('grant_type')} grant ({error or resp.status_code})",
                                system=SYSTEM, status=resp.status_code, body=resp.text[:2000],
                                detail="; ".join(messages) or None)
        if not 200 <= resp.status_code < 300:
            raise self._error_for(resp)
        return self._json(resp)

    def _tokens(self) -> TokenSet:
        tokens = self.token_store.load()
        if tokens is None:
            raise AuthError("no Gusto tokens stored for this connection (connect the company first)",
                            system=SYSTEM)
        return tokens

    def _refresh(self, failed_access_token: str | None) -> TokenSet:
        """Refresh under the store's lock (§1.8 pitfall 1): re-load first; when another worker
        already rotated (stored access token differs from ``failed_access_token`` and is not
        expired) use it; else exchange the refresh token and save the new pair *before* the new
        access token is used (the old refresh token dies on first use of the new access token,
        OAS ``/oauth/token``)."""
        with self.token_store.lock():
            current = self._tokens()
            if current.access_token != failed_access_token and not current.expired():
                return current
            body = self._token_call({"grant_type": "refresh_token",
                                     "refresh_token": current.refresh_token})
            new = TokenSet.from_response(body, company_uuid=current.company_uuid)
            self.token_store.save(new)
            return new

    # ------------------------------------------------------------------ transport
    def _send_api(self, method: str, path: str, *, token: str, params: dict | None = None,
                  json_body: dict | None = None) -> requests.Response:
        if self.before_request is not None:
            self.before_request()
        headers = {"Authorization": f"Bearer {token}", "X-Gusto-API-Version": self.api_version,
                   "Accept": "application/json"}
        resp = send(self.session, method, f"{self.base_url}{path}", system=SYSTEM,
                    timeout=self.timeout, params=params, json=json_body, headers=headers)
        if self.on_response is not None and resp.status_code != 429:
            self.on_response(resp.headers)
        return resp

    def _request(self, method: str, path: str, *, params: dict | None = None,
                 json_body: dict | None = None, auth: str = "company") -> requests.Response:
        """One API call with ``company`` or ``system`` auth; refresh on expiry or on one 401."""
        if auth == "system":
            token = self.system_access_token()
            resp = self._send_api(method, path, token=token, params=params, json_body=json_body)
            if resp.status_code == 401:
                with self._system_lock:
                    if self._system_token and self._system_token[0] == token:
                        self._system_token = None
                resp = self._send_api(method, path, token=self.system_access_token(), params=params,
                                      json_body=json_body)
        else:
            tokens = self._tokens()
            if tokens.expired():
                tokens = self._refresh(tokens.access_token)
            resp = self._send_api(method, path, token=tokens.access_token, params=params,
                                  json_body=json_body)
            if resp.status_code == 401:
                tokens = self._refresh(tokens.access_token)
                resp = self._send_api(method, path, token=tokens.access_token, params=params,
                                      json_body=json_body)
        if not 200 <= resp.status_code < 300:
            raise self._error_for(resp)
        return resp

    def _error_for(self, resp: requests.Response) -> ExternalApiError | ConfigurationError:
        """Map a non-2xx response to the error tree (calls ``on_rate_limited`` on 429)."""
        messages = _error_messages(resp)
        detail = "; ".join(messages) or None
        if resp.status_code == 406:
            return ConfigurationError(
                f"Gusto refused X-Gusto-API-Version {self.api_version} (406; pin a supported "
                f"version >= the application's minimum)", system=SYSTEM, detail=detail)
        limited = (f"Gusto rate limit exceeded on {resp.request.method} {resp.url.split('?')[0]}"
                   if resp.status_code == 429 else None)
        return error_for_response(resp, system=SYSTEM, message=limited, messages=messages,
                                  on_rate_limited=self.on_rate_limited)

    def _json(self, resp: requests.Response) -> Any:
        try:
            return parse_json(resp.text)
        except ValueError as exc:
            raise TransientApiError(f"Gusto answered {resp.status_code} with a body that is not JSON",
                                    system=SYSTEM, status=resp.status_code, body=resp.text[:2000]) from exc

    def _pages(self, path: str, params: dict, *, auth: str = "company") -> Iterator[tuple[Any, requests.Response]]:
        """Yield ``(parsed body, response)`` for ``page`` 1.. with ``per=100`` until
        ``X-Total-Pages`` (§1.4), or, without the header, until a short page."""
        page = 1
        while True:
            resp = self._request("GET", path, params={**params, "page": page, "per": PAGE_SIZE}, auth=auth)
            body = self._json(resp)
            yield body, resp
            total_pages = resp.headers.get("X-Total-Pages")
            if total_pages is not None:
                try:
                    if page >= int(total_pages):
                        return
                except ValueError:
                    return
            else:
                items = body if isinstance(body, list) else (body or {}).get("employee_compensations") or []
                if len(items) < PAGE_SIZE:
                    return
            page += 1
            if page > 10_000:
                raise TransientApiError("Gusto pagination did not end", system=SYSTEM)

    # ------------------------------------------------------------------ company reads
    def get_payroll(self, company_id: str, payroll_id: str) -> dict:
        """``GET /v1/companies/{company_id}/payrolls/{payroll_id}`` with
        ``include=benefits,deductions,taxes,totals,payroll_taxes``, every
        ``employee_compensations`` page (per=100) merged into the first page's body (§1.6).
        Amounts come back as ``str`` or ``Decimal`` (never float)."""
        path = f"/v1/companies/{company_id}/payrolls/{payroll_id}"
        merged: dict | None = None
        for body, _ in self._pages(path, {"include": PAYROLL_INCLUDE}):
            if merged is None:
                merged = body
                merged["employee_compensations"] = list(body.get("employee_compensations") or [])
            else:
                merged["employee_compensations"].extend(body.get("employee_compensations") or [])
        return merged or {}

    def list_payrolls(self, company_id: str, start_date: dt.date | str, end_date: dt.date | str,
                      processed: bool = True) -> list[dict]:
        """Payrolls of ``company_id`` whose pay period lies within ``start_date``..``end_date``
        (at most 1 year apart, OAS), regular and off-cycle, processed or unprocessed, all pages
        (§1.6 list)."""
        params = {"processing_statuses": "processed" if processed else "unprocessed",
                  "payroll_types": "regular,off_cycle",
                  "start_date": str(start_date), "end_date": str(end_date)}
        out: list[dict] = []
        for body, _ in self._pages(f"/v1/companies/{company_id}/payrolls", params):
            out.extend(body or [])
        return out

    def list_employees(self, company_id: str) -> list[dict]:
        """Every employee of ``company_id`` — onboarding, active and terminated — all pages (§1.7)."""
        out: list[dict] = []
        for body, _ in self._pages(f"/v1/companies/{company_id}/employees", {}):
            out.extend(body or [])
        return out

    def get_employee(self, employee_id: str) -> dict:
        """``GET /v1/employees/{employee_id}`` (§1.7): one employee with jobs and terminations.
        Raises NotFoundError (404) for an unknown or another company's employee."""
        return self._json(self._request("GET", f"/v1/employees/{employee_id}"))

    def list_earning_types(self, company_id: str) -> dict:
        """``GET /v1/companies/{company_id}/earning_types`` (§1.7): ``{"default": [{name, uuid,
        active}], "custom": [...]}``."""
        return self._json(self._request("GET", f"/v1/companies/{company_id}/earning_types"))

    def list_pay_schedules(self, company_id: str) -> list[dict]:
        """``GET /v1/companies/{company_id}/pay_schedules`` (OAS ``Pay-Schedule-List``), all pages:
        ``[{uuid, frequency, anchor_pay_date, name, custom_name, active, ...}]``."""
        out: list[dict] = []
        for body, _ in self._pages(f"/v1/companies/{company_id}/pay_schedules", {}):
            out.extend(body or [])
        return out

    # ------------------------------------------------------------------ system token (§1.5)
    def create_webhook_subscription(self, url: str, types: list[str]) -> dict:
        """``POST /v1/webhook_subscriptions`` → the subscription (status ``pending``); Gusto then
        POSTs the ``verification_token`` to ``url``."""
        return self._json(self._request("POST", "/v1/webhook_subscriptions",
                                        json_body={"url": url, "subscription_types": list(types)},
                                        auth="system"))

    def verify_webhook_subscription(self, uuid: str, token: str) -> dict:
        """``PUT /v1/webhook_subscriptions/{uuid}/verify`` with the received token → the
        subscription (``verified``). A wrong token raises :class:`RejectedError` (422)."""
        return self._json(self._request("PUT", f"/v1/webhook_subscriptions/{uuid}/verify",
                                        json_body={"verification_token": token}, auth="system"))

    def list_events(self, starting_after_uuid: str | None = None, limit: int = 100,
                    resource_uuid: str | None = None) -> list[dict]:
        """One page of ``GET /v1/events`` in ascending order after the cursor (exclusive),
        ``limit`` 1..100; the caller advances the cursor with the last event's ``uuid``."""
        params: dict = {"limit": max(1, min(int(limit), 100)), "sort_order": "asc"}
        if starting_after_uuid:
            params["starting_after_uuid"] = starting_after_uuid
        if resource_uuid:
            params["resource_uuid"] = resource_uuid
        return self._json(self._request("GET", "/v1/events", params=params, auth="system"))
