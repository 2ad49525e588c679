"""Gusto API client: OAuth tokens (refresh under a lock), version pinning, paging, errors.

Sources (Gusto's documentation): OAuth authorization code, refresh rotation and the system
access token, https://docs.gusto.com/app-integrations/docs/oauth2 and
https://docs.gusto.com/embedded-payroll/docs/company-access-tokens; the ``X-Gusto-API-Version``
header (406 is not retryable), https://docs.gusto.com/embedded-payroll/docs/getting-setup; rate
limits (429 + ``Retry-After``, ``X-RateLimit-*``), https://docs.gusto.com/app-integrations/docs/rate-limits;
``page``/``per`` pagination, https://docs.gusto.com/app-integrations/docs/pagination; webhook
subscriptions, https://docs.gusto.com/embedded-payroll/docs/webhooks. Paths, error bodies and
payroll JSON: the Gusto OpenAPI document ("OAS" below), https://github.com/Gusto/gusto-python-client
``.speakeasy/logs/changes/new.openapi.yaml`` (amounts arrive as strings *and* numbers: every
body is parsed with ``parse_float=Decimal``).

Every request goes through :class:`connector_tasks.core.client.JsonApiClient` (budget, send,
rate headers, error mapping, exact JSON); tokens are :class:`connector_tasks.core.oauth.TokenSet`
renewed with :func:`connector_tasks.core.oauth.refresh_under_lock`. Nothing here reads the
environment.
"""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlencode

import requests

from connector_tasks.core.client import JsonApiClient, parse_json
from connector_tasks.core.errors import AuthError, ConfigurationError, ConnectorError, TransientApiError
from connector_tasks.core.http import BODY_SNIPPET, DEFAULT_TIMEOUT
from connector_tasks.core.oauth import BearerAuth, TokenSet, TokenStore, refresh_under_lock

SYSTEM = "gusto"
DEFAULT_API_VERSION = "2025-06-15"
TOKEN_LIFETIME = 7200.0        # seconds, when a token reply has no expires_in (company-access-tokens doc)
PAGE_SIZE = 100                # OAS: max 100 employee_compensations / payrolls per page
PAYROLL_INCLUDE = "benefits,deductions,taxes,totals,payroll_taxes,payroll_status_meta"


def _token_from(body: Any, previous: TokenSet | None = None) -> TokenSet:
    """A company :class:`TokenSet` from a ``/oauth/token`` reply (``expires_in`` seconds from
    ``created_at``; a refresh token is required). Raises :class:`AuthError`."""
    return TokenSet.from_response(body, system=SYSTEM, default_expires_in=TOKEN_LIFETIME,
                                  require_refresh=True, previous=previous)


class _SystemAccess:
    """The application's system access token (``grant_type=system_access``) as a
    :class:`~connector_tasks.core.client.RequestAuth`: cached in the client until
    :data:`~connector_tasks.core.oauth.REFRESH_MARGIN` seconds before it expires, forgotten on
    a 401."""

    def __init__(self, token_call: Callable[[dict], dict]):
        self._token_call = token_call
        self._lock = threading.Lock()
        self._tokens: TokenSet | None = None

    def token(self) -> str:
        """The cached token, or a new one from ``/oauth/token``; raises :class:`AuthError`."""
        with self._lock:
            if self._tokens is None or self._tokens.expired():
                body = self._token_call({"grant_type": "system_access"})
                self._tokens = TokenSet.from_response(body, system=SYSTEM, default_expires_in=TOKEN_LIFETIME)
            return self._tokens.access_token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def unauthorized(self, sent: Mapping[str, str]) -> None:
        with self._lock:
            if self._tokens and sent.get("Authorization") == f"Bearer {self._tokens.access_token}":
                self._tokens = None


def _error_messages(resp: requests.Response) -> list[str]:
    """The messages of a Gusto error body: ``errors[].message`` (OAS ``Not-Found-Error-Object``,
    ``Unprocessable-Entity-Error-Object``; nested ``errors`` too), an OAuth
    ``error_description``/``error``, or a 406's ``message`` (getting-setup doc)."""
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


class GustoClient(JsonApiClient):
    """Talks to one Gusto application (``client_id``) on behalf of one company connection.

    ``base_url``: ``https://api.gusto.com`` / ``https://api.gusto-demo.com``
    (https://docs.gusto.com/app-integrations/docs/authentication) or the emulator.
    ``token_store``: the connection's :class:`~connector_tasks.core.oauth.TokenStore`.
    ``api_version``: pinned ``X-Gusto-API-Version`` (https://docs.gusto.com/embedded-payroll/docs/getting-setup).
    ``before_request()``: called before every ``/v1`` call (global rate budget: Gusto allows 200
    requests per rolling 60 s per grant, https://docs.gusto.com/app-integrations/docs/rate-limits).
    ``on_rate_limited(retry_after_seconds | None)``: called on a 429 before
    :class:`RateLimitedError` is raised. ``on_response(headers)``: called with the headers of
    every other ``/v1`` response, so ``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset``
    holds the budget back before a 429 happens. ``timeout``: (connect, read) seconds.

    Errors: :class:`AuthError` (401/403 after one refresh, ``invalid_grant``, no tokens),
    :class:`RateLimitedError` (429, ``retry_after`` seconds), :class:`TransientApiError`
    (5xx, 408, transport, a body that is not JSON), :class:`ConfigurationError` (406 version
    refused), :class:`ConflictError` (409), :class:`RejectedError` (other 4xx, ``lines`` =
    Gusto's messages). No call is retried here except once after a refresh on 401.
    """

    SYSTEM = SYSTEM
    LABEL = "Gusto"

    def __init__(self, base_url: str, client_id: str, client_secret: str, token_store: TokenStore, *,
                 api_version: str = DEFAULT_API_VERSION, session: requests.Session | None = None,
                 before_request: Callable[[], None] | None = None,
                 on_rate_limited: Callable[[float | None], None] | None = None,
                 on_response: Callable[[Mapping[str, str]], object] | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT):
        super().__init__(base_url, session=session, timeout=timeout, before_request=before_request,
                         on_rate_limited=on_rate_limited, on_response=on_response)
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_store = token_store
        self.api_version = api_version
        self._company_auth = BearerAuth(token_store, self._renew)
        self._system_auth = _SystemAccess(self._token_call)

    # ------------------------------------------------------------------ OAuth
    def authorization_url(self, redirect_uri: str, state: str) -> str:
        """The consent URL: ``/oauth/authorize?client_id&redirect_uri&response_type=code&state``
        (redirect_uri percent-encoded; https://docs.gusto.com/app-integrations/docs/oauth2)."""
        return f"{self.base_url}/oauth/authorize?" + urlencode(
            {"client_id": self.client_id, "redirect_uri": redirect_uri, "response_type": "code",
             "state": state})

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Exchange an authorization code (single use, 10 minutes) for tokens, learn the company
        from ``GET /v1/token_info`` (OAS ``Token-Info``), save them in the store (under its
        lock) and return them (https://docs.gusto.com/app-integrations/docs/oauth2).
        Raises :class:`AuthError` on ``invalid_grant``/``invalid_client``."""
        tokens = _token_from(self._token_call({"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": redirect_uri}))
        info = self._json(self._call("GET", f"{self.base_url}/v1/token_info", headers={
            **self._api_headers(), "Authorization": f"Bearer {tokens.access_token}"}))
        resource = (info or {}).get("resource") or {}
        company = resource.get("uuid") if resource.get("type") == "Company" else None
        tokens = replace(tokens, company_uuid=company)
        with self.token_store.lock():
            self.token_store.save(tokens)
        return tokens

    def system_access_token(self) -> str:
        """The application's system access token (``grant_type=system_access``,
        https://docs.gusto.com/embedded-payroll/docs/webhooks), cached in this client until
        :data:`~connector_tasks.core.oauth.REFRESH_MARGIN` seconds before it expires. Raises
        :class:`AuthError` when Gusto refuses the grant."""
        return self._system_auth.token()

    def _api_headers(self) -> dict[str, str]:
        return {"X-Gusto-API-Version": self.api_version, "Accept": "application/json"}

    def _token_call(self, fields: dict) -> dict:
        """POST ``/oauth/token`` with a JSON body (client_secret never in the URL: that is a
        400, https://docs.gusto.com/embedded-payroll/docs/company-access-tokens)."""
        payload = {"client_id": self.client_id, "client_secret": self.client_secret, **fields}
        resp = self._send("POST", f"{self.base_url}/oauth/token", budget=False, json=payload,
                          headers=self._api_headers())
        if resp.status_code in (400, 401):
            messages = _error_messages(resp)
            try:
                error = (parse_json(resp.text) or {}).get("error")
            except (ValueError, AttributeError):
                error = None
            if error in ("invalid_grant", "invalid_client", "unauthorized_client") or resp.status_code == 401:
                raise AuthError(f"Gusto refused the {fields.get('grant_type')} grant ({error or resp.status_code})",
                                system=SYSTEM, status=resp.status_code, body=resp.text[:BODY_SNIPPET],
                                detail="; ".join(messages) or None)
        if not 200 <= resp.status_code < 300:
            raise self._error(resp, "POST /oauth/token")
        return self._json(resp)

    def _renew(self, current: TokenSet | None) -> TokenSet:
        """Exchange the stored refresh token for a new pair (``grant_type=refresh_token``; the
        old refresh token dies on first use of the new access token,
        https://docs.gusto.com/app-integrations/v2024-04-01/reference/refresh-access-token).
        Raises :class:`AuthError` when nothing is stored or Gusto refuses the grant."""
        if current is None:
            raise AuthError("no Gusto tokens stored for this connection (connect the company first)",
                            system=SYSTEM)
        body = self._token_call({"grant_type": "refresh_token", "refresh_token": current.refresh_token})
        return _token_from(body, previous=current)

    def _refresh(self, failed_access_token: str | None) -> TokenSet:
        """Refresh under the store's lock unless another worker already did
        (:func:`~connector_tasks.core.oauth.refresh_under_lock`)."""
        return refresh_under_lock(self.token_store, failed_access_token, self._renew)

    # ------------------------------------------------------------------ transport
    def _request(self, method: str, path: str, *, params: dict | None = None,
                 json_body: dict | None = None, auth: str = "company") -> requests.Response:
        """One API call with ``company`` or ``system`` auth; refresh on expiry or on one 401."""
        return self._call(method, f"{self.base_url}{path}", headers=self._api_headers(),
                          auth=self._system_auth if auth == "system" else self._company_auth,
                          params=params, json=json_body)

    def _error_lines(self, resp: requests.Response) -> list[str]:
        return _error_messages(resp)

    def _special_error(self, resp: requests.Response, lines: list[str], what: str) -> ConnectorError | None:
        """406: the pinned version is refused (https://docs.gusto.com/embedded-payroll/docs/getting-setup)."""
        if resp.status_code == 406:
            return ConfigurationError(
                f"Gusto refused X-Gusto-API-Version {self.api_version} (406; pin a supported "
                f"version >= the application's minimum)", system=SYSTEM, detail="; ".join(lines) or None)
        return None

    def _error_summary(self, resp: requests.Response, what: str) -> str | None:
        if resp.status_code == 429:
            return f"Gusto rate limit exceeded on {resp.request.method} {resp.url.split('?')[0]}"
        return None

    def _pages(self, path: str, params: dict, *, auth: str = "company") -> Iterator[tuple[Any, requests.Response]]:
        """Yield ``(parsed body, response)`` for ``page`` 1.. with ``per=100`` until
        ``X-Total-Pages`` (https://docs.gusto.com/app-integrations/docs/pagination), or,
        without the header, until a short page."""
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
        ``include=benefits,deductions,taxes,totals,payroll_taxes,payroll_status_meta`` (the
        status meta carries ``expected_debit_time``, when Gusto debits the company), every
        ``employee_compensations`` page (per=100) merged into the first page's body (OAS
        ``GET /v1/companies/{company_id}/payrolls/{payroll_id}``, ``Payroll-Show``). Amounts come
        back as ``str`` or ``Decimal`` (never float). Raises the :class:`GustoClient` errors."""
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
        (at most 1 year apart), regular and off-cycle, processed or unprocessed, all pages
        (OAS ``GET /v1/companies/{company_id}/payrolls``). Raises :class:`RejectedError` (422)
        for a range Gusto refuses, and the other :class:`GustoClient` errors."""
        params = {"processing_statuses": "processed" if processed else "unprocessed",
                  "payroll_types": "regular,off_cycle",
                  "start_date": str(start_date), "end_date": str(end_date)}
        out: list[dict] = []
        for body, _ in self._pages(f"/v1/companies/{company_id}/payrolls", params):
            out.extend(body or [])
        return out

    def list_employees(self, company_id: str) -> list[dict]:
        """Every employee of ``company_id`` — onboarding, active and terminated — all pages (OAS
        ``GET /v1/companies/{company_id}/employees``, ``Employee``)."""
        out: list[dict] = []
        for body, _ in self._pages(f"/v1/companies/{company_id}/employees", {}):
            out.extend(body or [])
        return out

    def get_employee(self, employee_id: str) -> dict:
        """``GET /v1/employees/{employee_id}`` (OAS ``Employee``): one employee with jobs and
        terminations. Raises :class:`RejectedError` (status 404) for an unknown or another
        company's employee."""
        return self._json(self._request("GET", f"/v1/employees/{employee_id}"))

    def list_earning_types(self, company_id: str) -> dict:
        """``GET /v1/companies/{company_id}/earning_types`` (OAS ``Earning-Type-List``):
        ``{"default": [{name, uuid, active}], "custom": [...]}``."""
        return self._json(self._request("GET", f"/v1/companies/{company_id}/earning_types"))

    def list_pay_schedules(self, company_id: str) -> list[dict]:
        """``GET /v1/companies/{company_id}/pay_schedules`` (OAS ``Pay-Schedule-List``), all pages:
        ``[{uuid, frequency, anchor_pay_date, name, custom_name, active, ...}]``."""
        out: list[dict] = []
        for body, _ in self._pages(f"/v1/companies/{company_id}/pay_schedules", {}):
            out.extend(body or [])
        return out

    # ------------------------------------------------------------------ system token
    def create_webhook_subscription(self, url: str, types: list[str]) -> dict:
        """``POST /v1/webhook_subscriptions`` → the subscription (status ``pending``); Gusto then
        POSTs the ``verification_token`` to ``url`` (https://docs.gusto.com/embedded-payroll/docs/webhooks;
        OAS ``Webhook-Subscription``)."""
        return self._json(self._request("POST", "/v1/webhook_subscriptions",
                                        json_body={"url": url, "subscription_types": list(types)},
                                        auth="system"))

    def verify_webhook_subscription(self, uuid: str, token: str) -> dict:
        """``PUT /v1/webhook_subscriptions/{uuid}/verify`` with the received token → the
        subscription (``verified``; https://docs.gusto.com/embedded-payroll/docs/webhooks).
        A wrong token raises :class:`RejectedError` (422)."""
        return self._json(self._request("PUT", f"/v1/webhook_subscriptions/{uuid}/verify",
                                        json_body={"verification_token": token}, auth="system"))

    def list_events(self, starting_after_uuid: str | None = None, limit: int = 100,
                    resource_uuid: str | None = None) -> list[dict]:
        """One page of ``GET /v1/events`` in ascending order after the cursor (exclusive),
        ``limit`` 1..100, with the system token (OAS ``GET /v1/events``: last 30 days); the
        caller advances the cursor with the last event's ``uuid``."""
        params: dict = {"limit": max(1, min(int(limit), 100)), "sort_order": "asc"}
        if starting_after_uuid:
            params["starting_after_uuid"] = starting_after_uuid
        if resource_uuid:
            params["resource_uuid"] = resource_uuid
        return self._json(self._request("GET", "/v1/events", params=params, auth="system"))
