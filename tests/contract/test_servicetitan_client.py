"""ServiceTitanClient against the ServiceTitan emulator (sandbox/servicetitan) over real HTTP.

Every request a client sends in these tests is recorded (a ``requests`` response hook) and, when
its test ends, validated with openapi-core against the public v2 spec operation its path names
(:mod:`tests.contract.servicetitan_spec`), together with the emulator's answer whenever the spec
documents that status. The four endpoints the spec snapshot lacks (``POST receipts``,
``PATCH receipts/{id}/cancellation``, ``PATCH purchase-orders/{id}/cancellation``,
``POST returns``) have their ``{"id"}`` answers checked against ``ModificationResponse``.
What the client sent is also read back from the emulator's request log (token requests, headers,
pages). One test draws from a real Redis budget (the session's ``redis_server``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import redis as redis_lib
import requests

from connector_tasks.connectors.servicetitan import wire
from connector_tasks.connectors.servicetitan.budget import servicetitan_account
from connector_tasks.connectors.servicetitan.client import NotFound, ServiceTitanClient
from connector_tasks.connectors.servicetitan.limits import budget_for, budget_hooks
from connector_tasks.connectors.servicetitan.wire import (Address, PurchaseOrderLine, ReceiptLine,
                                                          ReturnLine)
from connector_tasks.core.errors import (AuthError, RateLimitedError, RejectedError,
                                         TransientApiError)
from sandbox.servicetitan import (DEMO_APP_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT,
                                  serve)
from tests.contract.servicetitan_spec import (SPEC_FILES, module_of, spec_dict, validate_exchange,
                                              validate_schema)
from tests.support.oauth import InMemoryTokenStore

OTHER_TENANT = 2_000_777_001
ADDRESS = Address(street="200 Industrial Blvd", unit="B", city="Austin", state="TX", zip="78744",
                  country="USA")
# Properties the spec writes {oneOf: [$ref], nullable: true} that may be null (tolerated by
# servicetitan_spec, see its docstring) — the same list as the emulator's contract tests.
NULLABLE_ONE_OF = {"shipTo", "generalLedgerAccount", "costOfSaleAccount", "assetAccount",
                   "primarySubAccount", "primaryVendor", "batch"}
NOT_IN_SPEC = [("POST", r"/inventory/v2/tenant/\d+/receipts"),
               ("PATCH", r"/inventory/v2/tenant/\d+/receipts/\d+/cancellation"),
               ("PATCH", r"/inventory/v2/tenant/\d+/purchase-orders/\d+/cancellation"),
               ("POST", r"/inventory/v2/tenant/\d+/returns")]


# ====================================================================================== spec check
def _spec_operations() -> list[tuple[str, re.Pattern, set[str]]]:
    """(method, path regex, documented statuses) of every operation of the four specs."""
    ops = []
    for module in SPEC_FILES:
        for path, item in spec_dict(module)["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
            for method, op in item.items():
                if method in ("get", "post", "patch", "put", "delete"):
                    ops.append((method.upper(), pattern, set(op.get("responses") or {})))
    # literal paths (…/custom-fields) before templated ones
    return sorted(ops, key=lambda o: o[1].pattern.count("[^/]+"))


class Exchanges:
    """Every response a client received (``requests`` response hook), validated at the end."""

    def __init__(self):
        self.responses: list[requests.Response] = []

    def hook(self, resp, *args, **kwargs):
        self.responses.append(resp)

    def check(self) -> dict:
        """Validate each exchange: a spec operation's request always, its response when the
        spec documents the status; an answer of a NOT_IN_SPEC route as ModificationResponse.
        Returns counts by kind (token calls and sandbox calls are not API calls)."""
        ops = _spec_operations()
        counts = {"spec": 0, "not_in_spec": 0, "token": 0, "undocumented_status": 0}
        for resp in self.responses:
            req = resp.request
            path = req.path_url.split("?")[0]
            if path.endswith("/connect/token"):
                counts["token"] += 1
                continue
            match = next(((m, p, s) for m, p, s in ops if m == req.method and p.match(path)), None)
            if match is None:
                assert any(m == req.method and re.fullmatch(p, path) for m, p in NOT_IN_SPEC), \
                    f"{req.method} {path} is neither a spec operation nor a known addition"
                if resp.status_code == 200:
                    validate_schema(module_of(path), "ModificationResponse", resp.json())
                counts["not_in_spec"] += 1
                continue
            if str(resp.status_code) not in match[2]:
                # an injected 429/5xx, a 401/403 from the gateway: the spec documents none of them,
                # but the request itself must still be one the spec accepts
                from tests.contract.servicetitan_spec import openapi, to_spec_request
                openapi(module_of(path)).validate_request(to_spec_request(req))
                counts["undocumented_status"] += 1
                continue
            verdict = validate_exchange(resp)
            for where, message in verdict.response:
                assert where.split(".")[-1] in NULLABLE_ONE_OF, (where, message)
            counts["spec"] += 1
        return counts


# ====================================================================================== emulator
class Emulator:
    """A running emulator: its URLs and the sandbox admin calls."""

    def __init__(self, server, base: str):
        self.server, self.base = server, base
        self.auth_url = f"{base}/connect/token"
        self.http = requests.Session()

    def log(self) -> list[dict]:
        return self.http.get(f"{self.base}/_sandbox/requests", timeout=30).json()

    def token_requests(self) -> list[dict]:
        return [e for e in self.log() if e["path"] == "/connect/token"]

    def api_requests(self) -> list[dict]:
        return [e for e in self.log() if "/v2/tenant/" in e["path"]]

    def state(self) -> dict:
        return self.http.get(f"{self.base}/_sandbox/state", params={"requests": 0}, timeout=30).json()

    def fault(self, **spec) -> None:
        r = self.http.post(f"{self.base}/_sandbox/faults", json=spec, timeout=10)
        assert r.status_code == 201, r.text

    def seed(self, **spec) -> dict:
        r = self.http.post(f"{self.base}/_sandbox/seed", json=spec, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def config(self, **values) -> None:
        r = self.http.post(f"{self.base}/_sandbox/config", json=values, timeout=10)
        assert r.status_code == 200, r.text


@pytest.fixture
def emulator():
    """Factory ``start(config=None) -> Emulator``; every server is shut down afterwards."""
    servers = []

    def start(config: dict | None = None) -> Emulator:
        server, base = serve("127.0.0.1", 0, config, env="test")
        servers.append(server)
        return Emulator(server, base)

    yield start
    for s in servers:
        s.shutdown()


@pytest.fixture
def emu(emulator) -> Emulator:
    return emulator()


@pytest.fixture
def exchanges():
    """The recorder of every client made by ``connect``; validated against the spec at the end."""
    rec = Exchanges()
    yield rec
    rec.check()


@pytest.fixture
def connect(exchanges):
    """Factory ``connect(emu, store=None, **kw) -> ServiceTitanClient`` (demo credentials; its
    exchanges are recorded and spec-checked)."""
    def make(emu: Emulator, store=None, *, tenant=DEMO_TENANT, app_key=DEMO_APP_KEY,
             client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, **kw) -> ServiceTitanClient:
        client = ServiceTitanClient(emu.base, emu.auth_url, tenant, app_key, client_id, client_secret,
                                    store if store is not None else InMemoryTokenStore(), **kw)
        client.session.hooks["response"].append(exchanges.hook)
        return client
    return make


def refs(client: ServiceTitanClient) -> dict:
    """Ids of the emulator's default seed, read through the client."""
    ping = client.ping()
    return {"vendor": {v["name"]: v["id"] for v in client.list_vendors()},
            "sku": {m["code"]: m["id"] for m in client.list_materials()},
            "bu": ping.business_units[0]["id"], "type": ping.purchase_order_types[0]["id"],
            "warehouse": ping.inventory_locations[0]["id"]}


def po_request(r: dict, **extra) -> dict:
    """A TallyPrime purchase voucher as a PO: 10 copper pipes, 4 filters, tax and shipping."""
    values = dict(
        vendor_id=r["vendor"]["Ferguson Enterprises"], type_id=r["type"], business_unit_id=r["bu"],
        inventory_location_id=r["warehouse"], ship_to_description="Main Warehouse",
        ship_to_address=ADDRESS, date=dt.date(2026, 3, 2), required_on=dt.date(2026, 3, 9),
        tax=Decimal("3.25"), shipping=Decimal("10.00"), vendor_invoice_number="TALLY-PV-0001",
        memo="Tally purchase voucher PV/0001",
        items=[PurchaseOrderLine(sku_id=r["sku"]["CU-PIPE-075"], quantity=Decimal(10),
                                 cost=Decimal("38.50"), description="Copper pipe 3/4in",
                                 vendor_part_number="LH04010"),
               PurchaseOrderLine(sku_id=r["sku"]["FLT-16252"], quantity=Decimal(4),
                                 cost=Decimal("9.75"), description="Air filter 16x25x2",
                                 vendor_part_number="F11-16252")])
    values.update(extra)
    return wire.purchase_order_request(**values)


def app_key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# ====================================================================================== auth
def test_one_token_serves_many_calls_and_every_call_carries_app_key_and_bearer(emu, connect, exchanges):
    store = InMemoryTokenStore()
    client = connect(emu, store)
    before = time.time()
    ping = client.ping()
    assert ping.tenant == DEMO_TENANT
    assert [b["name"] for b in ping.business_units] == ["HVAC Service"]
    assert [t["name"] for t in ping.purchase_order_types] == ["Standard"]
    assert [w["name"] for w in ping.inventory_locations] == ["Main Warehouse"]
    client.list_vendors()
    client.list_materials()
    client.list_trucks()

    (token_call,) = emu.token_requests()                         # one token for every call
    assert token_call["method"] == "POST" and token_call["status"] == 200
    assert token_call["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(token_call["body"])
    assert form == {"grant_type": ["client_credentials"], "client_id": [DEMO_CLIENT_ID],
                    "client_secret": ["***"]}                    # the emulator masks the secret
    api = emu.api_requests()
    assert len(api) == 6
    for entry in api:
        assert entry["headers"]["St-App-Key"] == f"sha256:{app_key_digest(DEMO_APP_KEY)}"
        assert entry["headers"]["Authorization"] == "Bearer ***"
        assert re.match(rf"^/(inventory|pricebook|settings)/v2/tenant/{DEMO_TENANT}/", entry["path"])
        assert entry["status"] == 200
    # the token is kept in the store with the lifetime the emulator gave (expires_in 900)
    assert store.saves == 1
    assert before + 900 - 5 <= store.load().expires_at <= time.time() + 900
    assert store.load().refresh_token is None                      # client credentials: none
    assert exchanges.check()["spec"] == 6


def test_the_returned_lifetime_is_honoured_with_the_configured_margin(emulator, connect):
    emu = emulator({"token_ttl": 30})                              # not 900: never assumed
    eager = connect(emu, refresh_margin=45.0)                      # 30 s < margin: always renew
    for _ in range(3):
        eager.list_po_types()
    assert len(emu.token_requests()) == 3
    assert 25 <= eager.token_store.load().expires_at - time.time() <= 30

    relaxed = connect(emu, refresh_margin=10.0)                    # valid for 20 s more: reuse
    for _ in range(3):
        relaxed.list_po_types()
    assert len(emu.token_requests()) == 4
    assert all(e["status"] == 200 for e in emu.api_requests())    # renewed before, never a 401


def test_an_expired_token_is_renewed_once_on_the_401(emu, connect):
    store = InMemoryTokenStore()
    client = connect(emu, store)
    client.list_po_types()
    first = store.load().access_token
    emu.fault(expire_tokens=True)                                  # the client still thinks it valid
    assert [t["name"] for t in client.list_po_types()] == ["Standard"]
    assert len(emu.token_requests()) == 2                          # exactly one extra token request
    assert [e["status"] for e in emu.api_requests()] == [200, 401, 200]
    assert store.saves == 2 and store.load().access_token != first


def test_clients_sharing_a_store_share_the_token(emu, connect):
    store = InMemoryTokenStore()
    a, b = connect(emu, store), connect(emu, store)
    a.list_po_types()
    b.list_po_types()
    b.list_inventory_locations()
    assert len(emu.token_requests()) == 1


def test_invalid_client_is_an_auth_error_that_names_it(emu, connect):
    client = connect(emu, client_secret="cs1.wrong")
    with pytest.raises(AuthError) as err:
        client.list_po_types()
    assert "invalid_client" in str(err.value) and err.value.status == 400
    assert not err.value.retryable
    assert emu.api_requests() == []                                 # no API call without a token
    assert client.token_store.saves == 0


def test_a_401_that_survives_the_renewal_is_an_auth_error(emu, connect):
    client = connect(emu, app_key="ak1.not-this-application")
    with pytest.raises(AuthError) as err:
        client.list_po_types()
    assert err.value.status == 401 and "ST-App-Key" in (err.value.detail or "")
    assert [e["status"] for e in emu.api_requests()] == [401, 401]  # renewed once, then gave up
    assert len(emu.token_requests()) == 2


def test_a_token_of_another_tenant_is_refused_with_403(emulator, connect):
    emu = emulator({"tenants": {DEMO_TENANT: {"name": "Demo", "client_id": DEMO_CLIENT_ID,
                                              "client_secret": DEMO_CLIENT_SECRET},
                                OTHER_TENANT: {"name": "Other", "client_id": "cid.other",
                                               "client_secret": "cs1.other"}}})
    client = connect(emu, tenant=OTHER_TENANT)                     # demo tenant's credentials
    with pytest.raises(AuthError) as err:
        client.list_po_types()
    assert err.value.status == 403 and "not authorised" in str(err.value)
    assert connect(emu, tenant=OTHER_TENANT, client_id="cid.other",
                   client_secret="cs1.other").list_po_types()[0]["name"] == "Standard"


# ====================================================================================== errors
def test_429_is_rate_limited_with_retry_after_and_the_hook_is_called(emu, connect):
    seen = []
    client = connect(emu, on_rate_limited=seen.append)
    client.list_po_types()
    emu.fault(status=429, retry_after=3, path="/purchase-order-types")
    with pytest.raises(RateLimitedError) as err:
        client.list_po_types()
    assert err.value.retry_after == 3.0 and err.value.status == 429 and err.value.retryable
    assert seen == [3.0]
    assert client.list_po_types()[0]["name"] == "Standard"         # the next call goes through


def test_5xx_is_transient(emu, connect):
    client = connect(emu)
    emu.fault(status=503, path="/warehouses")
    with pytest.raises(TransientApiError) as err:
        client.list_inventory_locations()
    assert err.value.status == 503 and err.value.retryable


def test_a_validation_400_is_rejected_with_lines_naming_the_field(emu, connect):
    client = connect(emu)
    r = refs(client)
    bad = po_request(r, vendor_id=4242)
    with pytest.raises(RejectedError) as err:
        client.create_purchase_order(bad)
    assert not isinstance(err.value, NotFound) and err.value.status == 400
    assert err.value.lines == ["vendorId: Vendor with id 4242 was not found."]
    assert "One or more validation errors occurred." in str(err.value)
    with pytest.raises(RejectedError) as err:
        client.create_vendor(wire.vendor_request(name="Ferguson Enterprises"))  # a duplicate
    assert err.value.lines[0].startswith("name: ")


def test_404_is_not_found(emu, connect):
    client = connect(emu)
    with pytest.raises(NotFound) as err:
        client.get_purchase_order(5)
    assert isinstance(err.value, RejectedError) and err.value.status == 404
    assert err.value.lines == ["Purchase order with id 5 was not found."]
    with pytest.raises(NotFound):
        client.update_purchase_order(5, wire.purchase_order_update_request(memo="x"))


# ====================================================================================== paging
def test_pagination_reads_every_page(emu, connect):
    client = connect(emu, page_size=2)
    r = refs(client)
    new = [client.create_material(wire.material_request(
        code=f"TALLY-SKU-{n}", description=f"Item {n} from Tally", cost=Decimal("12.50"),
        primary_vendor_id=r["vendor"]["Johnstone Supply"], vendor_part=f"JS-{n}")) for n in range(3)]
    start = len(emu.log())
    codes = [m["code"] for m in client.list_materials()]
    assert codes == ["CU-PIPE-075", "FLT-16252", "CAP-45-5", "TALLY-SKU-0", "TALLY-SKU-1", "TALLY-SKU-2"]
    pages = [e["query"] for e in emu.log()[start:] if e["path"].endswith("/materials")]
    assert [(q["page"], q["pageSize"], q["active"]) for q in pages] == [
        (["1"], ["2"], ["Any"]), (["2"], ["2"], ["Any"]), (["3"], ["2"], ["Any"])]
    got = client.get_material(new[0])
    assert got["cost"] == Decimal("12.5") and got["primaryVendor"]["vendorPart"] == "JS-0"
    assert [m["id"] for m in client.list_materials(ids=new[1:])] == new[1:]


def test_more_than_50_ids_are_asked_for_in_chunks(emu, connect):
    client = connect(emu)
    r = refs(client)
    po_id = client.create_purchase_order(po_request(r))
    start = len(emu.log())
    found = client.list_purchase_orders(ids=[*range(1, 61), po_id])
    assert [p["id"] for p in found] == [po_id]
    calls = [e["query"]["ids"][0].split(",") for e in emu.log()[start:] if e["path"].endswith("/purchase-orders")]
    assert [len(c) for c in calls] == [50, 11]
    assert client.list_purchase_orders(ids=[]) == []                # no call at all
    assert len(emu.log()) == start + 2


def test_inventory_bills_page_through_a_plain_array(emu, connect):
    client = connect(emu, page_size=1)
    r = refs(client)
    po = client.get_purchase_order(client.create_purchase_order(po_request(r)))
    pipe, filt = po["items"]
    for number, item in (("INV-A", pipe), ("INV-B", filt)):
        client.create_receipt(wire.receipt_request(
            purchase_order_id=po["id"], date_received=dt.date(2026, 3, 5), vendor_document_number=number,
            items=[ReceiptLine(sku_id=item["skuId"], quantity=Decimal(1), cost=item["cost"],
                               purchase_order_item_id=item["id"])]))
    start = len(emu.log())
    bills = client.list_inventory_bills(purchase_order_number=po["number"], sync_statuses=["Pending"])
    assert [b["referenceNumber"] for b in bills] == ["INV-A", "INV-B"]
    pages = [e["query"]["page"] for e in emu.log()[start:] if e["path"].endswith("/inventory-bills")]
    assert pages == [["1"], ["2"], ["3"]]                            # the third comes back empty
    assert bills[0]["billAmount"] == Decimal("38.50") and isinstance(bills[0]["billAmount"], Decimal)
    assert bills[0]["items"][0]["quantity"] == Decimal(1)


# ====================================================================================== purchase orders
def test_purchase_order_create_update_cancel(emu, connect):
    client = connect(emu)
    r = refs(client)
    po_id = client.create_purchase_order(po_request(r))
    assert isinstance(po_id, int) and po_id > 2 ** 31                # int64 ids
    po = client.get_purchase_order(po_id)
    assert po["status"] == "Pending" and po["vendorDocumentNumber"] == "TALLY-PV-0001"
    assert po["total"] == Decimal("10") * Decimal("38.50") + 4 * Decimal("9.75") + Decimal("13.25")
    assert all(isinstance(po[k], Decimal) for k in ("total", "tax", "shipping"))
    assert all(isinstance(i[k], Decimal) for i in po["items"] for k in ("quantity", "cost", "total"))
    assert po["date"].startswith("2026-03-02T00:00:00")

    pipe, filt = po["items"]
    # resend the items to keep (the filter is left out, so ServiceTitan marks it inactive)
    client.update_purchase_order(po_id, wire.purchase_order_update_request(memo="revised", items=[
        PurchaseOrderLine(id=pipe["id"], sku_id=pipe["skuId"], quantity=Decimal(12), cost=pipe["cost"],
                          description=pipe["description"], vendor_part_number=pipe["vendorPartNumber"]),
        PurchaseOrderLine(sku_id=r["sku"]["CAP-45-5"], quantity=Decimal(2), cost=Decimal("14.20"),
                          description="Run capacitor", vendor_part_number="C45-5R")]))
    got = client.get_purchase_order(po_id)
    assert {i["skuCode"]: (i["status"], i["quantity"]) for i in got["items"]} == {
        "CU-PIPE-075": ("Active", Decimal(12)), "FLT-16252": ("Inactive", Decimal(4)),
        "CAP-45-5": ("Active", Decimal(2))}
    assert got["summary"] == "revised"
    assert got["total"] == 12 * Decimal("38.50") + 2 * Decimal("14.20") + Decimal("13.25")

    assert [p["id"] for p in client.list_purchase_orders(number=po["number"])] == [po_id]
    assert [p["id"] for p in client.list_purchase_orders(
        status="Pending", modified_on_or_after=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))] == [po_id]
    assert client.cancel_purchase_order(po_id, "VendorIssue") == po_id
    assert client.get_purchase_order(po_id)["status"] == "Canceled"
    assert [p["id"] for p in client.list_purchase_orders(status="Canceled")] == [po_id]
    with pytest.raises(RejectedError) as err:
        client.cancel_purchase_order(po_id, "Duplicate")
    assert err.value.lines[0].startswith("id: ")
    with pytest.raises(ValueError):
        client.cancel_purchase_order(po_id, "Because")               # refused before sending


# ====================================================================================== receipts, returns
def test_receipt_create_find_by_vendor_invoice_number_and_cancel(emu, connect):
    client = connect(emu)
    r = refs(client)
    po = client.get_purchase_order(client.create_purchase_order(po_request(r)))
    pipe, _filt = po["items"]
    receipt_id = client.create_receipt(wire.receipt_request(
        purchase_order_id=po["id"], date_received=dt.date(2026, 3, 5), tax=Decimal("3.25"),
        shipping=Decimal("10.00"), vendor_document_number="TALLY-PV-0001", memo="received from Tally",
        items=[ReceiptLine(sku_id=pipe["skuId"], quantity=Decimal(6), cost=Decimal("38.50"),
                           purchase_order_item_id=pipe["id"])]))
    (rec,) = client.list_receipts(vendor_invoice_number="TALLY-PV-0001", purchase_order_ids=[po["id"]])
    assert rec["id"] == receipt_id and rec["purchaseOrderId"] == po["id"]
    assert rec["receiptAmount"] == Decimal("244.25") and isinstance(rec["receiptAmount"], Decimal)
    assert rec["items"][0]["quantity"] == Decimal(6)
    assert client.list_receipts(vendor_invoice_number="TALLY-PV-9999") == []
    po_now = client.get_purchase_order(po["id"])
    assert po_now["status"] == "PartiallyReceived" and po_now["items"][0]["quantityReceived"] == 6
    (bill,) = client.list_inventory_bills(purchase_order_number=po["number"])
    assert bill["id"] == rec["billId"] and bill["billAmount"] == Decimal("244.25")

    with pytest.raises(RejectedError) as err:                      # more than is outstanding
        client.create_receipt(wire.receipt_request(
            purchase_order_id=po["id"], date_received=dt.date(2026, 3, 6),
            items=[ReceiptLine(sku_id=pipe["skuId"], quantity=Decimal(5), cost=Decimal("38.50"),
                               purchase_order_item_id=pipe["id"])]))
    assert err.value.lines[0].startswith("items[0].quantity: ")

    assert client.cancel_receipt(receipt_id, "Duplicate", memo="entered twice") == receipt_id
    assert client.list_receipts(vendor_invoice_number="TALLY-PV-0001") == []   # active only
    (gone,) = client.list_receipts(vendor_invoice_number="TALLY-PV-0001", active=None)
    assert gone["id"] == receipt_id and gone["active"] is False
    assert client.list_receipts(vendor_invoice_number="TALLY-PV-0001", active=False)[0]["id"] == receipt_id
    assert client.list_inventory_bills(purchase_order_number=po["number"]) == []
    assert client.get_purchase_order(po["id"])["status"] == "Pending"


def test_return_create(emu, connect):
    client = connect(emu)
    r = refs(client)
    po = client.get_purchase_order(client.create_purchase_order(po_request(r)))
    pipe, _ = po["items"]
    client.create_receipt(wire.receipt_request(
        purchase_order_id=po["id"], date_received=dt.date(2026, 3, 5), vendor_document_number="PV-7",
        items=[ReceiptLine(sku_id=pipe["skuId"], quantity=Decimal(10), cost=Decimal("38.50"),
                           purchase_order_item_id=pipe["id"])]))
    return_id = client.create_return(wire.return_request(
        vendor_id=po["vendorId"], business_unit_id=r["bu"], inventory_location_id=r["warehouse"],
        return_date=dt.datetime(2026, 3, 8, 14, 30, tzinfo=dt.timezone.utc), purchase_order_id=po["id"],
        reference_number="TALLY-DN-0001", memo="damaged", tax=Decimal("0.65"), shipping=Decimal(0),
        items=[ReturnLine(sku_id=pipe["skuId"], quantity=Decimal(2), cost=Decimal("38.50"))]))
    (ret,) = client.list_returns(reference_number="TALLY-DN-0001")
    assert ret["id"] == return_id and ret["vendorId"] == po["vendorId"]
    assert ret["returnAmount"] == Decimal("77.65") and ret["returnDate"].startswith("2026-03-08T14:30:00")
    assert client.list_returns(purchase_order_id=po["id"])[0]["id"] == return_id
    with pytest.raises(RejectedError) as err:                      # more than is on hand
        client.create_return(wire.return_request(
            vendor_id=po["vendorId"], business_unit_id=r["bu"], inventory_location_id=r["warehouse"],
            return_date=dt.date(2026, 3, 9),
            items=[ReturnLine(sku_id=pipe["skuId"], quantity=Decimal(100), cost=Decimal("38.50"))]))
    assert err.value.lines[0].startswith("items: Not enough stock")


def test_adjustments_and_transfers_are_listed(emu, connect):
    client = connect(emu)
    r = refs(client)
    emu.seed(adjustments=[{"location": "Main Warehouse", "memo": "count", "referenceNumber": "CNT-1",
                           "items": [{"code": "CAP-45-5", "quantity": 6}]}],
             transfers=[{"from": "Main Warehouse", "to": "Truck 101", "referenceNumber": "TR-REF",
                         "items": [{"code": "CAP-45-5", "quantity": 2}]}])
    (adj,) = client.list_adjustments(inventory_location_ids=[r["warehouse"]])
    assert adj["referenceNumber"] == "CNT-1" and adj["items"][0]["quantity"] == Decimal(6)
    assert client.list_adjustments(adjustment_types="Other") == []
    truck = client.list_trucks()[0]["id"]
    (tr,) = client.list_transfers(to_location_ids=[truck])
    assert tr["fromLocationId"] == r["warehouse"] and tr["items"][0]["quantity"] == Decimal(2)
    assert client.list_transfers(reference_number="nope") == []


# ====================================================================================== budget
def test_requests_draw_from_the_redis_budget_of_app_key_and_tenant(emu, connect, redis_server):
    rds = redis_lib.Redis.from_url(redis_server.url)
    budget = budget_for(rds, DEMO_APP_KEY, DEMO_TENANT)
    budget.reset()
    assert budget.account == servicetitan_account(DEMO_APP_KEY, DEMO_TENANT)
    store = InMemoryTokenStore()
    clients = [connect(emu, store, **budget_hooks(budget, max_wait=5.0)) for _ in range(6)]
    clients[0].list_po_types()                                      # one token for all of them
    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda n: clients[n % 6].list_po_types(), range(90)))
    elapsed = time.monotonic() - started

    rate = emu.state()["rate"]
    (bucket,) = rate["buckets"]
    assert bucket == budget.account                                 # the emulator counts the same bucket
    assert rate["buckets"][bucket]["rejected"] == 0                 # never a 429
    assert rate["buckets"][bucket]["admitted"] == 91
    # our budget admits 58 per 1.05 s (60/s less the 2 % margin, 50 ms guard); arrival times at
    # the emulator spread a little around admission times, which the margin absorbs: the
    # vendor's 60 per second is never exceeded
    assert rate["max_admitted_in_any_window"] <= 60
    assert elapsed >= 1.0                                           # 91 > 58: some had to wait
    # the newest window of the admission log holds at most the budget's 58 (older entries
    # are pruned lazily, so the whole key may hold a few more)
    newest = rds.zrange(budget.key, -1, -1, withscores=True)[0][1]
    assert 0 < rds.zcount(budget.key, newest - budget.window_ms + 1, "+inf") <= 58
    assert len(emu.token_requests()) == 1                           # token calls are not budgeted


def test_a_vendor_429_holds_the_redis_budget_back(emu, connect, redis_server):
    rds = redis_lib.Redis.from_url(redis_server.url)
    budget = budget_for(rds, DEMO_APP_KEY, DEMO_TENANT)
    budget.reset()
    client = connect(emu, **budget_hooks(budget, max_wait=0.0))
    client.list_po_types()
    emu.fault(status=429, retry_after=2)
    with pytest.raises(RateLimitedError) as err:
        client.list_po_types()
    assert err.value.status == 429 and err.value.retry_after == 2.0
    assert 1.0 < budget.blocked_for() <= 2.0                        # Retry-After fed back
    sent = len(emu.api_requests())
    with pytest.raises(RateLimitedError) as err:                    # refused by our own budget
        client.list_po_types()
    assert err.value.status is None and err.value.retry_after > 1.0
    assert len(emu.api_requests()) == sent                          # nothing reached ServiceTitan
    budget.reset()


# ====================================================================================== builders
def test_request_builders_are_exact_and_strict():
    body = wire.purchase_order_request(
        vendor_id=1, type_id=2, business_unit_id=3, inventory_location_id=4, ship_to_description="WH",
        ship_to_address=ADDRESS, date=dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        required_on="2026-03-09T00:00:00Z", tax=Decimal("0.10"), shipping=0,
        items=[PurchaseOrderLine(sku_id=9, quantity=Decimal("1.5"), cost=Decimal("1234567.89"),
                                 description="x")])
    assert body["date"] == "2026-03-02T04:00:00Z" and "jobId" not in body and "memo" not in body
    text = wire.dumps(body)
    assert '"tax":0.10' in text and '"cost":1234567.89' in text and '"quantity":1.5' in text
    assert validate_schema("inventory", "Inventory.V2.CreatePurchaseOrderRequest", wire.loads(text)) == []
    with pytest.raises(TypeError):
        wire.purchase_order_request(**{**_po_args(), "tax": 0.1})
    with pytest.raises(ValueError):
        wire.purchase_order_request(**{**_po_args(), "items": []})
    with pytest.raises(ValueError):
        PurchaseOrderLine(sku_id=9, quantity=Decimal(0), cost=Decimal(1), description="x").to_json()
    with pytest.raises(TypeError):
        wire.dumps({"cost": 1.5})
    update = wire.purchase_order_update_request(items=[
        PurchaseOrderLine(sku_id=9, quantity=Decimal(1), cost=Decimal(1), description="x")])
    assert update == {"items": [{"id": 0, "skuId": 9, "description": "x", "vendorPartNumber": "",
                                 "quantity": Decimal(1), "cost": Decimal(1)}]}
    assert validate_schema("inventory", "Inventory.V2.UpdatePurchaseOrderRequest", update) == []
    with pytest.raises(ValueError):
        wire.purchase_order_update_request(ship_to_address=ADDRESS)
    with pytest.raises(ValueError):
        wire.purchase_order_update_request()
    assert wire.cancellation_request("Other") == {"canceledReason": "Other"}
    with pytest.raises(ValueError):
        wire.cancellation_request("other")
    assert validate_schema("inventory", "Inventory.V2.CreateVendorRequest",
                           wire.loads(wire.dumps(wire.vendor_request(name="V", tax_rate=Decimal("0.07"))))) == []
    assert validate_schema("pricebook", "Pricebook.V2.MaterialCreateRequest", wire.loads(wire.dumps(
        wire.material_request(code="C", description="D", cost=Decimal("1.25"), primary_vendor_id=7)))) == []
    assert wire.with_decimals({"billAmount": "12.30", "items": [{"cost": 4, "name": "12"}], "id": 5}) == \
        {"billAmount": Decimal("12.30"), "items": [{"cost": Decimal(4), "name": "12"}], "id": 5}


def _po_args() -> dict:
    return dict(vendor_id=1, type_id=2, business_unit_id=3, inventory_location_id=4,
                ship_to_description="WH", ship_to_address=ADDRESS, date=dt.date(2026, 3, 2),
                required_on=dt.date(2026, 3, 9),
                items=[PurchaseOrderLine(sku_id=9, quantity=Decimal(1), cost=Decimal(1), description="x")])
