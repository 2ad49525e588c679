"""Acumatica contract-based REST API client: endpoint versions, value wrapping, OAuth2 or a
cookie session, licence budgets, errors.

Sources: URLs ``<site>/entity/Default/<version>/<Entity>`` and ``GET <site>/entity`` (a version
the instance does not serve answers 404 → :class:`ConfigurationError` naming it), the cookie
login/logout, async actions (202 + ``Location`` polled until 204), ``If-None-Match: *`` /
``If-Match: *`` on PUT, error bodies, and "API Login Limit" mapped to 429: Acumatica's official
REST client, https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp (``RootApi.cs``,
``AuthApi.cs``, ``ApiClientExtensions.cs``, ``Model/JournalTransaction.cs``). OAuth2 through the
instance's identity server (``<site>/identity/connect/token``, resource-owner ``password``
grant, scopes ``api offline_access``, refresh with rotation):
https://help.myob.com.au/advanced/Docs/Published/IntegrationDevelopmentGuide/OAuthOIDC_ResourceOwner_AccessToken.html .
Sessions, concurrent requests and requests per minute are limited per licence (MYOB Acumatica
help, "License Restrictions for API Users", help.myob.com.au): a cookie session is always
logged out; 429 and "API Login Limit" → :class:`RateLimitedError` (retried).

``<site>`` is the customer's instance URL, ``https://<host>/<instance>``. Every request goes
through :class:`connector_tasks.core.client.JsonApiClient`; OAuth tokens are
:class:`connector_tasks.core.oauth.TokenSet` renewed with
:func:`connector_tasks.core.oauth.refresh_under_lock`. Nothing here reads the environment or the
store.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, Mapping

import requests

from connector_tasks.connectors.acumatica import wire
from connector_tasks.connectors.acumatica.limits import ConcurrencySlots
from connector_tasks.core.client import JsonApiClient
from connector_tasks.core.errors import (
    AuthError, ConfigurationError, ConnectorError, RateLimitedError, TransientApiError,
)
from connector_tasks.core.http import BODY_SNIPPET, DEFAULT_TIMEOUT, retry_after_seconds
from connector_tasks.core.oauth import BearerAuth, TokenSet, TokenStore
from connector_tasks.core.retry import call_with_retries

SYSTEM = "acumatica"
#: Never ``api:concurrent_access``: it can break token requests (Nango's Acumatica guide, nango.dev).
SCOPES = "api offline_access"
#: ASSUMPTION: seconds when a token reply has no ``expires_in`` (the lifetime is undocumented).
TOKEN_LIFETIME = 3600.0
LOGIN_LIMIT = "API Login Limit"   # AcumaticaRESTAPIClientForCSharp AuthApi.cs VerifyResponseAsync


class _CookieLogin:
    """The cookie session as a :class:`~connector_tasks.core.client.RequestAuth`: log in before
    a request when no session is open; a 401 means the session expired (log in again)."""

    def __init__(self, client: "AcumaticaClient"):
        self.client = client

    def headers(self) -> dict[str, str]:
        """Open the session if needed (the cookie travels in the session); no headers."""
        self.client.login()
        return {}

    def unauthorized(self, sent: Mapping[str, str]) -> None:
        """Forget the expired session: the next attempt logs in again."""
        self.client._logged_in = False


class AcumaticaClient(JsonApiClient):
    """Talks to one Acumatica site for one connection.

    ``base_url``: the site, ``https://<host>/<instance>``. ``endpoint_version``: e.g.
    ``"24.200.001"`` (must match the instance). ``auth``: ``"oauth"`` (needs ``client_id`` of
    the form ``<guid>@<tenant>``, ``client_secret``, ``username``, ``password``,
    ``token_store``) or ``"cookie"`` (``username``, ``password``, ``tenant``, optional
    ``branch``). ``before_request()``: called before every request (the requests-per-minute
    budget); ``slots``: the concurrent-request slots; ``on_rate_limited(retry_after seconds |
    None)``: called on a 429. ``timeout``: (connect, read) seconds. ``login_attempts``: tries
    of a cookie login refused with "API Login Limit"/429.

    Use as a context manager (``with client: ...``): a cookie session opened inside is always
    logged out on exit. Errors: :class:`ConfigurationError` (404 endpoint/version, missing
    settings), :class:`AuthError` (credentials refused), :class:`RateLimitedError` (429, API
    Login Limit, budget spent), :class:`TransientApiError` (5xx, transport, a body that is not
    JSON), :class:`ConflictError` (409/412), :class:`RejectedError` (4xx validation; ``lines``
    = the per-field / per-line error texts). Sources: see the module docstring.
    """

    SYSTEM = SYSTEM
    LABEL = "Acumatica"
    EMPTY_BODY_OK = True

    def __init__(self, base_url: str, endpoint_version: str, *, auth: str = "oauth",
                 client_id: str | None = None, client_secret: str | None = None,
                 username: str | None = None, password: str | None = None, tenant: str | None = None,
                 branch: str | None = None, token_store: TokenStore | None = None,
                 endpoint: str = "Default", session: requests.Session | None = None,
                 before_request: Callable[[], None] | None = None,
                 on_rate_limited: Callable[[float | None], None] | None = None,
                 slots: ConcurrencySlots | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, login_attempts: int = 4):
        if auth not in ("oauth", "cookie"):
            raise ConfigurationError(f"Acumatica auth must be 'oauth' or 'cookie' (got {auth!r})", system=SYSTEM)
        if not base_url or not endpoint_version:
            raise ConfigurationError("Acumatica connection needs base_url and endpoint_version", system=SYSTEM)
        if auth == "oauth" and not (client_id and client_secret and token_store is not None):
            raise ConfigurationError("Acumatica OAuth needs client_id, client_secret and a token store",
                                     system=SYSTEM)
        if auth == "oauth" and "@" not in client_id:
            raise ConfigurationError(f"Acumatica client_id must be '<guid>@<tenant>' (got {client_id!r})",
                                     system=SYSTEM)
        if auth == "cookie" and not (username and password):
            raise ConfigurationError("Acumatica cookie login needs username and password", system=SYSTEM)
        super().__init__(base_url, session=session, timeout=timeout, before_request=before_request,
                         on_rate_limited=on_rate_limited, slots=slots)
        self.endpoint = endpoint
        self.endpoint_version = endpoint_version
        self.auth = auth
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password
        self.tenant, self.branch = tenant, branch
        self.token_store = token_store
        self.login_attempts = login_attempts
        self._logged_in = False
        self._login_lock = threading.Lock()
        self._auth = BearerAuth(token_store, self._renew) if auth == "oauth" else _CookieLogin(self)

    @property
    def entity_base(self) -> str:
        """``<site>/entity/<endpoint>/<version>`` (AcumaticaRESTAPIClientForCSharp
        ``GetEndpointPath``)."""
        return f"{self.base_url}/entity/{self.endpoint}/{self.endpoint_version}"

    # ------------------------------------------------------------------ session lifetime
    def __enter__(self) -> "AcumaticaClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Log the cookie session out if one is open (``POST /entity/auth/logout``; a session
        left open holds one of the licence's API-user seats). Never raises: a failed logout is
        logged by the HTTP layer only."""
        if self.auth == "cookie" and self._logged_in:
            self._logged_in = False
            with contextlib.suppress(Exception):
                self._send("POST", f"{self.base_url}/entity/auth/logout", budget=False)
            self.session.cookies.clear()

    def _login_once(self) -> None:
        body = {"name": self.username, "password": self.password}
        if self.tenant:
            body["tenant"] = self.tenant
        if self.branch:
            body["branch"] = self.branch
        resp = self._send("POST", f"{self.base_url}/entity/auth/login", data=wire.dumps(body),
                          headers={"Content-Type": "application/json", "Accept": "application/json"})
        if resp.status_code in (200, 204):
            self._logged_in = True
            return
        raise self._error(resp, "login")

    def login(self) -> None:
        """Open the cookie session (``POST /entity/auth/login`` → 204, AuthApi.cs), retrying
        "API Login Limit"/429 up to ``login_attempts`` times with backoff; then
        :class:`RateLimitedError` goes to the caller. :class:`AuthError` when refused."""
        with self._login_lock:
            if not self._logged_in:
                call_with_retries(self._login_once, attempts=self.login_attempts, initial=0.3, maximum=3.0)

    # ------------------------------------------------------------------ OAuth
    def _token_call(self, fields: dict) -> dict:
        """POST ``<site>/identity/connect/token`` form-encoded (MYOB Acumatica
        OAuthOIDC_ResourceOwner_AccessToken); every 400/401 is a refused grant."""
        resp = self._send("POST", f"{self.base_url}/identity/connect/token", budget=False, slot=True,
                          data={"client_id": self.client_id, "client_secret": self.client_secret, **fields},
                          headers={"Accept": "application/json"})
        if resp.status_code in (400, 401):
            msgs = wire.error_messages(resp.text)
            raise AuthError(f"Acumatica refused the {fields.get('grant_type')} grant", system=SYSTEM,
                            status=resp.status_code, body=resp.text[:BODY_SNIPPET], detail="; ".join(msgs) or None)
        if not 200 <= resp.status_code < 300:
            raise self._error(resp, "token")
        return self._json(resp)

    def _renew(self, current: TokenSet | None) -> TokenSet:
        """New tokens for :func:`~connector_tasks.core.oauth.refresh_under_lock`: the refresh
        grant (rotating: the new refresh token replaces the old), or, without a refresh token or
        when it is dead, the password grant. Raises :class:`AuthError`."""
        body = None
        if current and current.refresh_token:
            try:
                body = self._token_call({"grant_type": "refresh_token", "refresh_token": current.refresh_token})
            except AuthError:
                if not (self.username and self.password):
                    raise
        if body is None:
            if not (self.username and self.password):
                raise AuthError("no Acumatica tokens and no username/password to obtain them", system=SYSTEM)
            body = self._token_call({"grant_type": "password", "username": self.username,
                                     "password": self.password, "scope": SCOPES})
        return TokenSet.from_response(body, system=SYSTEM, default_expires_in=TOKEN_LIFETIME, previous=current)

    # ------------------------------------------------------------------ transport
    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                headers: dict | None = None) -> requests.Response:
        """One API call to ``<entity_base>/<path>`` (or an absolute ``path`` URL) with ``body``
        (JSON via :func:`wire.dumps`, Decimals exact); a 401 renews the token / logs in again
        once. Returns the 2xx response; raises the error tree (see the class docstring)."""
        url = path if path.startswith("http") else f"{self.entity_base}/{path.lstrip('/')}"
        hdrs = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            hdrs["Content-Type"] = "application/json"
            data = wire.dumps(body).encode()
        return self._call(method, url, auth=self._auth, what=f"{method} {path.split('?')[0]}",
                          params=params, data=data, headers=hdrs)

    def _error_lines(self, resp: requests.Response) -> list[str]:
        return wire.error_messages(resp.text)

    def _special_error(self, resp: requests.Response, lines: list[str], what: str) -> ConnectorError | None:
        """404 under the entity base: the instance does not serve this endpoint version.
        "API Login Limit" in any reply: every API-user seat of the licence is taken."""
        detail = "; ".join(lines) or None
        status = resp.status_code
        if status == 404 and resp.url.startswith(self.entity_base):
            return ConfigurationError(
                f"Acumatica answered 404 for endpoint {self.endpoint}/{self.endpoint_version} at "
                f"{self.base_url}: the instance does not serve endpoint version "
                f"{self.endpoint_version} (set the connection's endpoint_version)", system=SYSTEM,
                detail=detail)
        if LOGIN_LIMIT.lower() in (resp.text or "").lower():
            # A seat frees when another worker logs out, so this is no reason to stop other
            # requests (the request budget is not penalised); ASSUMPTION: retry after about a
            # second unless the reply says otherwise.
            return RateLimitedError(f"Acumatica {LOGIN_LIMIT} on {what} ({status}): every API-user "
                                    "session of the licence is in use", system=SYSTEM, status=status,
                                    body=resp.text[:BODY_SNIPPET], retry_after=retry_after_seconds(resp) or 1.0,
                                    detail=detail)
        return None

    def _error_summary(self, resp: requests.Response, what: str) -> str | None:
        if resp.status_code == 429:
            return f"Acumatica request limit on {what} (429)"
        return f"Acumatica refused {what} ({resp.status_code})"

    # ------------------------------------------------------------------ entities
    def list_entities(self, entity: str, *, filter: str | None = None, select: str | None = None,
                      expand: str | None = None, top: int | None = None) -> list[dict]:
        """``GET <Entity>`` with the OData options ``$filter``, ``$select``, ``$expand``, ``$top``
        (strings; ``top`` an int): the records as plain dicts (:func:`wire.unwrap`; amounts
        ``Decimal``). Source: ``ApiClientExtensions.cs`` of the official client,
        https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp . Raises the errors of the
        class docstring."""
        params = {k: v for k, v in {"$filter": filter, "$select": select, "$expand": expand,
                                    "$top": top}.items() if v is not None}
        body = self._json(self.request("GET", entity, params=params)) or []
        return [wire.unwrap(e) for e in body]

    def put_entity(self, entity: str, fields: dict, *, insert_only: bool = False, update_only: bool = False,
                   expand: str | None = None) -> dict:
        """``PUT <Entity>`` (upsert) with ``fields`` (plain values, wrapped here); ``insert_only``
        sends ``If-None-Match: *``, ``update_only`` ``If-Match: *`` (``ComposePutHeaders`` of
        https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp ``ApiClientExtensions.cs``).
        Returns the record unwrapped. Raises :class:`RejectedError` with the per-field and
        per-line errors as ``lines`` (422), and the other errors of the class docstring."""
        headers = {"If-None-Match": "*"} if insert_only else {"If-Match": "*"} if update_only else {}
        params = {"$expand": expand} if expand else None
        return wire.unwrap(self._json(self.request("PUT", entity, params=params, body=wire.wrap(fields),
                                                   headers=headers)) or {})

    def invoke_action(self, entity: str, action: str, fields: dict, *, wait: float = 60.0,
                      poll: float = 0.5) -> None:
        """``POST <Entity>/<Action>`` with ``{"entity": fields}``; 202 + ``Location`` is polled
        until 204 every ``poll`` seconds (``InvokeActionAsync``/``WaitActionCompletionAsync`` of
        https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp ``ApiClientExtensions.cs``).
        Raises :class:`TransientApiError` when it is still running after ``wait`` seconds (the
        caller retries; releasing twice is refused by Acumatica, so the caller checks the status
        first), and the errors of the class docstring."""
        resp = self.request("POST", f"{entity}/{action}", body={"entity": wire.wrap(fields)})
        if resp.status_code == 204:
            return
        location = resp.headers.get("Location")
        if resp.status_code != 202 or not location:
            return
        url = requests.compat.urljoin(self.base_url + "/", location)
        deadline = time.monotonic() + wait
        while True:
            r = self.request("GET", url)
            if r.status_code == 204:
                return
            if time.monotonic() > deadline:
                raise TransientApiError(f"Acumatica action {action} still running after {wait:.0f} s",
                                        system=SYSTEM)
            time.sleep(poll)

    def endpoints(self) -> list[dict]:
        """``GET <site>/entity``: the endpoints and versions the instance serves,
        ``[{"name", "version", ...}]`` (``RootApi.cs`` of
        https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp). Raises the errors of the
        class docstring."""
        url = f"{self.base_url}/entity"
        body = self._json(self.request("GET", url)) or {}
        return list(body.get("endpoints") or [])

    # ------------------------------------------------------------------ GL
    def account_codes(self) -> set[str]:
        """Codes of the active GL accounts (``Account.AccountCD``; field names ASSUMPTION: not in
        the official client's models). Raises the errors of the class docstring."""
        return {str(a["AccountCD"]) for a in self.list_entities("Account", select="AccountCD,Active")
                if a.get("AccountCD") is not None and a.get("Active", True) is not False}

    def subaccount_codes(self) -> set[str]:
        """Codes of the active subaccounts (``Subaccount.SubaccountCD``; ASSUMPTION as
        :meth:`account_codes`). Raises the errors of the class docstring."""
        return {str(a["SubaccountCD"]) for a in self.list_entities("Subaccount", select="SubaccountCD,Active")
                if a.get("SubaccountCD") is not None and a.get("Active", True) is not False}

    def find_journals(self, marker: str) -> list[dict]:
        """GL batches (``JournalTransaction``, ``Model/JournalTransaction.cs`` of
        https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp) whose ``Description``
        contains ``marker`` (OData ``substringof``): ``[{"BatchNbr", "Module", "Description",
        "Status"}]``. Raises the errors of the class docstring."""
        quoted = marker.replace("'", "''")
        return self.list_entities("JournalTransaction",
                                  filter=f"Module eq 'GL' and substringof('{quoted}',Description)",
                                  select="BatchNbr,Module,Description,Status")

    def release_journal(self, batch_nbr: str, *, wait: float = 60.0, poll: float = 0.5) -> None:
        """Release GL batch ``batch_nbr`` (action ``ReleaseJournalTransaction``,
        ``Model/JournalTransaction.cs`` of https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp);
        ``wait``/``poll`` seconds as :meth:`invoke_action`, whose errors it raises."""
        self.invoke_action("JournalTransaction", "ReleaseJournalTransaction",
                           {"Module": "GL", "BatchNbr": batch_nbr}, wait=wait, poll=poll)
