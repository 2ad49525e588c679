"""ServiceTitan connection plumbing shared by the target side, the tasks and the CLI: typed
settings, the client with its stored tokens and the 60/s budget, what every PO uses (business
unit, PO type, inventory location) and the per-connection vendor and material cache.

Connection (``system="servicetitan"``): ``account`` = the tenant id; ``settings``:
:class:`~.settings.ServiceTitanSettings`; ``credentials`` (encrypted): ``client_id``,
``client_secret`` (per tenant) and ``app_key`` (per application)
(https://developer.servicetitan.io/docs/faqs-app-key-client-id-secret/), and the current
access token beside them under ``st_tokens`` (client credentials: renewed, never refreshed).

Vendors and pricebook materials cannot be filtered by name or code in the public v2 specs
(``Vendors_GetList``, ``Materials_GetList``), so each connection keeps a cache of its active
vendors (name → ids) and materials (code → ids) in its runtime state ``servicetitan_catalog``,
refreshed by beat (``servicetitan.refresh_catalogs``) and on a miss
(:func:`match`), and matched exactly.
"""
from __future__ import annotations

import logging

from connector_tasks import runtime
from connector_tasks.connections import settings_of
from connector_tasks.connectors.servicetitan.client import SYSTEM, ServiceTitanClient
from connector_tasks.connectors.servicetitan.limits import budget_for, budget_hooks
from connector_tasks.connectors.servicetitan.settings import ServiceTitanSettings
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.core.oauth import TokenSet
from connector_tasks.domain.purchases import MatchedLine, Purchase, Unmatched
from connector_tasks.flows.purchase_to_order import index, match_purchase
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, utcnow
from connector_tasks.store.tokens import StoredTokens

log = logging.getLogger(__name__)

#: where the access token lives in the connection's credentials
TOKENS_KEY = "st_tokens"
#: runtime-state key of the vendor/material cache
CATALOG_KEY = "servicetitan_catalog"
#: runtime-state key of the resolved business unit, PO type and inventory location
SETUP_KEY = "servicetitan_setup"
CREDENTIALS = ("client_id", "client_secret", "app_key")


def check_settings(conn) -> ServiceTitanSettings:
    """``conn``'s typed settings; ConfigurationError when the tenant id (``account``) is not an
    integer."""
    settings = settings_of(conn)
    try:
        int(conn.account)
    except (TypeError, ValueError):
        raise ConfigurationError(f"ServiceTitan connection {conn.name!r} has no tenant id "
                                 f"(ml-connector servicetitan connect)", system=SYSTEM) from None
    return settings


def client_for(conn: Connection) -> ServiceTitanClient:
    """A :class:`ServiceTitanClient` for ``conn``: its client credentials and app key from the
    encrypted credentials, its token in :class:`~connector_tasks.store.tokens.StoredTokens`
    (renewed under ``lock:servicetitan-oauth:<id>``, one renewal for every worker), and the
    global budget of 60 requests per second per (app key, tenant) in Redis
    (:func:`~.limits.budget_hooks`: a request waits up to 2 s for a slot, else
    RateLimitedError; a 429's ``Retry-After`` holds every worker back). Raises
    ConfigurationError for missing settings or credentials."""
    settings = check_settings(conn)
    creds = repo.read_credentials(conn, runtime.vault())
    missing = [k for k in CREDENTIALS if not creds.get(k)]
    if missing:
        raise ConfigurationError(f"ServiceTitan connection {conn.name!r} lacks {', '.join(missing)} "
                                 f"(ml-connector servicetitan connect)", system=SYSTEM)
    api, auth = settings.hosts()
    budget = budget_for(runtime.redis_client(), creds["app_key"], conn.account)
    return ServiceTitanClient(api, auth, int(conn.account), creds["app_key"], creds["client_id"],
                              creds["client_secret"],
                              StoredTokens(conn.id, TokenSet, system=SYSTEM, key=TOKENS_KEY),
                              page_size=settings.page_size, **budget_hooks(budget))


def _pick(records: list[dict], wanted: str | None, what: str, conn_name: str) -> dict:
    """The active record named or numbered ``wanted`` (exact), or the only active one."""
    active = [r for r in records if r.get("active", True) is not False]
    if wanted:
        found = [r for r in active if (wanted.isdigit() and int(r["id"]) == int(wanted)) or r.get("name") == wanted]
        if len(found) == 1:
            return found[0]
        names = ", ".join(repr(r.get("name")) for r in active) or "none"
        raise ConfigurationError(f"ServiceTitan connection {conn_name!r}: {what} {wanted!r} "
                                 f"{'is not' if not found else 'names several'} active {what}s "
                                 f"(active: {names})", system=SYSTEM)
    if len(active) == 1:
        return active[0]
    raise ConfigurationError(f"ServiceTitan connection {conn_name!r}: the tenant has {len(active)} active "
                             f"{what}s; name one in the {what.replace(' ', '_')} setting", system=SYSTEM)


def resolve_setup(conn, client: ServiceTitanClient) -> dict:
    """What every PO of ``conn`` uses, read from ServiceTitan now: ``{"business_unit",
    "po_type", "inventory_location"}``, each ``{"id", "name"}`` (plus ``automaticallyReceive`` of
    the PO type). Stored as state ``servicetitan_setup``. Raises ConfigurationError naming a
    setting that matches no active record (or, unset, when the tenant has several)."""
    settings = check_settings(conn)
    bu = _pick(client.list_business_units(), settings.business_unit, "business unit", conn.name)
    po_type = _pick(client.list_po_types(), settings.po_type, "PO type", conn.name)
    location = _pick(client.list_inventory_locations() + client.list_trucks(), settings.inventory_location,
                     "inventory location", conn.name)
    setup = {"business_unit": {"id": int(bu["id"]), "name": bu.get("name")},
             "po_type": {"id": int(po_type["id"]), "name": po_type.get("name"),
                         "automaticallyReceive": bool(po_type.get("automaticallyReceive"))},
             "inventory_location": {"id": int(location["id"]), "name": location.get("name")},
             "resolved_at": utcnow().isoformat()}
    with session_scope(runtime.settings().database_url) as s:
        repo.put_state(s, conn.id, {SETUP_KEY: setup})
    return setup


def setup_of(conn, client: ServiceTitanClient) -> dict:
    """The stored setup (:func:`resolve_setup`), resolved now when none is stored or the
    settings changed since."""
    settings = check_settings(conn)
    with session_scope(runtime.settings().database_url) as s:
        setup = repo.get_state(s, conn.id, SETUP_KEY)
    wanted = (settings.business_unit, settings.po_type, settings.inventory_location)
    if setup and setup.get("settings") == list(wanted):
        return setup
    setup = resolve_setup(conn, client)
    setup["settings"] = list(wanted)
    with session_scope(runtime.settings().database_url) as s:
        repo.put_state(s, conn.id, {SETUP_KEY: setup})
    return setup


def refresh_catalog(conn, client: ServiceTitanClient) -> dict:
    """Read every active vendor and material of ``conn``'s tenant (all pages) and store
    ``{"vendors": {name: [ids]}, "materials": {code: [ids]}, "fetched_at": iso}`` as state
    ``servicetitan_catalog``; returns it. Raises the client's errors."""
    catalog = {"vendors": index(client.list_vendors(active=True), "name"),
               "materials": index(client.list_materials(active=True), "code"),
               "fetched_at": utcnow().isoformat()}
    with session_scope(runtime.settings().database_url) as s:
        repo.put_state(s, conn.id, {CATALOG_KEY: catalog})
    log.info("servicetitan: catalogue of %s refreshed: %d vendor names, %d material codes", conn.name,
             len(catalog["vendors"]), len(catalog["materials"]))
    return catalog


def cached_catalog(conn) -> dict | None:
    """The stored catalogue of ``conn`` (see :func:`refresh_catalog`), or ``None``."""
    with session_scope(runtime.settings().database_url) as s:
        return repo.get_state(s, conn.id, CATALOG_KEY)


def match(conn, client: ServiceTitanClient, purchase: Purchase) -> tuple[int | None, list[MatchedLine], Unmatched]:
    """Match ``purchase`` exactly against ``conn``'s cached catalogue
    (:func:`~connector_tasks.flows.purchase_to_order.match_purchase`, by the connection's
    ``match_items_by``); on any miss (or with no cache yet) the catalogue is refreshed from
    ServiceTitan once and matched again. Returns ``(vendor id, lines, unmatched)``."""
    by = check_settings(conn).match_items_by
    catalog = cached_catalog(conn)
    if catalog is not None:
        vendor_id, lines, unmatched = match_purchase(purchase, catalog["vendors"], catalog["materials"], by)
        if not unmatched:
            return vendor_id, lines, unmatched
    catalog = refresh_catalog(conn, client)
    return match_purchase(purchase, catalog["vendors"], catalog["materials"], by)


def ping(conn: Connection) -> dict:
    """Check ``conn`` end to end: a token is granted (or the stored one works), and the business
    unit, PO type and inventory location every PO will use resolve to active records.
    Returns ``{"ok": bool, "tenant", "token": "works", "business_unit", "po_type",
    "inventory_location"}`` (each ``{"id", "name"}``) or, when the setup does not resolve,
    ``{"ok": False, "token": "works", "problem": text, "available": {...}}``. Raises AuthError
    (ServiceTitan's word, e.g. ``invalid_client``) and the client's other errors."""
    client = client_for(conn)
    try:
        found = client.ping()
        try:
            setup = resolve_setup(conn, client)
        except ConfigurationError as exc:
            return {"ok": False, "tenant": found.tenant, "token": "works", "problem": exc.message,
                    "available": {"business_units": [b.get("name") for b in found.business_units],
                                  "po_types": [t.get("name") for t in found.purchase_order_types],
                                  "inventory_locations": [w.get("name") for w in found.inventory_locations]}}
    finally:
        client.session.close()
    return {"ok": True, "tenant": found.tenant, "token": "works", **{k: setup[k] for k in (
        "business_unit", "po_type", "inventory_location")}}
