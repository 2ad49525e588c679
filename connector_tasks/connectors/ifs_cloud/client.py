"""IFS Cloud OData v4 client for one IFS system: IAM tokens, projections, keys, enum literals,
ETags, IFS error bodies and the short in-call retries.

URLs (docs.ifs.com "Projections and OData Provider", 23r2,
https://docs.ifs.com/techdocs/23r2/040_tailoring/300_extensibility/100_odata_provider/200_projections_and_odp/):
``<system>/main/ifsapplications/projection/v1/<Projection>.svc/<EntitySet>`` (``/int/…`` for
integration projections: :attr:`IfsClient.tier`). Projection and entity-set names are
configuration (:class:`Projections`): IFS publishes no catalogue and releases differ; the
defaults are the names of the public IFS Cloud 21R1 ACCRUL model files (repository
prashweenet/demoproj2, ``accrul/model/accrul/*.projection``), which the sandbox emulator serves.

Tokens: IFS IAM client credentials, ``POST <system>/auth/realms/<namespace>/protocol/openid-connect/token``
form-encoded with ``grant_type=client_credentials``, ``client_id``, ``client_secret``,
``scope=openid microprofile-jwt``; the reply's ``expires_in`` is short (IFS's sample: 180 s)
(docs.ifs.com 26r1 "Authenticate external integration",
https://docs.ifs.com/techdocs/26r1/030_administration/010_security/040_iam_settings/035_iam_clients/020_authenticate_external_integration/).
Tokens are kept in a :class:`~connector_tasks.core.oauth.TokenStore` and renewed ahead of
expiry (``token_margin`` seconds) and once after a 401, under the store's lock
(:class:`~connector_tasks.core.oauth.BearerAuth`). Renewal is always a new client-credentials
grant: the credentials are at hand, a refresh token would save nothing (and plain Keycloak gives
none for this grant), so the reply's refresh token is not kept.

OData conventions: keys ``Set(Company='10',VoucherNo=1)`` with ``'`` doubled inside string
literals (OData v4 URL conventions; IFS sample keys in api-evangelist/ifs
``conventions/ifs-conventions.yml``); enumeration literals in ``$filter`` must be fully qualified,
``IfsApp.<Projection>.<EnumType>'Value'`` — a plain string "will return an error"
(knakit/ifs-mcp-server-local ``src/resources/ifs-common-odata-reference.md``); bound actions are
``<Set>(<keys>)/IfsApp.<Projection>.<EntityType>_<Action>``.

ETags: an entity's ``@odata.etag`` is ``W/"<base64 of objid:objversion>"`` (Novacura "Update",
https://docs.novacura.com/flow-ifs-cloud-development-guidelines/flow-development-with-odata/ ;
api-evangelist/ifs ``conventions/ifs-conventions.yml``). Every update here sends ``If-Match``
with the ETag as read (a PATCH without it would be an upsert, docs.ifs.com 25r1 "Entity
Upserts",
https://docs.ifs.com/techdocs/25r1/060_development/022_user_interface/030_aurena_dev/140_resources/010_entity_upserts);
a 412 re-reads the entity and retries once.

Errors: IFS answers ``{"error": {"code", "message", "details": [...]}}`` (Novacura "Errors from
IFS",
https://docs.novacura.com/flow-ifs-cloud-development-guidelines/flow-development-with-odata/implementation/response-status-handling/errors-from-ifs).
They go through :class:`~connector_tasks.core.client.JsonApiClient`'s pipeline and hooks, with
``"<code>: <message>"`` and each detail's ``"<code>: <message>"`` as the error's ``lines``;
every error raised for an IFS reply also carries ``ifs_code`` and ``ifs_message``. See
:class:`IfsClient` for the table.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import quote

import requests

from connector_tasks.core.client import JsonApiClient, Slots
from connector_tasks.core.errors import (
    AuthError, ConfigurationError, ConflictError, ConnectorError, ExternalApiError, RateLimitedError,
    RejectedError, TransientApiError,
)
from connector_tasks.core.http import BODY_SNIPPET, DEFAULT_TIMEOUT, retry_after_seconds
from connector_tasks.core.oauth import BearerAuth, TokenSet, TokenStore, valid_tokens
from connector_tasks.core.rate_limit import Budget, budget_from_settings
from connector_tasks.core.retry import call_with_retries

SYSTEM = "ifs_cloud"
#: The scope IFS documents for integration clients (docs.ifs.com 26r1 "Authenticate external integration").
SCOPE = "openid microprofile-jwt"
#: Seconds a token lives when the reply gives no ``expires_in`` (IFS's documented sample: 180).
TOKEN_LIFETIME = 180.0
#: Seconds before expiry at which a token is renewed (IFS tokens live minutes, not hours).
TOKEN_MARGIN = 30.0
#: The stale-metadata error: 500 "Service metadata already modified." (docs.ifs.com 21r2
#: "Projections and OData Provider") or 503 "Cached Service metadata is outdated. Please try
#: again." with Retry-After (the same page in 23r2). Both say: send the request again.
MI_MODIFIED = "MI_MODIFIED_ERROR"


@dataclass(frozen=True)
class Projections:
    """Projection, entity-set, array and entity-type names of one IFS installation.

    Defaults: the public IFS Cloud 21R1 ACCRUL model files (prashweenet/demoproj2,
    ``accrul/model/accrul/``: ``AccountsHandling``, ``CodeBHandling``…``CodeJHandling``,
    ``AccountingPeriodsHandling``, ``VoucherEntryAssistantHandling``, ``VoucherHandling``,
    ``ExternalVouchers``, ``ExternalVoucherLoadInformationHandling``). ASSUMPTION:
    ``CompanyHandling``/``CompanySet`` (the company projection is not in those files) and the
    set names of Code C…J (by analogy with ``CodeBSet``). Parties an employee sync writes:
    ``CustomerHandling``/``CustomerInfoSet`` with its ``CommMethodArray`` (knakit/ifs-mcp-server-local
    ``src/resources/ifs-sales-customers.md``; the array name is ASSUMPTION), custom attributes
    ``Cf_EmployeeNo``/``Cf_Active`` for the employee number and the active flag (ASSUMPTION: IFS
    exposes a site's custom attributes with a ``Cf_`` prefix; CustomerInfo has no such
    attributes of its own), and ``ProjectResourcesHandling``/``ProjectResourceSet`` (ASSUMPTION
    from end to end: no public source names a project-resource projection) with state actions
    ``ProjectResource_SetInactive``/``_SetActive``. ``code_part``/``code_part_set`` are
    formats with ``{letter}``. ``gl_ledger``: the ledger whose period status decides whether a
    voucher may be entered (``'00'``, as AccountingPeriodsHandling reads it). ``tier``:
    ``"main"`` or ``"int"`` (docs.ifs.com 23r2 "Projections and OData Provider").
    """

    tier: str = "main"
    company: str = "CompanyHandling"
    company_set: str = "CompanySet"
    accounts: str = "AccountsHandling"
    account_set: str = "AccountSet"
    code_part: str = "Code{letter}Handling"
    code_part_set: str = "Code{letter}Set"
    periods: str = "AccountingPeriodsHandling"
    year_set: str = "AccountingYearSet"
    year_ledger_array: str = "AccYearDetailArray"
    period_ledger_array: str = "AccPerDetailArray"
    gl_ledger: str = "00"
    voucher_entry: str = "VoucherEntryAssistantHandling"
    voucher_entry_set: str = "VoucherSet"
    voucher_entry_type: str = "VoucherEntry"
    posting_array: str = "VoucherPostingArray"
    vouchers: str = "VoucherHandling"
    voucher_set: str = "VoucherSet"
    voucher_row_array: str = "VoucherRowArray"
    external: str = "ExternalVouchers"
    external_set: str = "ExternalVouchersSet"
    external_state_enum: str = "ExtTransactionsState"
    ext_load: str = "ExternalVoucherLoadInformationHandling"
    ext_load_set: str = "ExtLoadInfoSet"
    ext_load_type: str = "ExtLoadInfo"
    customers: str = "CustomerHandling"
    customer_set: str = "CustomerInfoSet"
    customer_comm_array: str = "CommMethodArray"
    customer_email_method: str = "EMail"
    customer_employee_no: str = "Cf_EmployeeNo"
    customer_active: str = "Cf_Active"
    resources: str = "ProjectResourcesHandling"
    resource_set: str = "ProjectResourceSet"
    resource_type: str = "ProjectResource"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> "Projections":
        """The defaults with a connection's overrides (``{"vouchers": "MyVoucherHandling", ...}``).
        Raises :class:`ConfigurationError` naming an unknown key."""
        settings = dict(settings or {})
        unknown = set(settings) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigurationError(f"unknown IFS projection setting(s) {sorted(unknown)}", system=SYSTEM)
        return cls(**{k: str(v) for k, v in settings.items()})

    def code_part_projection(self, letter: str) -> tuple[str, str]:
        """``(projection, entity set)`` of code part ``letter`` (``"B"``…``"J"``)."""
        return self.code_part.format(letter=letter), self.code_part_set.format(letter=letter)


# ---------------------------------------------------------------------------------------- literals, keys, JSON
def string_literal(value: str) -> str:
    """An OData string literal: ``'…'`` with every ``'`` doubled (OData 4.01 URL Conventions,
    https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html ,
    "Primitive Literals"; ABNF rule ``SQUOTE-in-string``)."""
    return "'" + str(value).replace("'", "''") + "'"


def literal(value: Any) -> str:
    """An OData literal for ``$filter`` or a key: strings quoted (:func:`string_literal`),
    ``bool`` as ``true``/``false``, ``int``/``Decimal`` as digits, dates ``YYYY-MM-DD``,
    ``None`` as ``null`` (OData 4.01 URL Conventions, "Primitive Literals",
    https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html).
    Raises ``TypeError`` for a ``float`` (amounts are ``Decimal``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        raise TypeError(f"float {value!r} refused in an OData literal; use Decimal")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return string_literal(value)


def enum_literal(projection: str, enum_type: str, value: str) -> str:
    """A fully qualified enumeration literal ``IfsApp.<Projection>.<EnumType>'<Value>'``, the
    only form IFS accepts in ``$filter`` (knakit/ifs-mcp-server-local
    ``src/resources/ifs-common-odata-reference.md``: a plain ``'Value'`` "will return an error").
    Example: ``enum_literal("AccountingPeriodsHandling", "AccYearPerStatus", "Open")``."""
    return f"IfsApp.{projection}.{enum_type}{string_literal(value)}"


def key_predicate(keys: Mapping[str, Any]) -> str:
    """``Company='10',VoucherNo=1``: named keys in the given order, values as :func:`literal`,
    percent-encoded for the URL path (``'`` kept, so ``O'Neil`` → ``'O''Neil'``). Source: OData
    4.01 URL Conventions "Addressing Entities" (key predicates), and IFS's own key URLs such as
    ``EntitySet(Company='10',VoucherType='M',…)`` (api-evangelist/ifs ``conventions/ifs-conventions.yml``)."""
    return ",".join(f"{name}={quote(literal(value), safe=chr(39))}" for name, value in keys.items())


def entity_path(entity_set: str, keys: Mapping[str, Any] | None = None,
                *nav: tuple[str, Mapping[str, Any] | None]) -> str:
    """A resource path under a projection: ``Set(<keys>)/Array(<keys>)/…``.

    ``nav`` are ``(array name, keys or None)`` steps into the entity's arrays (navigation
    properties of the projection; IFS arrays, e.g. ``AccountingPeriodsHandling.projection`` in
    prashweenet/demoproj2 ``accrul/model/accrul/``). Example::

        entity_path("AccountingYearSet", {"Company": "10", "AccountingYear": 2026},
                    ("AccYearDetailArray", {"LedgerId": "00"}), ("AccPerDetailArray", None))
    """
    parts = [entity_set + (f"({key_predicate(keys)})" if keys else "")]
    parts += [name + (f"({key_predicate(k)})" if k else "") for name, k in nav]
    return "/".join(parts)


def dumps(value: Any) -> str:
    """JSON text for a request body with every ``Decimal`` written digit for digit as a JSON
    number (IFS ``Number`` attributes are JSON numbers, ``Edm.Decimal``/``Edm.Double`` per OData
    JSON Format 4.01 §7.1; a float would lose cents), dates as ``YYYY-MM-DD`` strings (``Edm.Date``).
    Raises ``TypeError`` for a ``float`` or an unknown type, ``ValueError`` for a non-finite
    Decimal."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"non-finite amount {value!r}")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError(f"float {value!r} refused in a request body; use Decimal")
    if value is None or isinstance(value, (bool, int, str)):
        return json.dumps(value)
    if isinstance(value, dt.date):
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def error_body(resp: requests.Response) -> tuple[str | None, str | None, list[dict]]:
    """``(code, message, details)`` of an IFS error reply: the OData form
    ``{"error": {"code", "message", "details": [{"code", "message"}]}}`` (Novacura "Errors from
    IFS") or the IAM (Keycloak) form ``{"error": "<code>", "error_description": "<text>"}``.
    ``(None, None, [])`` when the body is neither."""
    try:
        body = json.loads(resp.text or "")
    except ValueError:
        return None, None, []
    if not isinstance(body, dict):
        return None, None, []
    err = body.get("error")
    if isinstance(err, dict):
        details = [d for d in err.get("details") or [] if isinstance(d, dict)]
        return (str(err["code"]) if err.get("code") else None,
                str(err["message"]) if err.get("message") else None, details)
    if isinstance(err, str):
        return err, (str(body["error_description"]) if body.get("error_description") else None), []
    return None, None, []


# ---------------------------------------------------------------------------------------- tokens
class LocalTokenStore:
    """A :class:`~connector_tasks.core.oauth.TokenStore` in process memory: enough for IFS,
    whose tokens are short-lived and re-obtainable from the client credentials at any time
    (nothing rotates, so losing them costs one token request). Production may pass
    :class:`connector_tasks.store.tokens.StoredTokens` instead to share tokens across workers."""

    def __init__(self) -> None:
        self._tokens: TokenSet | None = None
        self._data = threading.Lock()
        self._refresh = threading.Lock()

    def load(self) -> TokenSet | None:
        """The current tokens, or ``None``."""
        with self._data:
            return self._tokens

    def save(self, tokens: TokenSet) -> None:
        """Replace the current tokens."""
        with self._data:
            self._tokens = tokens

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The refresh lock (one renewal at a time in this process)."""
        with self._refresh:
            yield


def rate_budget(spec: Mapping[str, Any]) -> Budget:
    """The request budget of one IFS connection from its settings (e.g. ``{"per_second": 10}``),
    through :func:`connector_tasks.core.rate_limit.budget_from_settings`. IFS publishes no rate
    limits: throughput depends on the customer's environment sizing (IFS "API Usage in IFS Cloud"
    policy, https://docs.ifs.com/policy/APIUsageCloud.pdf), so the numbers are the customer's.
    Raises :class:`ConfigurationError`."""
    return budget_from_settings(SYSTEM, spec)


class _Final(Exception):
    """Carries an error out of :func:`call_with_retries` without a retry."""

    def __init__(self, error: ConnectorError):
        super().__init__(str(error))
        self.error = error


# ---------------------------------------------------------------------------------------- client
class IfsClient(JsonApiClient):
    """The OData client of one IFS Cloud system for one IAM client.

    ``system_url``: ``https://<system>`` (no path). ``client_id``/``client_secret``: the IAM
    client (docs.ifs.com 26r1 "Authenticate external integration"); ``namespace``: the IAM realm
    (the system's namespace). ``token_store``: where tokens live (default
    :class:`LocalTokenStore`); ``token_margin``: seconds before expiry a token is renewed
    (default :data:`TOKEN_MARGIN`; keep it well below the IAM client's access-token lifespan,
    180 s in IFS's sample, or every request fetches a token). ``projections``:
    :class:`Projections`. ``before_request``, ``on_rate_limited``, ``on_response``, ``slots``,
    ``session``, ``timeout``: as
    :class:`~connector_tasks.core.client.JsonApiClient`. ``retry_attempts`` (tries in all),
    ``retry_initial`` and ``retry_max_wait`` (seconds): the in-call retries below.

    Errors (each carries ``ifs_code`` and ``ifs_message`` from IFS's body, ``None`` when absent;
    ``lines`` of a RejectedError = ``"<code>: <message>"`` then each detail's):

    * 401 after one token renewal, 403 → :class:`AuthError`;
    * token endpoint 400/401 (``invalid_client`` …) → :class:`AuthError` with IAM's text;
      token endpoint 404 (unknown realm) → :class:`ConfigurationError` naming the namespace;
    * 400 business error (``DATABASE_ERROR``, ``ORA-20110 …``), 404 (``ODP_RESOURCE_NOTFOUND``),
      405, 428 and other 4xx → :class:`RejectedError` with IFS's text as ``lines``;
    * 409, 412 (after one re-read, see :meth:`patch`) → :class:`ConflictError`;
    * 429 → :class:`RateLimitedError` with ``Retry-After`` (``on_rate_limited`` called);
    * 503 with ``Retry-After`` → :class:`RateLimitedError` (the server named the wait);
    * ``MI_MODIFIED_ERROR`` → :class:`TransientApiError` (500), or :class:`RateLimitedError`
      (503 with ``Retry-After``);
    * other 5xx, 408, transport failure → :class:`TransientApiError`.

    In-call retries (:func:`connector_tasks.core.retry.call_with_retries`, exponential backoff
    with jitter, never sooner than ``Retry-After``): 429 and 503 (the request was not carried
    out — ASSUMPTION for 503, which gateways answer before the application) up to
    ``retry_attempts`` tries, unless the server asks to wait longer than ``retry_max_wait``
    (then the error goes to the caller, whose task waits ``retry_after``);
    ``MI_MODIFIED_ERROR`` once ("retry", docs.ifs.com 21r2/23r2 "Projections and OData
    Provider"); other transient errors only for idempotent requests (GET, and PATCH with
    If-Match) — a POST whose answer was lost may have been carried out (IFS has no idempotency
    keys; a retried POST creates twice, api-evangelist/ifs ``conventions/ifs-conventions.yml``),
    so the caller must ask IFS before writing again (:mod:`.vouchers` does).
    """

    SYSTEM = SYSTEM
    LABEL = "IFS Cloud"
    EMPTY_BODY_OK = True

    def __init__(self, system_url: str, *, client_id: str, client_secret: str, namespace: str,
                 token_store: TokenStore | None = None, token_margin: float = TOKEN_MARGIN,
                 scope: str = SCOPE, projections: Projections | None = None,
                 session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 before_request: Callable[[], None] | None = None,
                 on_rate_limited: Callable[[float | None], None] | None = None,
                 on_response: Callable[[Mapping[str, str]], object] | None = None,
                 slots: Slots | None = None, retry_attempts: int = 4, retry_initial: float = 0.2,
                 retry_max_wait: float = 5.0):
        if not system_url or not client_id or not client_secret or not namespace:
            raise ConfigurationError("an IFS Cloud connection needs system_url, client_id, client_secret "
                                     "and namespace", system=SYSTEM)
        super().__init__(system_url, session=session, timeout=timeout, before_request=before_request,
                         on_rate_limited=on_rate_limited, on_response=on_response, slots=slots)
        self.client_id, self.client_secret = client_id, client_secret
        self.namespace = namespace
        self.scope = scope
        self.projections = projections or Projections()
        self.token_store: TokenStore = token_store if token_store is not None else LocalTokenStore()
        self.token_margin = float(token_margin)
        self.retry_attempts = max(1, int(retry_attempts))
        self.retry_initial = float(retry_initial)
        self.retry_max_wait = float(retry_max_wait)
        self._auth = BearerAuth(self.token_store, self._renew, margin=self.token_margin)

    # ------------------------------------------------------------------ URLs
    @property
    def token_url(self) -> str:
        """``<system>/auth/realms/<namespace>/protocol/openid-connect/token`` (docs.ifs.com 26r1
        "Authenticate external integration")."""
        return f"{self.base_url}/auth/realms/{quote(self.namespace, safe='')}/protocol/openid-connect/token"

    def service_url(self, projection: str) -> str:
        """``<system>/<tier>/ifsapplications/projection/v1/<Projection>.svc`` (docs.ifs.com 23r2
        "Projections and OData Provider")."""
        return f"{self.base_url}/{self.projections.tier}/ifsapplications/projection/v1/{projection}.svc"

    # ------------------------------------------------------------------ tokens
    def _renew(self, current: TokenSet | None) -> TokenSet:
        """A new token by the client-credentials grant (form-encoded, ``scope``), for
        :func:`~connector_tasks.core.oauth.refresh_under_lock`. ``expires_at`` = now +
        ``expires_in`` (default :data:`TOKEN_LIFETIME`). Raises :class:`AuthError` (400/401:
        ``invalid_client``, ``unauthorized_client``, ... with IAM's description),
        :class:`ConfigurationError` (404: no such realm), the default errors otherwise."""
        resp = self._send("POST", self.token_url, budget=False, slot=True,
                          data={"grant_type": "client_credentials", "client_id": self.client_id,
                                "client_secret": self.client_secret, "scope": self.scope},
                          headers={"Accept": "application/json"})
        code, message, _ = error_body(resp)
        if resp.status_code in (400, 401):
            err = AuthError(f"IFS IAM refused the client_credentials grant of client {self.client_id!r} "
                            f"({resp.status_code})", system=SYSTEM, status=resp.status_code,
                            body=resp.text[:BODY_SNIPPET],
                            detail=": ".join(x for x in (code, message) if x) or None)
            err.ifs_code, err.ifs_message = code, message
            raise err
        if resp.status_code == 404:
            raise ConfigurationError(f"IFS IAM has no realm {self.namespace!r} at {self.base_url} (set the "
                                     "connection's namespace)", system=SYSTEM, detail=message or code)
        if not 200 <= resp.status_code < 300:
            raise self._error(resp, "POST token")
        body = self._json(resp) or {}
        kept = {k: v for k, v in body.items() if k != "refresh_token"} if isinstance(body, dict) else body
        return TokenSet.from_response(kept, system=SYSTEM, default_expires_in=TOKEN_LIFETIME)

    def token(self) -> TokenSet:
        """The IAM tokens requests are sent with now: the stored ones, or new ones when they
        are missing or within ``token_margin`` seconds of expiry (renewed under the store's
        lock). Raises what :meth:`_renew` raises."""
        return valid_tokens(self.token_store, self._renew, margin=self.token_margin)

    # ------------------------------------------------------------------ error hooks
    def _error_lines(self, resp: requests.Response) -> list[str]:
        """``"<code>: <message>"`` of the body, then ``"<code>: <message>"`` of each detail."""
        code, message, details = error_body(resp)
        lines = []
        if code or message:
            lines.append(": ".join(x for x in (code, message) if x))
        for d in details:
            text = ": ".join(str(x) for x in (d.get("code"), d.get("message")) if x)
            if text:
                lines.append(text)
        return lines

    def _special_error(self, resp: requests.Response, lines: list[str], what: str) -> ConnectorError | None:
        """``MI_MODIFIED_ERROR`` (any status) → TransientApiError, or RateLimitedError when it
        came with ``Retry-After`` (the 23r2 form); any other 503 with ``Retry-After`` →
        RateLimitedError (the server named the wait; ``on_rate_limited`` is not called: the
        request budget is not what ran out). Everything else: the defaults."""
        code, _, _ = error_body(resp)
        status = resp.status_code
        retry_after = retry_after_seconds(resp)
        detail = "; ".join(lines) or None
        body = (resp.text or "")[:BODY_SNIPPET]
        if code == MI_MODIFIED:
            message = f"IFS Cloud metadata cache was refreshed during {what} ({status}); send it again"
            if retry_after is not None:
                return RateLimitedError(message, system=SYSTEM, status=status, body=body, detail=detail,
                                        retry_after=retry_after)
            return TransientApiError(message, system=SYSTEM, status=status, body=body, detail=detail)
        if status == 503 and retry_after is not None:
            return RateLimitedError(f"IFS Cloud is unavailable for {what} (503); retry after {retry_after:g} s",
                                    system=SYSTEM, status=status, body=body, detail=detail,
                                    retry_after=retry_after)
        return None

    def _error_summary(self, resp: requests.Response, what: str) -> str | None:
        if resp.status_code == 429:
            return f"IFS Cloud request limit on {what} (429)"
        return f"IFS Cloud answered {resp.status_code} to {what}"

    def _error(self, resp: requests.Response, what: str) -> ConnectorError:
        """The base's mapping (hooks above), with ``ifs_code``/``ifs_message`` attached."""
        exc = super()._error(resp, what)
        exc.ifs_code, exc.ifs_message, _ = error_body(resp)
        return exc

    # ------------------------------------------------------------------ transport
    def _retry_in_call(self, exc: ConnectorError, idempotent: bool, seen: dict) -> bool:
        if getattr(exc, "ifs_code", None) == MI_MODIFIED:
            seen["mi_modified"] = seen.get("mi_modified", 0) + 1
            return seen["mi_modified"] <= 1
        if isinstance(exc, RateLimitedError):
            return exc.retry_after is None or exc.retry_after <= self.retry_max_wait
        if isinstance(exc, TransientApiError):
            return idempotent or getattr(exc, "status", None) == 503
        return False

    def request(self, method: str, projection: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None, headers: Mapping[str, str] | None = None,
                idempotent: bool | None = None) -> requests.Response:
        """One call to ``<service_url(projection)>/<path>`` (or to ``path`` when it is an
        absolute URL, e.g. an ``@odata.nextLink``) with ``body`` as JSON (:func:`dumps`), the
        bearer token, and the in-call retries of the class docstring (``idempotent``: default
        ``method == "GET"``). Returns the 2xx response; raises the errors of the class docstring."""
        url = path if path.startswith(("http://", "https://")) else f"{self.service_url(projection)}/{path.lstrip('/')}"
        hdrs = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            hdrs["Content-Type"] = "application/json"
            data = dumps(body).encode("utf-8")
        safe = method.upper() == "GET" if idempotent is None else idempotent
        what = f"{method} {url.split('?')[0]}" if url == path else f"{method} {projection}.svc/{path.split('?')[0]}"
        seen: dict = {}

        def attempt() -> requests.Response:
            try:
                return self._call(method, url, auth=self._auth, what=what, params=params, data=data,
                                  headers=hdrs)
            except ConnectorError as exc:
                if self._retry_in_call(exc, safe, seen):
                    raise
                raise _Final(exc) from exc

        try:
            return call_with_retries(attempt, attempts=self.retry_attempts, initial=self.retry_initial,
                                     maximum=self.retry_max_wait)
        except _Final as final:
            raise final.error from None

    # ------------------------------------------------------------------ OData helpers
    def get_set(self, projection: str, entity_set: str, *, filter: str | None = None,
                select: str | Iterable[str] | None = None, top: int | None = None, skip: int | None = None,
                orderby: str | Iterable[str] | None = None, expand: str | None = None) -> list[dict]:
        """``GET <Projection>.svc/<entity_set>`` (a set or a navigation path from
        :func:`entity_path`) with ``$filter``, ``$select``, ``$orderby``, ``$top``, ``$skip``,
        ``$expand`` (OData Provider "Supported Functionalities", docs.ifs.com 21r2,
        https://docs.ifs.com/techdocs/21r2/060_tailoring/300_extensibility/101_odata_provider/1000_supported_functionalities/).
        Returns the entities (each with ``@odata.etag``; numbers with a fraction as ``Decimal``),
        following ``@odata.nextLink`` unless ``top`` is given. Enum values in ``filter`` must be
        written with :func:`enum_literal`. Raises the errors of the class docstring."""
        params: dict[str, Any] = {}
        if filter:
            params["$filter"] = filter
        if select:
            params["$select"] = select if isinstance(select, str) else ",".join(select)
        if orderby:
            params["$orderby"] = orderby if isinstance(orderby, str) else ",".join(orderby)
        if top is not None:
            params["$top"] = int(top)
        if skip:
            params["$skip"] = int(skip)
        if expand:
            params["$expand"] = expand
        rows: list[dict] = []
        path, query = entity_set, params
        while True:
            body = self._json(self.request("GET", projection, path, params=query)) or {}
            rows.extend(body.get("value") or [])
            next_link = body.get("@odata.nextLink")
            if not next_link or top is not None:
                return rows
            path = next_link if next_link.startswith("http") else f"{self.service_url(projection)}/{next_link}"
            query = None

    def get_entity(self, projection: str, entity_set: str, keys: Mapping[str, Any],
                   *nav: tuple[str, Mapping[str, Any] | None], select: str | Iterable[str] | None = None,
                   missing_ok: bool = False) -> dict | None:
        """``GET <Projection>.svc/<entity_set>(<keys>)[/<nav>…]``: the entity with its
        ``@odata.etag``. ``missing_ok``: ``None`` instead of the 404 (``ODP_RESOURCE_NOTFOUND``,
        Novacura "Errors from IFS") :class:`RejectedError`. Raises the errors of the class
        docstring."""
        params = None
        if select:
            params = {"$select": select if isinstance(select, str) else ",".join(select)}
        try:
            return self._json(self.request("GET", projection, entity_path(entity_set, keys, *nav),
                                           params=params)) or {}
        except RejectedError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def create(self, projection: str, entity_set: str, values: Mapping[str, Any]) -> dict:
        """``POST <Projection>.svc/<entity_set>`` (a set, or an array path such as
        ``VoucherSet(Objkey='…')/VoucherPostingArray``) with ``values``: the created entity
        (201). Not retried after a lost answer (see the class docstring). Raises
        :class:`RejectedError` with IFS's text (``ORA-20110 …``, a missing mandatory attribute,
        an attribute too long) and the other errors of the class docstring."""
        return self._json(self.request("POST", projection, entity_set, body=dict(values))) or {}

    def _etag(self, projection: str, entity_set: str, keys: Mapping[str, Any]) -> str:
        entity = self.get_entity(projection, entity_set, keys)
        tag = (entity or {}).get("@odata.etag")
        if not tag:
            raise TransientApiError(f"IFS Cloud gave no ETag for {entity_set}({key_predicate(keys)})",
                                    system=SYSTEM)
        return str(tag)

    def _with_if_match(self, send: Callable[[str], requests.Response], projection: str, entity_set: str,
                       keys: Mapping[str, Any], etag: str | None) -> requests.Response:
        tag = etag or self._etag(projection, entity_set, keys)
        try:
            return send(tag)
        except ConflictError as exc:
            if exc.status != 412:
                raise
        return send(self._etag(projection, entity_set, keys))   # 412: re-read once, then let it fail

    def patch(self, projection: str, entity_set: str, keys: Mapping[str, Any], changes: Mapping[str, Any], *,
              etag: str | None = None) -> str | None:
        """Update the entity at ``<entity_set>(<keys>)`` with ``changes``, always conditional:
        ``If-Match`` with ``etag`` (as read: ``W/"<base64 of objid:objversion>"``) or, without
        one, the ETag read first — never an unconditional PATCH, which IFS treats as an upsert
        (docs.ifs.com 25r1 "Entity Upserts"). A 412 (someone changed it since) re-reads the
        entity and sends the same changes once more with the fresh ETag. Returns the new ETag
        (``None`` when IFS sends none). Raises :class:`ConflictError` on a second 412,
        :class:`RejectedError` (e.g. ``ORA-20122`` a non-updatable attribute) and the errors of
        the class docstring."""
        path = entity_path(entity_set, keys)
        resp = self._with_if_match(
            lambda tag: self.request("PATCH", projection, path, body=dict(changes), headers={"If-Match": tag},
                                     idempotent=True),
            projection, entity_set, keys, etag)
        return resp.headers.get("ETag")

    def delete(self, projection: str, entity_set: str, keys: Mapping[str, Any], *, etag: str | None = None) -> None:
        """``DELETE <entity_set>(<keys>)`` with ``If-Match`` (``etag`` or read first; a 412
        re-reads once). Raises :class:`ConflictError`, :class:`RejectedError` (IFS refuses,
        e.g. a transaction that already made a voucher) and the errors of the class docstring."""
        path = entity_path(entity_set, keys)
        self._with_if_match(lambda tag: self.request("DELETE", projection, path, headers={"If-Match": tag}),
                            projection, entity_set, keys, etag)

    def action(self, projection: str, entity_set: str, keys: Mapping[str, Any], entity_type: str, name: str,
               params: Mapping[str, Any] | None = None, *, if_match: bool = False, etag: str | None = None) -> Any:
        """Call the bound action ``<entity_set>(<keys>)/IfsApp.<projection>.<entity_type>_<name>``
        (``POST`` with ``params`` as the JSON body, ``{}`` when none). ``if_match`` (or an
        ``etag``): send ``If-Match`` with the entity's ETag (read first when not given); a 412
        re-reads once. Entity actions want the ETag, virtual ones do not (third-party IFS client
        code, e.g. ``…/IfsApp.CustomerOrderHandling.CustomerOrder_…``). Returns the action's
        ``value`` (``None`` for a void action's 204). Not retried after a lost answer. Raises
        :class:`RejectedError` with IFS's text and the errors of the class docstring."""
        path = f"{entity_path(entity_set, keys)}/IfsApp.{projection}.{entity_type}_{name}"
        body = dict(params or {})
        if if_match or etag:
            resp = self._with_if_match(
                lambda tag: self.request("POST", projection, path, body=body, headers={"If-Match": tag}),
                projection, entity_set, keys, etag)
        else:
            resp = self.request("POST", projection, path, body=body)
        result = self._json(resp)
        return result.get("value") if isinstance(result, dict) else result


def error_code(exc: BaseException) -> str | None:
    """The IFS error code an error of :class:`IfsClient` carries (``ifs_code``), else ``None``."""
    return getattr(exc, "ifs_code", None) if isinstance(exc, ExternalApiError) else None
