"""The ServiceTitan emulator's in-memory world: configuration, tenants and their data, tokens,
rate windows, queued faults, the request log, and the default seed.

Everything is guarded by :attr:`World.lock` (an RLock); the HTTP layer holds it for the whole
of a request's handler, so the threaded server sees one consistent world.

Ids are int64 (every ``id`` in the specs is ``format: int64``) and come from ONE counter for all
kinds and tenants, starting just above 2**31 (ASSUMPTION: deliberately, so a client that keeps
ids in 32 bits breaks here and not in production; real ids are smaller today).
"""
from __future__ import annotations

import copy
import hashlib
import threading
from collections import deque
from decimal import Decimal

#: The demo tenant (path ``/{module}/v2/tenant/{tenant}/…``; §5: "int64 tenant").
DEMO_TENANT = 1_000_123_456
#: ASSUMPTION: credential formats modelled on ServiceTitan's ``cid.``/``cs1.``/``ak1.`` prefixes.
DEMO_CLIENT_ID = "cid.demo-servicetitan-tenant"
DEMO_CLIENT_SECRET = "cs1.demo-servicetitan-secret"
DEMO_APP_KEY = "ak1.demo-servicetitan-app-key"
FIRST_ID = 2 ** 31 + 53   # see the module docstring

DEFAULTS: dict = {
    # §5 / developer.servicetitan.io/docs/faqs-app-key-client-id-secret/: client id & secret are
    # per tenant; the app key is per application and works for every tenant.
    "tenants": {DEMO_TENANT: {"name": "Demo Mechanical Inc", "client_id": DEMO_CLIENT_ID,
                              "client_secret": DEMO_CLIENT_SECRET}},
    "app_keys": [DEMO_APP_KEY],
    # §5: expires_in 900 s is the widely observed value (official number UNCONFIRMED).
    "token_ttl": 900,
    # §5: 60 requests per second per (app key, tenant), counted here per one-second window
    # (0 = no limit; the admitted counts are kept either way).
    "rate_limit": 60,
    "latency": 0.0,                 # seconds every API call takes (test knob, not ServiceTitan)
    "request_log_limit": 100_000,   # oldest entries are dropped beyond this
    "seed": True,                   # load :func:`default_seed` into every tenant on (re)set
    # ASSUMPTION (no source either way): vendor names and pricebook codes are unique per tenant
    # (case-insensitive); a duplicate create is a 400. Set False to allow duplicates.
    "unique_vendor_names": True,
    "unique_material_codes": True,
}


def app_key_digest(app_key: str) -> str:
    """Short digest of an app key (a credential); the bucket name is ``<digest>-<tenant>``, the
    same account naming as ``connector_tasks.connectors.servicetitan.budget``."""
    return hashlib.sha256(app_key.encode()).hexdigest()[:16]


class TenantData:
    """One tenant's records, each kind a dict id → stored record (internal field names are the
    response field names wherever one exists)."""

    def __init__(self, tenant_id: int, name: str):
        self.id, self.name = tenant_id, name
        self.vendors: dict[int, dict] = {}
        self.materials: dict[int, dict] = {}
        self.business_units: dict[int, dict] = {}
        self.po_types: dict[int, dict] = {}
        self.warehouses: dict[int, dict] = {}
        self.trucks: dict[int, dict] = {}
        self.purchase_orders: dict[int, dict] = {}
        self.receipts: dict[int, dict] = {}
        self.returns: dict[int, dict] = {}
        self.adjustments: dict[int, dict] = {}
        self.transfers: dict[int, dict] = {}
        self.bills: dict[int, dict] = {}
        #: (inventory location id, sku id) → quantity on hand (Decimal).
        self.on_hand: dict[tuple[int, int], Decimal] = {}
        self.po_seq = 1000       # ASSUMPTION: PO numbers are sequential digits from 1001
        self.return_seq = 0
        self.adjustment_seq = 0
        self.transfer_seq = 0

    def location(self, loc_id: int | None) -> dict | None:
        """An inventory location: a warehouse or a truck (OAS ``inventoryLocationId``)."""
        if loc_id is None:
            return None
        return self.warehouses.get(loc_id) or self.trucks.get(loc_id)

    def add_on_hand(self, loc_id: int, sku_id: int, qty: Decimal) -> None:
        key = (loc_id, sku_id)
        self.on_hand[key] = self.on_hand.get(key, Decimal(0)) + Decimal(qty)


class World:
    """All emulator state. Hold :attr:`lock` around every read and write."""

    def __init__(self, config: dict):
        self.config = config
        self.lock = threading.RLock()
        self.reset()

    # ------------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        """Back to the configured tenants with the default seed; tokens, windows, faults and
        the request log are cleared (config kept)."""
        self.next_id = FIRST_ID
        self.tenants: dict[int, TenantData] = {}
        self.tokens: dict[str, dict] = {}
        self.faults: list[dict] = []
        self.requests_log: deque = deque()
        self.request_count = 0
        #: bucket → {"windows": {epoch second: admitted}, "rejected": n}
        self.rate: dict[str, dict] = {}
        self.counters = {"token_grants": 0, "token_refusals": 0, "rate_limited": 0,
                         "faults_injected": 0, "unauthorized": 0, "forbidden": 0}
        for tid, spec in self.config["tenants"].items():
            self.tenants[int(tid)] = TenantData(int(tid), spec.get("name", f"Tenant {tid}"))
            if self.config.get("seed", True):
                from .admin import apply_seed   # late import: admin builds on this module
                apply_seed(self, self.tenants[int(tid)], default_seed())

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def client(self, client_id: str) -> tuple[int, dict] | None:
        """The tenant whose client credentials carry ``client_id``."""
        for tid, spec in self.config["tenants"].items():
            if spec.get("client_id") == client_id:
                return int(tid), spec
        return None

    # ------------------------------------------------------------------ rate windows (§5)
    def admit(self, bucket: str, when: float) -> tuple[bool, float]:
        """Count one request in ``bucket``'s one-second window holding ``when``.
        Returns ``(admitted, seconds until the next window)``. §5: 60 requests per second per
        (app key, tenant); ASSUMPTION: fixed windows aligned to whole epoch seconds."""
        limit = int(self.config["rate_limit"])
        window = int(when)
        rec = self.rate.setdefault(bucket, {"windows": {}, "rejected": 0})
        count = rec["windows"].get(window, 0)
        if limit > 0 and count >= limit:
            rec["rejected"] += 1
            self.counters["rate_limited"] += 1
            return False, window + 1 - when
        rec["windows"][window] = count + 1
        if len(rec["windows"]) > 86_400:   # keep a day of windows per bucket
            for old in sorted(rec["windows"])[: len(rec["windows"]) - 86_400]:
                del rec["windows"][old]
        return True, 0.0

    def rate_state(self) -> dict:
        out = {}
        for bucket, rec in self.rate.items():
            wins = rec["windows"]
            out[bucket] = {"windows": {str(k): v for k, v in sorted(wins.items())},
                           "max_admitted_in_a_window": max(wins.values(), default=0),
                           "admitted": sum(wins.values()), "rejected": rec["rejected"]}
        return {"limit": int(self.config["rate_limit"]), "window_seconds": 1,
                "max_admitted_in_any_window": max((b["max_admitted_in_a_window"]
                                                   for b in out.values()), default=0),
                "buckets": out}

    # ------------------------------------------------------------------ log
    def log(self, entry: dict) -> None:
        self.request_count += 1
        entry["seq"] = self.request_count
        self.requests_log.append(entry)
        while len(self.requests_log) > int(self.config["request_log_limit"]):
            self.requests_log.popleft()


def default_seed() -> dict:
    """The demo records every tenant starts with (shapes as ``POST /_sandbox/seed`` takes them).
    ASSUMPTION: invented names, codes, prices and addresses."""
    return {
        "business_units": [{"name": "HVAC Service", "officialName": "Demo Mechanical Inc - HVAC",
                            "email": "hvac@demo-mechanical.example", "currency": "USD",
                            "phoneNumber": "555-0100", "defaultTaxRate": "0.0825",
                            "address": {"street": "100 Main St", "unit": "", "city": "Austin",
                                        "state": "TX", "zip": "78701", "country": "USA"}}],
        "purchase_order_types": [{"name": "Standard", "automaticallyReceive": False,
                                  "defaultRequiredDateDaysOffset": 7}],
        "warehouses": [{"name": "Main Warehouse",
                        "address": {"street": "200 Industrial Blvd", "unit": "B", "city": "Austin",
                                    "state": "TX", "zip": "78744", "country": "USA"}}],
        "trucks": [{"name": "Truck 101", "warehouse": "Main Warehouse"}],
        "vendors": [
            {"name": "Ferguson Enterprises", "email": "orders@ferguson.example", "taxRate": "0.0825",
             "address": {"street": "12500 Jefferson Ave", "unit": "", "city": "Newport News",
                         "state": "VA", "zip": "23602", "country": "USA"}},
            {"name": "Johnstone Supply", "email": "sales@johnstone.example", "taxRate": "0",
             "address": {"street": "11632 NE Ainsworth Cir", "unit": "", "city": "Portland",
                         "state": "OR", "zip": "97220", "country": "USA"}},
        ],
        "materials": [
            {"code": "CU-PIPE-075", "displayName": "Copper pipe 3/4in",
             "description": "Type L copper pipe, 3/4 in x 10 ft", "cost": "38.50", "price": "61.60",
             "unitOfMeasure": "Each", "vendor": "Ferguson Enterprises", "vendorPart": "LH04010"},
            {"code": "FLT-16252", "displayName": "Air filter 16x25x2",
             "description": "Pleated air filter MERV 11, 16x25x2", "cost": "9.75", "price": "24.00",
             "unitOfMeasure": "Each", "vendor": "Johnstone Supply", "vendorPart": "F11-16252"},
            {"code": "CAP-45-5", "displayName": "Run capacitor 45/5 uF",
             "description": "Dual run capacitor 45/5 uF 440 V", "cost": "14.20", "price": "89.00",
             "unitOfMeasure": "Each", "vendor": "Johnstone Supply", "vendorPart": "C45-5R"},
        ],
    }


def copy_config(config: dict | None) -> dict:
    """DEFAULTS overridden by ``config`` (tenant ids normalised to int)."""
    cfg = copy.deepcopy(DEFAULTS)
    cfg.update(copy.deepcopy(config or {}))
    cfg["tenants"] = {int(k): dict(v) for k, v in cfg["tenants"].items()}
    cfg["app_keys"] = list(cfg["app_keys"])
    return cfg


__all__ = ["DEFAULTS", "DEMO_TENANT", "DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "DEMO_APP_KEY",
           "World", "TenantData", "default_seed", "copy_config", "app_key_digest"]
