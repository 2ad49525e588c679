"""ServiceTitan v2 API client: client-credentials tokens per tenant, ``ST-App-Key`` on every call,
tenant-scoped paths, ``page``/``pageSize``/``hasMore`` paging, errors, exact decimals.

Sources:

* Hosts and auth: ``POST https://auth.servicetitan.io/connect/token`` (integration:
  ``https://auth-integration.servicetitan.io/connect/token``), form-encoded
  ``grant_type=client_credentials&client_id=…&client_secret=…``; only the client-credentials
  grant exists, so there is no refresh token: a new token is requested when the old one expires
  (https://developer.servicetitan.io/docs/oauth20/ and
  https://developer.servicetitan.io/docs/get-going-first-api-call). The lifetime is the reply's
  ``expires_in`` (commonly 900 s; never assumed). Client id and secret belong to one tenant;
  the app key to the application (https://developer.servicetitan.io/docs/faqs-app-key-client-id-secret/).
* Every API call carries ``Authorization: Bearer <token>`` **and** ``ST-App-Key: <app key>``
  (OAS ``securitySchemes`` ``appKey`` and ``bearerToken``) and names the tenant in its path,
  ``/{module}/v2/tenant/{tenant}/…`` (OAS paths of ``tenant-inventory-v2.yml``,
  ``tenant-pricebook-v2.yml``, ``tenant-settings-v2.yml``, ``tenant-accounting-v2.yml``;
  public copies: https://github.com/compwright/servicetitan ``spec/``).
* Lists: ``page`` (from 1), ``pageSize`` (1..5000, default 50), reply
  ``{"page","pageSize","hasMore","totalCount","data"}`` (OAS ``PaginatedResponse_Of_…``;
  https://partnerapis.servicetitan.io/docs/timeouts-and-pagination); ``ids`` takes at most 50.
  ``InventoryBills_GetList`` answers a plain array (OAS).
* Errors: OAS ``ApiErrorResponse`` (RFC 7807-like). Rate limit: 60 requests per second per
  app key per tenant, 429 with ``Retry-After`` (see :mod:`.limits`).

Every request goes through :class:`connector_tasks.core.client.JsonApiClient` (budget hook,
send, rate headers, a 401 renewed once, the vendor's error cases over the shared defaults,
exact-decimal JSON); tokens are :class:`connector_tasks.core.oauth.TokenSet` kept in the
caller's :class:`~connector_tasks.core.oauth.TokenStore` and renewed with
:func:`connector_tasks.core.oauth.refresh_under_lock`. Request bodies come from the pure
builders of :mod:`.wire`. Nothing here reads the environment or the database.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import requests

from connector_tasks.connectors.servicetitan import wire
from connector_tasks.core.client import JsonApiClient
from connector_tasks.core.errors import (
    AuthError, ConfigurationError, ConnectorError, ExternalApiError, RejectedError, TransientApiError,
)
from connector_tasks.core.http import BODY_SNIPPET, DEFAULT_TIMEOUT, error_for_response
from connector_tasks.core.oauth import REFRESH_MARGIN, BearerAuth, TokenSet, TokenStore, valid_tokens

SYSTEM = "servicetitan"
API_URL = "https://api.servicetitan.io"
AUTH_URL = "https://auth.servicetitan.io/connect/token"
INTEGRATION_API_URL = "https://api-integration.servicetitan.io"
INTEGRATION_AUTH_URL = "https://auth-integration.servicetitan.io/connect/token"
#: Seconds assumed only when a token reply lacks ``expires_in`` (the commonly observed 900 s).
TOKEN_LIFETIME_FALLBACK = 900.0
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000          # OAS / partnerapis timeouts-and-pagination: pageSize 1..5000
MAX_IDS = 50                  # OAS ``ids``: "Perform lookup by multiple IDs (maximum 50)"
MAX_PAGES = 100_000           # a list that never ends is a vendor fault, not a loop

Record = dict[str, Any]
When = dt.datetime | dt.date | str


class NotFound(RejectedError):
    """ServiceTitan answered 404: no such id in this tenant (OAS: every ``GetById``/``Update``
    documents 404 with an ``ApiErrorResponse``). A :class:`RejectedError` (parked, not
    retried), so callers that look something up can ``except NotFound``."""


@dataclass(frozen=True)
class Ping:
    """What :meth:`ServiceTitanClient.ping` found: the ``tenant`` id, and the tenant's active
    ``business_units`` (OAS ``TenantSettings.V2.BusinessUnitResponse``), ``purchase_order_types``
    (``Inventory.V2.PurchaseOrderTypeResponse``) and ``inventory_locations`` (warehouses,
    ``Inventory.V2.WarehouseResponse``), each a list of records as ServiceTitan sends them."""

    tenant: int
    business_units: list[Record]
    purchase_order_types: list[Record]
    inventory_locations: list[Record]


def _active(value: bool | None) -> str:
    """OAS ``ActiveQueryFilter``: ``True`` / ``False`` / ``Any`` (``None``)."""
    return "Any" if value is None else ("True" if value else "False")


def _csv(values: Iterable[int] | None) -> str | None:
    """Comma-separated ids (the spec types ``ids``, ``vendorIds``… as strings)."""
    if values is None:
        return None
    return ",".join(str(int(v)) for v in values)


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters without ``None``; dates as RFC 3339 (:func:`wire.rfc3339`)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (dt.date, dt.datetime)):
            value = wire.rfc3339(value)
        out[key] = value
    return out


def _dates(created_on_or_after: When | None = None, created_before: When | None = None,
           modified_on_or_after: When | None = None, modified_before: When | None = None) -> dict:
    """The spec's common ``createdOnOrAfter``/``createdBefore``/``modifiedOnOrAfter``/
    ``modifiedBefore`` filters ("in UTC"; on-or-after inclusive, before exclusive)."""
    return {"createdOnOrAfter": created_on_or_after, "createdBefore": created_before,
            "modifiedOnOrAfter": modified_on_or_after, "modifiedBefore": modified_before}


class ServiceTitanClient(JsonApiClient):
    """Talks to one ServiceTitan tenant with one application's app key.

    ``base_url``: the API host, :data:`API_URL` (integration: :data:`INTEGRATION_API_URL`) or
    the emulator's base URL. ``auth_url``: the token endpoint, :data:`AUTH_URL`
    (:data:`INTEGRATION_AUTH_URL`, or ``<emulator>/connect/token``). ``tenant``: the tenant id
    (int64). ``app_key``: the application's ``ST-App-Key``. ``client_id``/``client_secret``:
    the tenant's client credentials. ``token_store``: the connection's
    :class:`~connector_tasks.core.oauth.TokenStore` (its lock makes workers renew once).
    ``page_size``: ``pageSize`` of list calls (1..5000, default 500). ``refresh_margin``:
    seconds before ``expires_in`` runs out at which a token is renewed (default 60).
    ``before_request()`` / ``on_rate_limited(retry_after seconds | None)`` /
    ``on_response(headers)``: the rate-budget hooks (60 requests per 1 s per app key × tenant;
    build them with :func:`connector_tasks.connectors.servicetitan.limits.budget_hooks`); token
    calls go to the auth host and do not draw from the budget. ``timeout``: (connect, read)
    seconds; the API's own timeout is 100 s.

    Errors (the tree of :mod:`connector_tasks.core.errors`):

    * :class:`AuthError` — the token endpoint refused the credentials (``invalid_client``
      named in the message), or a 401 persisted after one renewal (a missing or unknown
      ``ST-App-Key`` also answers 401), or 403 (the token's tenant is not this tenant);
    * :class:`NotFound` (a :class:`RejectedError`) — 404;
    * :class:`RejectedError` — 400 and other 4xx, ``lines`` = ``"<field>: <message>"`` of the
      ``ApiErrorResponse``;
    * :class:`~connector_tasks.core.errors.RateLimitedError` — 429 (``retry_after`` seconds from
      ``Retry-After``, after ``on_rate_limited``), or the budget refused;
    * :class:`TransientApiError` — 5xx, 408, transport errors, a body that is not JSON;
    * :class:`~connector_tasks.core.errors.ConflictError` — 409/412;
    * :class:`ConfigurationError` — bad constructor arguments.

    Nothing is retried here except once after a renewal on 401.
    """

    SYSTEM = SYSTEM
    LABEL = "ServiceTitan"
    EMPTY_BODY_OK = True

    def __init__(self, base_url: str, auth_url: str, tenant: int, app_key: str, client_id: str,
                 client_secret: str, token_store: TokenStore, *, page_size: int = DEFAULT_PAGE_SIZE,
                 refresh_margin: float = REFRESH_MARGIN, session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 before_request: Callable[[], None] | None = None,
                 on_rate_limited: Callable[[float | None], None] | None = None,
                 on_response: Callable[[Mapping[str, str]], object] | None = None):
        missing = [name for name, value in (("base_url", base_url), ("auth_url", auth_url),
                                            ("app_key", app_key), ("client_id", client_id),
                                            ("client_secret", client_secret)) if not value]
        if missing:
            raise ConfigurationError(f"ServiceTitan connection lacks {', '.join(missing)}", system=SYSTEM)
        if token_store is None:
            raise ConfigurationError("ServiceTitan client needs a token store", system=SYSTEM)
        try:
            tenant_id = int(tenant)
        except (TypeError, ValueError):
            raise ConfigurationError(f"ServiceTitan tenant must be an integer id (got {tenant!r})",
                                     system=SYSTEM) from None
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"ServiceTitan page_size must be 1..{MAX_PAGE_SIZE} (got {page_size!r})",
                                     system=SYSTEM)
        if not 0 <= refresh_margin:
            raise ConfigurationError("ServiceTitan refresh_margin must be >= 0 seconds", system=SYSTEM)
        super().__init__(base_url, session=session, timeout=timeout, before_request=before_request,
                         on_rate_limited=on_rate_limited, on_response=on_response)
        self.auth_url = auth_url
        self.tenant = tenant_id
        self.app_key = app_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_store = token_store
        self.page_size = page_size
        self.refresh_margin = float(refresh_margin)
        self._auth = BearerAuth(token_store, self._renew, margin=self.refresh_margin)

    # ------------------------------------------------------------------ auth
    def _token_call(self) -> Any:
        """``POST <auth_url>`` form-encoded ``grant_type=client_credentials``, ``client_id``,
        ``client_secret`` (https://developer.servicetitan.io/docs/oauth20/). A 400/401 is a
        refused grant → :class:`AuthError` naming the OAuth ``error`` (``invalid_client``…);
        other failures map as any call (5xx → :class:`TransientApiError`), but a 429 here does
        not hold back the API budget (another host)."""
        resp = self._send("POST", self.auth_url, budget=False, headers={"Accept": "application/json"},
                          data={"grant_type": "client_credentials", "client_id": self.client_id,
                                "client_secret": self.client_secret})
        if resp.status_code in (400, 401):
            error = wire.oauth_error(resp.text) or str(resp.status_code)
            raise AuthError(f"ServiceTitan refused the client-credentials grant for tenant {self.tenant} "
                            f"({error})", system=SYSTEM, status=resp.status_code,
                            body=resp.text[:BODY_SNIPPET], detail="; ".join(wire.error_lines(resp.text)) or None)
        if not 200 <= resp.status_code < 300:
            raise error_for_response(resp, system=SYSTEM, messages=wire.error_lines(resp.text),
                                     message=f"ServiceTitan token endpoint answered {resp.status_code}")
        return self._json(resp)

    def _renew(self, current: TokenSet | None) -> TokenSet:
        """A new token for :func:`~connector_tasks.core.oauth.refresh_under_lock` (client
        credentials: nothing of ``current`` is reused). ``expires_at`` = now + the reply's
        ``expires_in`` seconds (:data:`TOKEN_LIFETIME_FALLBACK` only when it is missing).
        Raises :class:`AuthError`."""
        body = self._token_call()
        return TokenSet.from_response(body, system=SYSTEM, default_expires_in=TOKEN_LIFETIME_FALLBACK)

    def access_token(self) -> str:
        """A bearer token valid for at least ``refresh_margin`` seconds: the stored one, or a new
        one obtained under the store's lock (saved there). Raises :class:`AuthError`."""
        return valid_tokens(self.token_store, self._renew, margin=self.refresh_margin).access_token

    # ------------------------------------------------------------------ transport
    def url(self, module: str, rest: str = "") -> str:
        """``<base_url>/<module>/v2/tenant/<tenant>/<rest>`` (OAS paths)."""
        tail = f"/{rest.lstrip('/')}" if rest else ""
        return f"{self.base_url}/{module}/v2/tenant/{self.tenant}{tail}"

    def request(self, method: str, module: str, rest: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None) -> Any:
        """One API call: ``method`` on :meth:`url` (``module`` ∈ inventory, pricebook, settings,
        accounting…) with ``ST-App-Key``, the bearer token and, for ``body``, JSON via
        :func:`wire.dumps` (Decimals exact). Draws from the budget first; a 401 renews the token
        once. Returns the decoded reply (:func:`wire.with_decimals`; ``None`` for an empty
        body). Raises the errors of the class docstring."""
        headers = {"ST-App-Key": self.app_key, "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = wire.dumps(body).encode()
        path = f"/{module}/v2/tenant/{self.tenant}/{rest.lstrip('/')}"
        resp = self._call(method, self.url(module, rest), auth=self._auth, what=f"{method} {path}",
                          headers=headers, params=_clean(params or {}) or None, data=data)
        return wire.with_decimals(self._json(resp))

    def _error_lines(self, resp: requests.Response) -> list[str]:
        return wire.error_lines(resp.text)

    def _special_error(self, resp: requests.Response, lines: list[str], what: str) -> ConnectorError | None:
        """404 → :class:`NotFound` (the rest follows the shared defaults)."""
        if resp.status_code == 404:
            return NotFound(f"ServiceTitan found nothing for {what} (404)", system=SYSTEM, status=404,
                            body=resp.text[:BODY_SNIPPET], lines=lines, detail="; ".join(lines) or None)
        return None

    def _error_summary(self, resp: requests.Response, what: str) -> str | None:
        if resp.status_code == 429:
            return f"ServiceTitan rate limit (429) on {what}"
        title = wire.error_title(resp.text)
        return f"ServiceTitan refused {what} ({resp.status_code}{': ' + title if title else ''})"

    def _created_id(self, body: Any, what: str) -> int:
        """``id`` of a ``ModificationResponse`` (or a created record). A 2xx without one leaves
        the outcome unknown: :class:`ExternalApiError` (not retried — it may exist)."""
        if isinstance(body, dict) and isinstance(body.get("id"), int) and not isinstance(body["id"], bool):
            return body["id"]
        raise ExternalApiError(f"ServiceTitan answered {what} without an id", system=SYSTEM,
                               body=str(body)[:BODY_SNIPPET])

    # ------------------------------------------------------------------ paging
    def iter_pages(self, module: str, resource: str, params: Mapping[str, Any] | None = None) -> Iterator[list[Record]]:
        """Yield each page's records of ``GET <module>/…/<resource>`` for ``page`` = 1, 2, … with
        ``pageSize`` = ``page_size``, until ``hasMore`` is false (OAS
        ``PaginatedResponse_Of_…``; https://partnerapis.servicetitan.io/docs/timeouts-and-pagination).
        A plain-array reply (``InventoryBills_GetList``) ends at a page shorter than
        ``page_size``. Raises :class:`TransientApiError` after :data:`MAX_PAGES` pages or for a
        reply of neither shape, and the errors of the class docstring."""
        base = dict(params or {})
        for page in range(1, MAX_PAGES + 1):
            body = self.request("GET", module, resource, params={**base, "page": page, "pageSize": self.page_size})
            if isinstance(body, list):
                yield body
                if len(body) < self.page_size:
                    return
                continue
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise TransientApiError(f"ServiceTitan answered GET {resource} with an unexpected shape",
                                        system=SYSTEM, body=str(body)[:BODY_SNIPPET])
            yield body["data"]
            if not body.get("hasMore"):
                return
        raise TransientApiError(f"ServiceTitan list {resource} did not end after {MAX_PAGES} pages", system=SYSTEM)

    def iter_all(self, module: str, resource: str, params: Mapping[str, Any] | None = None) -> Iterator[Record]:
        """Every record of every page (:meth:`iter_pages`), in ServiceTitan's order."""
        for page in self.iter_pages(module, resource, params):
            yield from page

    def list_all(self, module: str, resource: str, params: Mapping[str, Any] | None = None, *,
                 ids: Iterable[int] | None = None) -> list[Record]:
        """Every record of a list (all pages), each ``id`` once (a record that moves between
        pages while they are read is kept at its first place). ``ids``: look up these ids only,
        :data:`MAX_IDS` per call (``ids`` "maximum 50"); an empty ``ids`` makes no call."""
        if ids is not None:
            wanted = list(dict.fromkeys(int(i) for i in ids))
            out: list[Record] = []
            for start in range(0, len(wanted), MAX_IDS):
                out.extend(self.list_all(module, resource, {**(params or {}),
                                                            "ids": _csv(wanted[start:start + MAX_IDS])}))
            return out
        seen: set = set()
        out = []
        for record in self.iter_all(module, resource, params):
            key = record.get("id") if isinstance(record, dict) else None
            if key is not None and key in seen:
                continue
            if key is not None:
                seen.add(key)
            out.append(record)
        return out

    # ------------------------------------------------------------------ tenant set-up
    def ping(self) -> Ping:
        """Check the connection: obtain (or reuse) a token, then read the tenant's active business
        units (``BusinessUnits_GetList``), purchase-order types (``PurchaseOrderTypes_GetList``)
        and warehouses (``Warehouses_GetList``) — what a purchase order needs. Returns them as a
        :class:`Ping`. Raises :class:`AuthError` for refused credentials, app key or tenant, and
        the other errors of the class docstring."""
        self.access_token()
        return Ping(tenant=self.tenant, business_units=self.list_business_units(),
                    purchase_order_types=self.list_po_types(),
                    inventory_locations=self.list_inventory_locations())

    def list_business_units(self, active: bool | None = True, *, name: str | None = None) -> list[Record]:
        """Business units, all pages (OAS ``BusinessUnits_GetList``; ``active`` ``True``
        (default: ServiceTitan's own default), ``False``, or ``None`` for any; ``name`` filter).
        Records: ``TenantSettings.V2.BusinessUnitResponse`` (``id``, ``name``, ``currency``,
        ``defaultTaxRate`` ``Decimal`` fraction…)."""
        return self.list_all("settings", "business-units", {"active": _active(active), "name": name})

    def list_po_types(self) -> list[Record]:
        """Purchase-order types, all pages (OAS ``PurchaseOrderTypes_GetList``): ``id``, ``name``,
        ``active``, ``automaticallyReceive`` (a PO of such a type is received at once),
        ``defaultRequiredDateDaysOffset``…"""
        return self.list_all("inventory", "purchase-order-types")

    def list_inventory_locations(self) -> list[Record]:
        """Warehouses, all pages (OAS ``Warehouses_GetList``: ``id``, ``name``, ``active``,
        ``address``) — the inventory locations POs stock into. Trucks are inventory locations
        too: :meth:`list_trucks`."""
        return self.list_all("inventory", "warehouses")

    def list_trucks(self) -> list[Record]:
        """Trucks, all pages (OAS ``Trucks_GetList``: ``id``, ``name``, ``warehouseId``…)."""
        return self.list_all("inventory", "trucks")

    # ------------------------------------------------------------------ vendors, materials
    def list_vendors(self, active: bool | None = None, *, modified_on_or_after: When | None = None,
                     external_data_application_guid: str | None = None) -> list[Record]:
        """Vendors, all pages (OAS ``Vendors_GetList``: no name and no ``active`` filter exist,
        so ``active`` — ``True``/``False``, ``None`` for all — is applied here). Records:
        ``Inventory.V2.VendorResponse`` (``id``, ``name``, ``active``, ``defaultTaxRate``
        ``Decimal``, ``address``, ``externalData`` of the given application guid only)."""
        rows = self.list_all("inventory", "vendors", {
            "modifiedOnOrAfter": modified_on_or_after,
            "externalDataApplicationGuid": external_data_application_guid})
        return [v for v in rows if active is None or bool(v.get("active")) == active]

    def get_vendor(self, vendor_id: int) -> Record:
        """One vendor (OAS ``Vendors_GetById``). Raises :class:`NotFound`."""
        return self.request("GET", "inventory", f"vendors/{int(vendor_id)}")

    def create_vendor(self, request: Mapping[str, Any]) -> int:
        """Create a vendor from :func:`wire.vendor_request` (OAS ``Vendors_Create`` →
        ``ModificationResponse``); returns its id. Raises :class:`RejectedError` (e.g. a
        duplicate name, ``lines`` naming ``name``)."""
        return self._created_id(self.request("POST", "inventory", "vendors", body=request), "POST vendors")

    def list_materials(self, active: bool | None = None, *, ids: Iterable[int] | None = None,
                       modified_on_or_after: When | None = None,
                       external_data_application_guid: str | None = None,
                       sort: str | None = None) -> list[Record]:
        """Pricebook materials, all pages (OAS ``Materials_GetList``; ``active`` ``True``,
        ``False`` or ``None`` for any; no code filter exists, so a SKU ``code`` is found by
        reading the list; ``sort`` e.g. ``"+Code"``). Materials created with an application guid
        are listed only with that guid. Records: ``Pricebook.V2.MaterialResponse`` (``id``,
        ``code``, ``cost``/``price`` ``Decimal``, ``primaryVendor``…)."""
        return self.list_all("pricebook", "materials", {
            "active": _active(active), "modifiedOnOrAfter": modified_on_or_after,
            "externalDataApplicationGuid": external_data_application_guid, "sort": sort}, ids=ids)

    def get_material(self, material_id: int) -> Record:
        """One material (OAS ``Materials_Get``). Raises :class:`NotFound`."""
        return self.request("GET", "pricebook", f"materials/{int(material_id)}")

    def create_material(self, request: Mapping[str, Any]) -> int:
        """Create a material from :func:`wire.material_request` (OAS ``Materials_Create`` → 201
        ``MaterialResponse``); returns its id. Raises :class:`RejectedError` (e.g. a code in
        use)."""
        return self._created_id(self.request("POST", "pricebook", "materials", body=request), "POST materials")

    # ------------------------------------------------------------------ purchase orders
    def list_purchase_orders(self, *, ids: Iterable[int] | None = None, status: str | None = None,
                             number: str | None = None, job_id: int | None = None,
                             technician_id: int | None = None, project_id: int | None = None,
                             created_on_or_after: When | None = None, created_before: When | None = None,
                             modified_on_or_after: When | None = None, modified_before: When | None = None,
                             date_on_or_after: When | None = None, date_before: When | None = None,
                             sent_on_or_after: When | None = None, sent_before: When | None = None) -> list[Record]:
        """Purchase orders, all pages (OAS ``PurchaseOrders_GetList``). ``status``: one of
        Pending, Sent, PartiallyReceived, Received, Exported, Canceled (values as public clients
        send them; the spec types it a free string). Date filters: on-or-after inclusive,
        before exclusive. Records: ``Inventory.V2.PurchaseOrderResponse`` (``id``, ``number``,
        ``status``, ``vendorDocumentNumber``, ``total``/``tax``/``shipping`` ``Decimal``,
        ``items[]`` with ``id``, ``skuId``, ``quantity``, ``quantityReceived``, ``cost``,
        ``status`` Active/Inactive…)."""
        return self.list_all("inventory", "purchase-orders", {
            "status": status, "number": number, "jobId": job_id, "technicianId": technician_id,
            "projectId": project_id,
            **_dates(created_on_or_after, created_before, modified_on_or_after, modified_before),
            "dateOnOrAfter": date_on_or_after, "dateBefore": date_before,
            "sentOnOrAfter": sent_on_or_after, "sentBefore": sent_before}, ids=ids)

    def get_purchase_order(self, po_id: int) -> Record:
        """One purchase order (OAS ``PurchaseOrders_GetById``; shape as
        :meth:`list_purchase_orders`). Raises :class:`NotFound`."""
        return self.request("GET", "inventory", f"purchase-orders/{int(po_id)}")

    def create_purchase_order(self, request: Mapping[str, Any]) -> int:
        """Create a PO from :func:`wire.purchase_order_request` (OAS ``PurchaseOrders_Create``
        → ``ModificationResponse``); returns its id. Raises :class:`RejectedError` whose
        ``lines`` name the refused fields (``vendorId: …``, ``items[0].skuId: …``)."""
        return self._created_id(self.request("POST", "inventory", "purchase-orders", body=request),
                                "POST purchase-orders")

    def update_purchase_order(self, po_id: int, request: Mapping[str, Any]) -> int:
        """Update a PO with :func:`wire.purchase_order_update_request` (OAS
        ``PurchaseOrders_Update``, PATCH → ``ModificationResponse``); returns the id. When the
        request has ``items``, every item to keep must be in it: "Every active PO item that is
        not on this list will be marked as inactive" (OAS ``UpdatePurchaseOrderRequest.items``).
        Returns the id (the reply's, else ``po_id`` when the body is empty). Raises
        :class:`NotFound`, :class:`RejectedError`."""
        body = self.request("PATCH", "inventory", f"purchase-orders/{int(po_id)}", body=dict(request))
        return self._created_id(body, "PATCH purchase-orders") if body is not None else int(po_id)

    def cancel_purchase_order(self, po_id: int, reason: str, memo: str | None = None) -> int:
        """Cancel a PO: ``PATCH purchase-orders/{id}/cancellation`` with
        :func:`wire.cancellation_request` (not in the spec snapshot; newer clients of the API,
        e.g. https://github.com/montrellcruse/servicetitan-mcp). ``reason`` ∈
        :data:`wire.CANCEL_REASONS`. Returns the id (the reply's, else ``po_id`` when the body
        is empty). Raises :class:`NotFound`, :class:`RejectedError` (e.g. the PO has receipts),
        ``ValueError`` for an unknown reason (nothing sent)."""
        body = self.request("PATCH", "inventory", f"purchase-orders/{int(po_id)}/cancellation",
                            body=wire.cancellation_request(reason, memo))
        return self._created_id(body, "PATCH purchase-orders cancellation") if body is not None else int(po_id)

    # ------------------------------------------------------------------ receipts, returns
    def list_receipts(self, vendor_invoice_number: str | None = None,
                      purchase_order_ids: Iterable[int] | None = None, *, ids: Iterable[int] | None = None,
                      active: bool | None = True, number: str | None = None,
                      vendor_ids: Iterable[int] | None = None, bill_id: int | None = None,
                      received_on_or_after: When | None = None, received_before: When | None = None,
                      created_on_or_after: When | None = None, created_before: When | None = None,
                      modified_on_or_after: When | None = None, modified_before: When | None = None) -> list[Record]:
        """Receipts, all pages (OAS ``Receipts_Get``): by ``vendorInvoiceNumber`` (exact) and/or
        ``purchaseOrderIds`` — how a flow finds out whether a vendor invoice was already
        received. ``active`` ``True`` (default, ServiceTitan's too: canceled receipts are
        inactive), ``False`` or ``None`` for any. Records:
        ``Inventory.V2.InventoryReceiptResponse`` (``id``, ``number``, ``vendorInvoiceNumber``,
        ``purchaseOrderId``, ``billId``, ``receiptAmount``/``taxAmount``/``shippingAmount``
        ``Decimal``, ``items[]``…)."""
        return self.list_all("inventory", "receipts", {
            "vendorInvoiceNumber": vendor_invoice_number, "purchaseOrderIds": _csv(purchase_order_ids),
            "active": _active(active), "number": number, "vendorIds": _csv(vendor_ids), "billId": bill_id,
            "receivedOnOrAfter": received_on_or_after, "receivedBefore": received_before,
            **_dates(created_on_or_after, created_before, modified_on_or_after, modified_before)}, ids=ids)

    def create_receipt(self, request: Mapping[str, Any]) -> int:
        """Receive (part of) a PO: ``POST receipts`` with :func:`wire.receipt_request` ("Create a
        receipt for Purchase Order"; not in the spec snapshot; newer clients of the API, e.g.
        https://github.com/montrellcruse/servicetitan-mcp). Returns the receipt id. Stock on hand
        grows at the PO's inventory location and ServiceTitan bills the receipt. Raises
        :class:`RejectedError` (``lines`` e.g. ``items[0].quantity: …`` for more than is
        outstanding)."""
        return self._created_id(self.request("POST", "inventory", "receipts", body=request), "POST receipts")

    def cancel_receipt(self, receipt_id: int, reason: str, memo: str | None = None) -> int:
        """Cancel a receipt: ``PATCH receipts/{id}/cancellation`` with
        :func:`wire.cancellation_request` (``canceledReason`` ∈ :data:`wire.CANCEL_REASONS`; not in
        the spec snapshot, https://github.com/montrellcruse/servicetitan-mcp). The receipt turns
        inactive. Returns the id. Raises :class:`NotFound`, :class:`RejectedError`,
        ``ValueError`` for an unknown reason (nothing sent)."""
        body = self.request("PATCH", "inventory", f"receipts/{int(receipt_id)}/cancellation",
                            body=wire.cancellation_request(reason, memo))
        return self._created_id(body, "PATCH receipts cancellation") if body is not None else int(receipt_id)

    def list_returns(self, *, ids: Iterable[int] | None = None, active: bool | None = True,
                     number: str | None = None, reference_number: str | None = None,
                     purchase_order_id: int | None = None, job_id: int | None = None,
                     vendor_ids: Iterable[int] | None = None,
                     return_date_on_or_after: When | None = None, return_date_before: When | None = None,
                     created_on_or_after: When | None = None, created_before: When | None = None,
                     modified_on_or_after: When | None = None, modified_before: When | None = None) -> list[Record]:
        """Returns to vendors, all pages (OAS ``Returns_Get``; ``active`` as
        :meth:`list_receipts`). Records: ``Inventory.V2.InventoryReturnResponse`` (``id``,
        ``number``, ``referenceNumber``, ``vendorId``, ``returnAmount`` ``Decimal``,
        ``items[]``…)."""
        return self.list_all("inventory", "returns", {
            "active": _active(active), "number": number, "referenceNumber": reference_number,
            "purchaseOrderId": purchase_order_id, "jobId": job_id, "vendorIds": _csv(vendor_ids),
            "returnDateOnOrAfter": return_date_on_or_after, "returnDateBefore": return_date_before,
            **_dates(created_on_or_after, created_before, modified_on_or_after, modified_before)}, ids=ids)

    def create_return(self, request: Mapping[str, Any]) -> int:
        """Return goods to a vendor: ``POST returns`` with :func:`wire.return_request` ("Create a
        Return"; not in the spec snapshot, https://github.com/montrellcruse/servicetitan-mcp).
        Returns the return id. Raises :class:`RejectedError` (e.g. not enough stock at the
        location)."""
        return self._created_id(self.request("POST", "inventory", "returns", body=request), "POST returns")

    # ------------------------------------------------------------------ stock movements, bills
    def list_adjustments(self, *, ids: Iterable[int] | None = None, active: bool | None = True,
                         number: str | None = None, reference_number: str | None = None,
                         inventory_location_ids: Iterable[int] | None = None,
                         adjustment_types: str | None = None,
                         date_on_or_after: When | None = None, date_before: When | None = None,
                         created_on_or_after: When | None = None, created_before: When | None = None,
                         modified_on_or_after: When | None = None, modified_before: When | None = None) -> list[Record]:
        """Inventory adjustments, all pages (OAS ``Adjustments_Get``; read-only in this API
        version). Records: ``Inventory.V2.InventoryAdjustmentResponse`` (``id``, ``number``,
        ``type``, ``inventoryLocationId``, ``items[]`` with ``quantity`` ``Decimal``…)."""
        return self.list_all("inventory", "adjustments", {
            "active": _active(active), "number": number, "referenceNumber": reference_number,
            "inventoryLocationIds": _csv(inventory_location_ids), "adjustmentTypes": adjustment_types,
            "dateOnOrAfter": date_on_or_after, "dateBefore": date_before,
            **_dates(created_on_or_after, created_before, modified_on_or_after, modified_before)}, ids=ids)

    def list_transfers(self, *, ids: Iterable[int] | None = None, statuses: str | None = None,
                       number: str | None = None, reference_number: str | None = None,
                       from_location_ids: Iterable[int] | None = None,
                       to_location_ids: Iterable[int] | None = None,
                       date_on_or_after: When | None = None, date_before: When | None = None,
                       created_on_or_after: When | None = None, created_before: When | None = None,
                       modified_on_or_after: When | None = None, modified_before: When | None = None) -> list[Record]:
        """Inventory transfers between locations, all pages (OAS ``Transfers_Get``; read-only).
        Records: ``Inventory.V2.InventoryTransferResponse`` (``id``, ``status``,
        ``fromLocationId``, ``toLocationId``, ``items[]``…)."""
        return self.list_all("inventory", "transfers", {
            "statuses": statuses, "number": number, "referenceNumber": reference_number,
            "fromLocationIds": _csv(from_location_ids), "toLocationIds": _csv(to_location_ids),
            "dateOnOrAfter": date_on_or_after, "dateBefore": date_before,
            **_dates(created_on_or_after, created_before, modified_on_or_after, modified_before)}, ids=ids)

    def list_inventory_bills(self, *, ids: Iterable[int] | None = None, bill_number: str | None = None,
                             purchase_order_number: str | None = None,
                             business_unit_ids: Iterable[int] | None = None,
                             sync_statuses: Sequence[str] | None = None,
                             date_from: When | None = None, date_to: When | None = None,
                             created_on_or_after: When | None = None, created_before: When | None = None,
                             modified_on_or_after: When | None = None, modified_before: When | None = None) -> list[Record]:
        """Inventory bills, all pages (OAS ``InventoryBills_GetList`` — read-only: this API
        version cannot create bills; a plain-array reply). ``sync_statuses`` goes as a repeated
        parameter (the spec types it an array). Records: ``Accounting.V2.InventoryBillResponse``
        (``id``, ``purchaseOrderId``, ``referenceNumber``, ``billAmount``/``taxAmount``/
        ``shippingAmount`` and ``items[].cost``/``quantity`` — strings on the wire — as
        ``Decimal``, ``vendor``, ``businessUnit``…)."""
        return self.list_all("accounting", "inventory-bills", {
            "billNumber": bill_number, "purchaseOrderNumber": purchase_order_number,
            "businessUnitIds": _csv(business_unit_ids),
            "syncStatuses": list(sync_statuses) if sync_statuses is not None else None,
            "dateFrom": date_from, "dateTo": date_to,
            **_dates(created_on_or_after, created_before, modified_on_or_after, modified_before)}, ids=ids)
