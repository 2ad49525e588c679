"""Acumatica contract-based REST API client: endpoint versions, value wrapping, OAuth2 or a
cookie session, licence budgets, errors.

Implements ``shared/reference/external-apis.md`` §3: §3.1 URLs ``<site>/entity/Default/<version>/
<Entity>`` (a version the instance does not serve answers 404 → :class:`ConfigurationError`
naming it); §3.2 OAuth2 through the instance's identity server (``<site>/identity/connect/token``,
resource-owner ``password`` grant, scopes ``api offline_access``, refresh with rotation) or,
as the fallback, cookie login ``/entity/auth/login`` with a logout that always runs (sessions
count against the licence's API users); §3.3 wrapped fields, PUT upsert with ``If-None-Match:
*`` / ``If-Match: *``, async actions (202 + ``Location`` polled until 204), error bodies;
§3.4 licence limits (429 and "API Login Limit" → :class:`RateLimitedError`, retried).

``<site>`` is the customer's instance URL, ``https://<host>/<instance>``. Every request goes
through :func:`connector_tasks.core.http.send`; every failure raises the error tree. Nothing
here reads the environment or the store.
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Protocol

import requests

from connector_tasks.connectors.acumatica import wire
from connector_tasks.connectors.acumatica.limits import ConcurrencySlots
from connector_tasks.core.errors import (
    AuthError, ConfigurationError, ExternalApiError, RateLimitedError, TransientApiError,
)
from connector_tasks.core.http import DEFAULT_TIMEOUT, error_for_response, retry_after_seconds, send
from connector_tasks.core.retry import call_with_retries

SYSTEM = "acumatica"
SCOPES = "api offline_access"     # §3.2 (never api:concurrent_access, §3.5 pitfall 4)
REFRESH_MARGIN = 60.0             # seconds before expiry at which a token counts as expired
LOGIN_LIMIT = "API Login Limit"   # §3.4


@dataclass(frozen=True)
class TokenSet:
    """OAuth tokens of one connection; ``expires_at`` is epoch seconds."""

    access_token: str
    refresh_token: str | None
    expires_at: float

    def expired(self, margin: float = REFRESH_MARGIN) -> bool:
        """True when the access token expires within ``margin`` seconds."""
        return time.time() >= self.expires_at - margin

    @classmethod
    def from_response(cls, body: dict) -> "TokenSet":
        """From a token reply (§3.2 fields ``access_token, expires_in, refresh_token``).
        Raises :class:`AuthError` when ``access_token`` is missing."""
        access = (body or {}).get("access_token")
        if not access:
            raise AuthError("Acumatica token reply has no access_token", system=SYSTEM)
        # ASSUMPTION (§3.2 lifetime UNCONFIRMED): 3600 s when expires_in is absent.
        return cls(access, body.get("refresh_token"), time.time() + float(body.get("expires_in") or 3600))


class TokenStore(Protocol):
    """Where a connection's :class:`TokenSet` lives; ``lock()`` serialises renewals across
    processes (a rotated refresh token is single-use)."""

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...

    def lock(self) -> ContextManager[Any]: ...


class InMemoryTokenStore:
    """A :class:`TokenStore` in process memory (tests, one-off CLI calls)."""

    def __init__(self, tokens: TokenSet | None = None):
        self._tokens = tokens
        self._lock = threading.Lock()
        self.saves = 0

    def load(self) -> TokenSet | None:
        return self._tokens

    def save(self, tokens: TokenSet) -> None:
        self._tokens = tokens
        self.saves += 1

    def lock(self) -> ContextManager[Any]:
        return self._lock


class AcumaticaClient:
    """Talks to one Acumatica site for one connection.

    ``base_url``: the site, ``https://<host>/<instance>``. ``endpoint_version``: e.g.
    ``"24.200.001"`` (must match the instance, §3.5 pitfall 4). ``auth``: ``"oauth"`` (needs
    ``client_id`` of the form ``<guid>@<tenant>``, ``client_secret``, ``username``,
    ``password``, ``token_store``) or ``"cookie"`` (``username``, ``password``, ``tenant``,
    optional ``branch``). ``before_request()``: called before every request (the
    requests-per-minute budget); ``slots``: the concurrent-request slots; ``on_rate_limited(
    retry_after seconds | None)``: called on a 429. ``timeout``: (connect, read) seconds.

    Use as a context manager (``with client: ...``): a cookie session opened inside is always
    logged out on exit. Errors: :class:`ConfigurationError` (404 endpoint/version, missing
    settings), :class:`AuthError` (credentials refused), :class:`RateLimitedError` (429, API
    Login Limit, budget spent), :class:`TransientApiError` (5xx, transport),
    :class:`ConflictError` (409/412), :class:`RejectedError` (4xx validation; ``lines`` = the
    per-field / per-line error texts).
    """

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
        self.base_url = base_url.rstrip("/")
        self.endpoint = endpoint
        self.endpoint_version = endpoint_version
        self.auth = auth
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password
        self.tenant, self.branch = tenant, branch
        self.token_store = token_store
        self.session = session or requests.Session()
        self.before_request = before_request
        self.on_rate_limited = on_rate_limited
        self.slots = slots
        self.timeout = timeout
        self.login_attempts = login_attempts
        self._logged_in = False
        self._login_lock = threading.Lock()

    @property
    def entity_base(self) -> str:
        """``<site>/entity/<endpoint>/<version>`` (§3.1)."""
        return f"{self.base_url}/entity/{self.endpoint}/{self.endpoint_version}"

    # ------------------------------------------------------------------ session lifetime
    def __enter__(self) -> "AcumaticaClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Log the cookie session out if one is open (§3.2, §3.4: a session left open holds an
        API-user seat). Never raises: a failed logout is logged by the HTTP layer only."""
        if self.auth == "cookie" and self._logged_in:
            self._logged_in = False
            with contextlib.suppress(Exception):
                self._send("POST", f"{self.base_url}/entity/auth/logout", budget=False)
            self.session.cookies.clear()

    # ------------------------------------------------------------------ transport
    def _send(self, method: str, url: str, *, budget: bool = True, slot: bool | None = None,
              **kw) -> requests.Response:
        """Send through the budget (``budget``) and a concurrency slot (``slot``, default: as
        ``budget``); a logout takes neither, so it can never be held up."""
        if budget and self.before_request is not None:
            self.before_request()
        use_slot = budget if slot is None else slot
        hold = self.slots.slot() if (use_slot and self.slots is not None) else contextlib.nullcontext()
        with hold:
            return send(self.session, method, url, system=SYSTEM, timeout=self.timeout, **kw)

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
        """Open the cookie session (§3.2), retrying "API Login Limit"/429 a few times with
        backoff (§3.5 pitfall 1); then :class:`RateLimitedError` goes to the caller."""
        with self._login_lock:
            if not self._logged_in:
                call_with_retries(self._login_once, attempts=self.login_attempts, initial=0.3, maximum=3.0)

    def _token_call(self, fields: dict) -> dict:
        """POST ``<site>/identity/connect/token`` form-encoded (§3.2)."""
        resp = self._send("POST", f"{self.base_url}/identity/connect/token", budget=False, slot=True,
                          data={"client_id": self.client_id, "client_secret": self.client_secret, **fields},
                          headers={"Accept": "application/json"})
        if resp.status_code in (400, 401):
            msgs = wire.error_messages(resp.text)
            raise AuthError(f"Acumatica refused the {fields.get('grant_type')} grant", system=SYSTEM,
                            status=resp.status_code, body=resp.text[:2000], detail="; ".join(msgs) or None)
        if not 200 <= resp.status_code < 300:
            raise self._error(resp, "token")
        return wire.loads(resp.text)

    def _renew(self, failed_access: str | None) -> TokenSet:
        """Under the store's lock: reuse a token another worker renewed; else refresh (the new,
        rotated refresh token is saved before the access token is used); a dead refresh token
        falls back to the password grant."""
        with self.token_store.lock():
            current = self.token_store.load()
            if current and current.access_token != failed_access and not current.expired():
                return current
            body = None
            if current and current.refresh_token:
                try:
                    body = self._token_call({"grant_type": "refresh_token",
                                             "refresh_token": current.refresh_token})
                except AuthError:
                    if not (self.username and self.password):
                        raise
            if body is None:
                if not (self.username and self.password):
                    raise AuthError("no Acumatica tokens and no username/password to obtain them", system=SYSTEM)
                body = self._token_call({"grant_type": "password", "username": self.username,
                                         "password": self.password, "scope": SCOPES})
            tokens = TokenSet.from_response(body)
            if not tokens.refresh_token and current is not None:
                tokens = TokenSet(tokens.access_token, current.refresh_token, tokens.expires_at)
            self.token_store.save(tokens)
            return tokens

    def _access_token(self) -> str:
        tokens = self.token_store.load()
        if tokens is None or tokens.expired():
            tokens = self._renew(tokens.access_token if tokens else None)
        return tokens.access_token

    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                headers: dict | None = None) -> requests.Response:
        """One API call to ``<entity_base>/<path>`` (or an absolute ``path`` URL); a 401 renews
        the token / logs in again once. Returns the 2xx response; raises the error tree."""
        url = path if path.startswith("http") else f"{self.entity_base}/{path.lstrip('/')}"
        token = None
        for attempt in (1, 2):
            hdrs = {"Accept": "application/json", **(headers or {})}
            data = None
            if body is not None:
                hdrs["Content-Type"] = "application/json"
                data = wire.dumps(body).encode()
            if self.auth == "oauth":
                token = self._access_token()
                hdrs["Authorization"] = f"Bearer {token}"
            else:
                self.login()
            resp = self._send(method, url, params=params, data=data, headers=hdrs)
            if resp.status_code == 401 and attempt == 1:
                if self.auth == "oauth":
                    self._renew(token)
                else:
                    self._logged_in = False   # §3.3: 401 = session expired; log in again
                continue
            break
        if not 200 <= resp.status_code < 300:
            raise self._error(resp, f"{method} {path.split('?')[0]}")
        return resp

    def _error(self, resp: requests.Response, what: str) -> ExternalApiError | ConfigurationError:
        """Map a non-2xx reply to the error tree (see the class docstring)."""
        messages = wire.error_messages(resp.text)
        detail = "; ".join(messages) or None
        status = resp.status_code
        if status == 404 and resp.url.startswith(self.entity_base):
            return ConfigurationError(
                f"Acumatica answered 404 for endpoint {self.endpoint}/{self.endpoint_version} at "
                f"{self.base_url}: the instance does not serve endpoint version "
                f"{self.endpoint_version} (set the connection's endpoint_version)", system=SYSTEM,
                detail=detail)
        login_limit = LOGIN_LIMIT.lower() in (resp.text or "").lower()
        if login_limit:
            # §3.4: every API-user seat is taken. A seat frees when another worker logs out, so
            # this is no reason to stop other requests (the request budget is not penalised);
            # ASSUMPTION: retry after about a second unless the reply says otherwise.
            return RateLimitedError(f"Acumatica {LOGIN_LIMIT} on {what} ({status}): every API-user "
                                    "session of the licence is in use", system=SYSTEM, status=status,
                                    body=resp.text[:2000], retry_after=retry_after_seconds(resp) or 1.0,
                                    detail=detail)
        message = (f"Acumatica request limit on {what} (429)" if status == 429
                   else f"Acumatica refused {what} ({status})")
        return error_for_response(resp, system=SYSTEM, message=message, messages=messages,
                                  on_rate_limited=self.on_rate_limited)

    def _json(self, resp: requests.Response) -> Any:
        try:
            return wire.loads(resp.text) if resp.text else None
        except ValueError as exc:
            raise TransientApiError(f"Acumatica answered {resp.status_code} with a body that is not JSON",
                                    system=SYSTEM, status=resp.status_code, body=resp.text[:2000]) from exc

    # ------------------------------------------------------------------ entities (§3.3)
    def list_entities(self, entity: str, *, filter: str | None = None, select: str | None = None,
                      expand: str | None = None, top: int | None = None) -> list[dict]:
        """``GET <Entity>`` with OData options; the records unwrapped."""
        params = {k: v for k, v in {"$filter": filter, "$select": select, "$expand": expand,
                                    "$top": top}.items() if v is not None}
        body = self._json(self.request("GET", entity, params=params)) or []
        return [wire.unwrap(e) for e in body]

    def put_entity(self, entity: str, fields: dict, *, insert_only: bool = False, update_only: bool = False,
                   expand: str | None = None) -> dict:
        """``PUT <Entity>`` (upsert) with ``fields`` (plain values, wrapped here); ``insert_only``
        sends ``If-None-Match: *``, ``update_only`` ``If-Match: *``. Returns the record unwrapped."""
        headers = {"If-None-Match": "*"} if insert_only else {"If-Match": "*"} if update_only else {}
        params = {"$expand": expand} if expand else None
        return wire.unwrap(self._json(self.request("PUT", entity, params=params, body=wire.wrap(fields),
                                                   headers=headers)) or {})

    def invoke_action(self, entity: str, action: str, fields: dict, *, wait: float = 60.0,
                      poll: float = 0.5) -> None:
        """``POST <Entity>/<Action>`` with ``{"entity": fields}``; 202 + ``Location`` is polled
        until 204 (§3.3). Raises :class:`TransientApiError` when it is still running after
        ``wait`` seconds (the caller retries; releasing twice is refused by Acumatica, so the
        caller checks the status first)."""
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
        """``GET <site>/entity``: the endpoints and versions the instance serves (§3.1)."""
        url = f"{self.base_url}/entity"
        body = self._json(self.request("GET", url)) or {}
        return list(body.get("endpoints") or [])

    # ------------------------------------------------------------------ GL
    def account_codes(self) -> set[str]:
        """Codes of the active GL accounts (``Account.AccountCD``; field names ASSUMPTION)."""
        return {str(a["AccountCD"]) for a in self.list_entities("Account", select="AccountCD,Active")
                if a.get("AccountCD") is not None and a.get("Active", True) is not False}

    def subaccount_codes(self) -> set[str]:
        """Codes of the active subaccounts (``Subaccount.SubaccountCD``)."""
        return {str(a["SubaccountCD"]) for a in self.list_entities("Subaccount", select="SubaccountCD,Active")
                if a.get("SubaccountCD") is not None and a.get("Active", True) is not False}

    def find_journals(self, marker: str) -> list[dict]:
        """GL batches whose ``Description`` contains ``marker`` (``substringof``)."""
        quoted = marker.replace("'", "''")
        return self.list_entities("JournalTransaction",
                                  filter=f"Module eq 'GL' and substringof('{quoted}',Description)",
                                  select="BatchNbr,Module,Description,Status")

    def release_journal(self, batch_nbr: str, *, wait: float = 60.0, poll: float = 0.5) -> None:
        """Release GL batch ``batch_nbr`` (``ReleaseJournalTransaction``, §3.3)."""
        self.invoke_action("JournalTransaction", "ReleaseJournalTransaction",
                           {"Module": "GL", "BatchNbr": batch_nbr}, wait=wait, poll=poll)
