"""The ServiceTitan emulator (sandbox/servicetitan) over real HTTP.

Contract part: for every spec-covered endpoint it serves, the request as ``requests`` sent it
and the emulator's answer are validated against the public v2 spec operation
(:mod:`tests.contract.servicetitan_spec`; a missing spec fails). Endpoints the spec snapshot
lacks (``POST receipts``, ``PATCH receipts/{id}/cancellation``,
``PATCH purchase-orders/{id}/cancellation``, ``POST returns``; ServiceTitan v2 inventory API, https://developer.servicetitan.io/apis/ (newer than the spec snapshot)) have their
``{"id"}`` answers checked against ``ModificationResponse`` and their effects read back through
spec-covered lists. Behaviour part: credentials, tenant, rate limit, paging, PO updates,
receiving, cancellations, returns, validation bodies, faults and the sandbox state.
"""
from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

from sandbox import ProductionRefused
from sandbox.servicetitan import (DEMO_APP_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT,
                                  serve)
from sandbox.servicetitan.world import FIRST_ID
from tests.contract.servicetitan_spec import validate_exchange, validate_schema

OTHER_TENANT = 2_000_777_001
OTHER_CLIENT = ("cid.other-tenant", "cs1.other-secret")
APP_GUID = "6f1f9d58-2a8e-4c59-9c1e-0d7d2b6b1a11"
# Properties written {oneOf: [$ref], nullable: true} that the emulator may answer null
# (tolerated by servicetitan_spec; see its docstring).
NULLABLE_ONE_OF = {"shipTo", "generalLedgerAccount", "costOfSaleAccount", "assetAccount",
                   "primarySubAccount", "primaryVendor", "batch"}
ADDRESS = {"street": "1 Job Site Rd", "unit": "", "city": "Austin", "state": "TX", "zip": "78701",
           "country": "USA"}


class ST:
    """A minimal ServiceTitan client over ``requests``, the way a real one sends calls."""

    def __init__(self, base: str, tenant: int = DEMO_TENANT, app_key: str = DEMO_APP_KEY,
                 client=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)):
        self.base, self.tenant, self.app_key, self.client = base, tenant, app_key, client
        self.http = requests.Session()
        self._token = None

    # --- auth host
    def token_response(self, client_id=None, secret=None, grant="client_credentials"):
        return self.http.post(f"{self.base}/connect/token", timeout=10, data={
            "grant_type": grant, "client_id": client_id or self.client[0],
            "client_secret": secret or self.client[1]})

    def token(self) -> str:
        if self._token is None:
            r = self.token_response()
            assert r.status_code == 200, r.text
            self._token = r.json()["access_token"]
        return self._token

    # --- API host
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token()}", "ST-App-Key": self.app_key}

    def url(self, module: str, rest: str, tenant: int | None = None) -> str:
        return f"{self.base}/{module}/v2/tenant/{tenant or self.tenant}/{rest}"

    def call(self, method: str, module: str, rest: str, *, params=None, json=None,
             headers=None, tenant=None):
        return self.http.request(method, self.url(module, rest, tenant), params=params, json=json,
                                 headers=self.headers() if headers is None else headers, timeout=10)

    def get(self, module, rest, **kw):
        return self.call("GET", module, rest, **kw)

    def post(self, module, rest, body, **kw):
        return self.call("POST", module, rest, json=body, **kw)

    def patch(self, module, rest, body=None, **kw):
        return self.call("PATCH", module, rest, json=body, **kw)

    # --- sandbox
    def state(self, **params) -> dict:
        return self.http.get(f"{self.base}/_sandbox/state", params=params, timeout=30).json()

    def tenant_state(self) -> dict:
        return self.state(requests=0)["tenants"][str(self.tenant)]

    def seed(self, **spec) -> dict:
        r = self.http.post(f"{self.base}/_sandbox/seed", json=spec, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def fault(self, **spec) -> None:
        r = self.http.post(f"{self.base}/_sandbox/faults", json=spec, timeout=10)
        assert r.status_code == 201, r.text

    def config(self, **values) -> None:
        r = self.http.post(f"{self.base}/_sandbox/config", json=values, timeout=10)
        assert r.status_code == 200, r.text


@pytest.fixture
def start():
    """Factory: ``start(config=None) -> ST`` over a fresh emulator; all stopped afterwards."""
    servers = []

    def _start(config: dict | None = None) -> ST:
        server, base = serve("127.0.0.1", 0, config, env="test")
        servers.append(server)
        return ST(base)

    yield _start
    for s in servers:
        s.shutdown()


@pytest.fixture
def st(start) -> ST:
    return start()


def ok(resp, status: int = 200, *, spec_rejects: bool = False):
    """Assert the status, validate the exchange against the spec (``spec_rejects``: the request
    is one the spec itself calls invalid), return the JSON body."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    verdict = validate_exchange(resp, request_valid=not spec_rejects)
    for path, message in verdict.response:   # the one tolerated kind, on these properties only
        assert path.split(".")[-1] in NULLABLE_ONE_OF, (path, message)
    return resp.json() if resp.content else None


def refs(st: ST) -> dict:
    """Ids of the default seed: vendors and materials by name/code, the BU, PO type, locations."""
    t = st.tenant_state()
    return {"vendor": {v["name"]: v["id"] for v in t["vendors"]},
            "sku": {m["code"]: m["id"] for m in t["materials"]},
            "bu": t["business_units"][0]["id"], "type": t["purchase_order_types"][0]["id"],
            "warehouse": t["warehouses"][0]["id"], "truck": t["trucks"][0]["id"]}


def po_body(r: dict, items=None, **extra) -> dict:
    """A CreatePurchaseOrderRequest with every required property."""
    body = {"vendorId": r["vendor"]["Ferguson Enterprises"], "typeId": r["type"],
            "businessUnitId": r["bu"], "inventoryLocationId": r["warehouse"],
            "shipTo": {"description": "Main Warehouse", "address": ADDRESS},
            "impactsTechnicianPayroll": False, "date": "2026-03-02T00:00:00Z",
            "requiredOn": "2026-03-09T00:00:00Z", "tax": 3.25, "shipping": 10,
            "vendorInvoiceNumber": "TALLY-PV-0001", "memo": "Tally purchase voucher PV/0001",
            "items": items or [
                {"skuId": r["sku"]["CU-PIPE-075"], "description": "Copper pipe 3/4in",
                 "vendorPartNumber": "LH04010", "quantity": 10, "cost": 38.5},
                {"skuId": r["sku"]["FLT-16252"], "description": "Air filter 16x25x2",
                 "vendorPartNumber": "F11-16252", "quantity": 4, "cost": 9.75}]}
    body.update(extra)
    return body


def create_po(st: ST, r: dict, **extra) -> dict:
    created = ok(st.post("inventory", "purchase-orders", po_body(r, **extra)))
    return ok(st.get("inventory", f"purchase-orders/{created['id']}"))


def receive(st: ST, po: dict, lines, number="TALLY-PV-0001", status=200):
    """POST receipts (not in the spec snapshot; newer v2 operation) for ``lines`` = [(po item, qty)]."""
    body = {"purchaseOrderId": po["id"], "dateReceived": "2026-03-05T00:00:00Z", "tax": 3.25,
            "shipping": 10, "vendorDocumentNumber": number, "memo": "received from Tally",
            "items": [{"skuId": i["skuId"], "quantity": q, "cost": i["cost"],
                       "purchaseOrderItemId": i["id"]} for i, q in lines]}
    resp = st.post("inventory", "receipts", body)
    assert resp.status_code == status, resp.text
    if status == 200:
        validate_schema("inventory", "ModificationResponse", resp.json())
    return resp.json()


def on_hand(st: ST, code: str, location: int) -> Decimal:
    for row in st.tenant_state()["on_hand"]:
        if row["code"] == code and row["inventoryLocationId"] == location:
            return Decimal(str(row["quantity"]))
    return Decimal(0)


# ====================================================================================== contract
# Routes the emulator serves that the spec snapshot lacks (ServiceTitan v2 inventory API, https://developer.servicetitan.io/apis/ (newer than the spec snapshot)).
NOT_IN_SPEC = {("POST", "/inventory/v2/tenant/{tenant}/receipts"),
               ("PATCH", "/inventory/v2/tenant/{tenant}/receipts/{id}/cancellation"),
               ("PATCH", "/inventory/v2/tenant/{tenant}/purchase-orders/{id}/cancellation"),
               ("POST", "/inventory/v2/tenant/{tenant}/returns")}


def test_every_served_route_is_a_spec_operation_or_a_listed_assumption():
    from sandbox.servicetitan import create_app
    from tests.contract.servicetitan_spec import SPEC_FILES, spec_dict

    spec_ops = {(method.upper(), path) for module in SPEC_FILES
                for path, item in spec_dict(module)["paths"].items()
                for method in item if method in ("get", "post", "patch", "put", "delete")}
    served = set()
    for rule in create_app().url_map.iter_rules():
        if "/v2/tenant/" not in rule.rule:
            continue
        path = rule.rule.replace("<int:tenant>", "{tenant}")
        path = re.sub(r"<int:\w+_id>", "{id}", path)
        served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert served - spec_ops == NOT_IN_SPEC
    assert len(served & spec_ops) == 21      # each of them is exercised by the tests below


def test_vendors_follow_the_spec(st):
    r = refs(st)
    page = ok(st.get("inventory", "vendors", params={"includeTotal": "true"}))
    assert page["totalCount"] == 2 and {v["name"] for v in page["data"]} == set(r["vendor"])
    assert all(v["id"] > 2 ** 31 for v in page["data"])            # int64 ids beyond int32
    vid = r["vendor"]["Johnstone Supply"]
    assert ok(st.get("inventory", f"vendors/{vid}"))["name"] == "Johnstone Supply"
    assert ok(st.get("inventory", "vendors", params={"id": vid}))["data"][0]["id"] == vid

    body = {"name": "Tally Vendor & Sons", "active": True, "isTruckReplenishment": False,
            "taxRate": 0.07, "restrictedMobileCreation": False, "address": ADDRESS,
            "email": "ap@tally-vendor.example", "deliveryOption": "EmailAsPdf",
            "externalData": {"applicationGuid": APP_GUID,
                             "externalData": [{"key": "tallyLedger", "value": "Tally Vendor & Sons"}]}}
    new_id = ok(st.post("inventory", "vendors", body))["id"]
    got = ok(st.get("inventory", f"vendors/{new_id}"))
    assert got["defaultTaxRate"] == 0.07 and got["contactInfo"]["email"] == "ap@tally-vendor.example"
    assert got["externalData"] == []                                  # no guid asked for
    got = ok(st.get("inventory", f"vendors/{new_id}", params={"externalDataApplicationGuid": APP_GUID}))
    assert got["externalData"] == [{"key": "tallyLedger", "value": "Tally Vendor & Sons"}]

    # PATCH: only given properties change; externalData is replaced for its guid (newer v2 inventory API, see sandbox/servicetitan/common.py)
    ok(st.patch("inventory", f"vendors/{new_id}", {"memo": "from Tally", "externalData": {
        "applicationGuid": APP_GUID, "externalData": [{"key": "tallyGuid", "value": "abc"}]}}))
    got = ok(st.get("inventory", f"vendors/{new_id}", params={"externalDataApplicationGuid": APP_GUID}))
    assert got["memo"] == "from Tally" and got["name"] == body["name"]
    assert got["externalData"] == [{"key": "tallyGuid", "value": "abc"}]

    assert ok(st.get("inventory", "vendors/123"), 404)["status"] == 404
    assert ok(st.patch("inventory", "vendors/123", {"memo": "x"}), 404)["status"] == 404
    dup = st.post("inventory", "vendors", dict(body, externalData=None))
    assert dup.status_code == 400 and "name" in dup.json()["errors"]


def test_materials_follow_the_spec(st):
    r = refs(st)
    page = ok(st.get("pricebook", "materials", params={"includeTotal": "true", "sort": "-Code"}))
    assert [m["code"] for m in page["data"]] == ["FLT-16252", "CU-PIPE-075", "CAP-45-5"]
    pipe = ok(st.get("pricebook", f"materials/{r['sku']['CU-PIPE-075']}"))
    assert pipe["primaryVendor"]["vendorName"] == "Ferguson Enterprises"
    assert pipe["primaryVendor"]["vendorPart"] == "LH04010"

    created = ok(st.post("pricebook", "materials", {
        "code": "TALLY-SKU-1", "description": "Item from Tally", "displayName": "Tally item",
        "cost": 12.5, "price": 20, "isInventory": True,
        "primaryVendor": {"vendorId": r["vendor"]["Johnstone Supply"], "cost": 12.5,
                          "active": True, "vendorPart": "JS-1"}}), 201)
    assert created["code"] == "TALLY-SKU-1" and created["active"] is True
    assert ok(st.get("pricebook", f"materials/{created['id']}"))["cost"] == 12.5
    ok(st.get("pricebook", "materials", params={"ids": f"{created['id']},{r['sku']['CAP-45-5']}"}))

    bad = ok(st.post("pricebook", "materials", {"description": "no code"}), 400, spec_rejects=True)
    assert bad["errors"] == {"code": ["The code field is required."]}
    dup = ok(st.post("pricebook", "materials", {"code": "cu-pipe-075", "description": "dup"}), 400)
    assert "code" in dup["errors"]
    ok(st.get("pricebook", "materials/1"), 404)

    # OAS Materials_Get: created with an application guid → fetched only with that guid
    owned = ok(st.post("pricebook", "materials", {
        "code": "OWNED-1", "description": "owned", "externalData": {
            "applicationGuid": APP_GUID, "externalData": [{"key": "k", "value": "v"}]}}), 201)
    assert owned["externalData"] == [{"key": "k", "value": "v"}]
    assert st.get("pricebook", f"materials/{owned['id']}").status_code == 404
    ok(st.get("pricebook", f"materials/{owned['id']}", params={"externalDataApplicationGuid": APP_GUID}))
    codes = [m["code"] for m in ok(st.get("pricebook", "materials", params={"pageSize": 5000}))["data"]]
    assert "OWNED-1" not in codes and "TALLY-SKU-1" in codes


def test_business_units_follow_the_spec(st):
    r = refs(st)
    page = ok(st.get("settings", "business-units", params={"name": "HVAC Service"}))
    assert [b["id"] for b in page["data"]] == [r["bu"]]
    bu = ok(st.get("settings", f"business-units/{r['bu']}"))
    assert bu["tenant"]["id"] == DEMO_TENANT and bu["currency"] == "USD"
    assert ok(st.get("settings", "business-units", params={"active": "False"}))["data"] == []
    ok(st.get("settings", "business-units/42"), 404)


def test_reference_lists_follow_the_spec(st):
    r = refs(st)
    assert [t["id"] for t in ok(st.get("inventory", "purchase-order-types"))["data"]] == [r["type"]]
    assert [w["name"] for w in ok(st.get("inventory", "warehouses"))["data"]] == ["Main Warehouse"]
    trucks = ok(st.get("inventory", "trucks"))["data"]
    assert trucks[0]["warehouseId"] == r["warehouse"]

    st.seed(adjustments=[{"location": "Main Warehouse", "type": "Adjustment", "memo": "count",
                          "items": [{"code": "CAP-45-5", "quantity": 6}]}],
            transfers=[{"from": "Main Warehouse", "to": "Truck 101",
                        "items": [{"code": "CAP-45-5", "quantity": 2}]}])
    adj = ok(st.get("inventory", "adjustments", params={"inventoryLocationIds": str(r["warehouse"])}))
    assert adj["data"][0]["items"][0]["quantity"] == 6
    assert ok(st.get("inventory", "adjustments", params={"adjustmentTypes": "Other"}))["data"] == []
    tr = ok(st.get("inventory", "transfers", params={"toLocationIds": str(r["truck"])}))
    assert tr["data"][0]["fromLocationId"] == r["warehouse"]
    assert on_hand(st, "CAP-45-5", r["warehouse"]) == 4 and on_hand(st, "CAP-45-5", r["truck"]) == 2


def test_purchase_orders_follow_the_spec(st):
    r = refs(st)
    po = create_po(st, r)
    assert po["status"] == "Pending" and po["number"] == "1001"
    assert po["vendorDocumentNumber"] == "TALLY-PV-0001" and po["summary"].startswith("Tally")
    assert po["total"] == 10 * 38.5 + 4 * 9.75 + 3.25 + 10
    assert [i["skuCode"] for i in po["items"]] == ["CU-PIPE-075", "FLT-16252"]
    other = create_po(st, r, vendorInvoiceNumber="TALLY-PV-0002", date="2026-04-01T00:00:00Z",
                      jobId=77)

    def listed(**params):
        return [p["id"] for p in ok(st.get("inventory", "purchase-orders", params=params))["data"]]

    assert listed() == [po["id"], other["id"]]
    assert listed(ids=f"{other['id']}") == [other["id"]]
    assert listed(number="1001") == [po["id"]]
    assert listed(jobId=77) == [other["id"]]
    assert listed(status="Pending") == [po["id"], other["id"]]
    assert listed(status="Received") == []
    assert listed(dateOnOrAfter="2026-03-15T00:00:00Z") == [other["id"]]
    assert listed(dateBefore="2026-03-15T00:00:00Z") == [po["id"]]
    assert listed(modifiedOnOrAfter="2000-01-01T00:00:00Z") == [po["id"], other["id"]]
    assert listed(createdBefore="2000-01-01T00:00:00Z") == []
    ok(st.get("inventory", "purchase-orders/5"), 404)
    ok(st.patch("inventory", "purchase-orders/5", {"memo": "x"}), 404)


def test_purchase_order_update_marks_omitted_items_inactive(st):
    r = refs(st)
    po = create_po(st, r)
    pipe, filt = po["items"]
    ok(st.patch("inventory", f"purchase-orders/{po['id']}", {
        "memo": "revised", "items": [
            dict(id=pipe["id"], skuId=pipe["skuId"], description=pipe["description"],
                 vendorPartNumber=pipe["vendorPartNumber"], quantity=12, cost=38.5),
            {"id": 0, "skuId": r["sku"]["CAP-45-5"], "description": "Run capacitor",
             "vendorPartNumber": "C45-5R", "quantity": 2, "cost": 14.2}]}))
    got = ok(st.get("inventory", f"purchase-orders/{po['id']}"))
    status = {i["skuCode"]: (i["status"], i["quantity"]) for i in got["items"]}
    assert status == {"CU-PIPE-075": ("Active", 12), "FLT-16252": ("Inactive", 4),
                      "CAP-45-5": ("Active", 2)}
    assert got["summary"] == "revised"
    assert got["total"] == pytest.approx(12 * 38.5 + 2 * 14.2 + 3.25 + 10)   # inactive not counted
    # without "items" the items stay as they are
    ok(st.patch("inventory", f"purchase-orders/{po['id']}", {"shipping": 0}))
    again = ok(st.get("inventory", f"purchase-orders/{po['id']}"))
    assert [i["status"] for i in again["items"]] == [i["status"] for i in got["items"]]
    bad = ok(st.patch("inventory", f"purchase-orders/{po['id']}", {"items": [
        {"id": 99, "skuId": pipe["skuId"], "description": "x", "vendorPartNumber": "x",
         "quantity": 1, "cost": 1}]}), 400)
    assert "items[0].id" in bad["errors"]


def test_receipt_puts_stock_on_hand_and_generates_a_bill(st):
    r = refs(st)
    po = create_po(st, r)
    pipe, filt = po["items"]
    rid = receive(st, po, [(pipe, 6)])["id"]
    got = ok(st.get("inventory", f"purchase-orders/{po['id']}"))
    assert got["status"] == "PartiallyReceived" and got["receivedOn"] == "2026-03-05T00:00:00.000Z"
    assert got["items"][0]["quantityReceived"] == 6
    assert on_hand(st, "CU-PIPE-075", r["warehouse"]) == 6

    # exactly-once lookups a flow relies on: receipts by vendorInvoiceNumber + purchaseOrderIds
    page = ok(st.get("inventory", "receipts", params={
        "vendorInvoiceNumber": "TALLY-PV-0001", "purchaseOrderIds": str(po["id"])}))
    (rec,) = page["data"]
    assert rec["id"] == rid and rec["number"] == "1001-1" and rec["vendorId"] == po["vendorId"]
    assert rec["receiptAmount"] == 6 * 38.5 + 3.25 + 10 and rec["items"][0]["code"] == "CU-PIPE-075"
    assert ok(st.get("inventory", "receipts", params={"vendorInvoiceNumber": "nope"}))["data"] == []

    bills = ok(st.get("accounting", "inventory-bills", params={"purchaseOrderNumber": "1001"}))
    assert isinstance(bills, list) and len(bills) == 1           # a plain array per the spec
    bill = bills[0]
    assert bill["id"] == rec["billId"] and bill["purchaseOrderId"] == po["id"]
    assert bill["billAmount"] == "244.25" and bill["referenceNumber"] == "TALLY-PV-0001"
    assert bill["vendor"] == {"id": po["vendorId"], "name": "Ferguson Enterprises"}
    assert bill["items"][0] == {"order": 1, "name": "Copper pipe 3/4in",
                                "description": "Copper pipe 3/4in", "quantity": "6",
                                "cost": "38.50", "inventoryLocation": "Main Warehouse",
                                "serialNumber": None, "generalLedgerAccount": None,
                                "costOfSaleAccount": None, "assetAccount": None}
    assert ok(st.get("accounting", "inventory-bills", params={"billNumber": "TALLY-PV-0001",
                                                               "syncStatuses": "Pending"})) == bills
    assert ok(st.get("accounting", "inventory-bills", params={"minCost": 1000})) == []

    receive(st, po, [(pipe, 4), (filt, 4)], number="TALLY-PV-0001-B")
    got = ok(st.get("inventory", f"purchase-orders/{po['id']}"))
    assert got["status"] == "Received"
    assert on_hand(st, "CU-PIPE-075", r["warehouse"]) == 10
    assert on_hand(st, "FLT-16252", r["warehouse"]) == 4
    assert len(ok(st.get("accounting", "inventory-bills"))) == 2
    over = receive(st, po, [(filt, 1)], status=400)
    assert "items[0].quantity" in over["errors"]


def test_receipt_cancellation_reverses_everything(st):
    r = refs(st)
    po = create_po(st, r)
    pipe = po["items"][0]
    rid = receive(st, po, [(pipe, 10)])["id"]
    bad = st.patch("inventory", f"receipts/{rid}/cancellation", {"canceledReason": "Oops"})
    assert bad.status_code == 400 and "canceledReason" in bad.json()["errors"]
    resp = st.patch("inventory", f"receipts/{rid}/cancellation", {"canceledReason": "Duplicate"})
    assert resp.status_code == 200, resp.text
    validate_schema("inventory", "ModificationResponse", resp.json())

    assert ok(st.get("inventory", "receipts"))["data"] == []                  # active only
    canceled = ok(st.get("inventory", "receipts", params={"active": "False"}))["data"]
    assert [c["id"] for c in canceled] == [rid] and canceled[0]["active"] is False
    assert len(ok(st.get("inventory", "receipts", params={"active": "Any"}))["data"]) == 1
    assert on_hand(st, "CU-PIPE-075", r["warehouse"]) == 0
    assert ok(st.get("accounting", "inventory-bills")) == []
    got = ok(st.get("inventory", f"purchase-orders/{po['id']}"))
    assert got["status"] == "Pending" and got["receivedOn"] is None
    assert got["items"][0]["quantityReceived"] == 0
    twice = st.patch("inventory", f"receipts/{rid}/cancellation", {"canceledReason": "Duplicate"})
    assert twice.status_code == 400
    assert st.patch("inventory", "receipts/7/cancellation", {"canceledReason": "Other"}).status_code == 404


def test_purchase_order_cancellation(st):
    r = refs(st)
    po = create_po(st, r)
    rid = receive(st, po, [(po["items"][0], 1)])["id"]
    blocked = st.patch("inventory", f"purchase-orders/{po['id']}/cancellation")
    assert blocked.status_code == 400                         # has an active receipt
    st.patch("inventory", f"receipts/{rid}/cancellation", {"canceledReason": "Accidental"})
    resp = st.patch("inventory", f"purchase-orders/{po['id']}/cancellation")
    assert resp.status_code == 200 and resp.json() == {"id": po["id"]}
    validate_schema("inventory", "ModificationResponse", resp.json())
    assert ok(st.get("inventory", f"purchase-orders/{po['id']}"))["status"] == "Canceled"
    assert [p["id"] for p in ok(st.get("inventory", "purchase-orders",
                                       params={"status": "Canceled"}))["data"]] == [po["id"]]
    assert receive(st, po, [(po["items"][0], 1)], status=400)["errors"]["purchaseOrderId"]
    assert st.patch("inventory", f"purchase-orders/{po['id']}/cancellation").status_code == 400
    assert st.patch("inventory", "purchase-orders/3/cancellation").status_code == 404


def test_returns_take_stock_back_to_the_vendor(st):
    r = refs(st)
    po = create_po(st, r)
    receive(st, po, [(po["items"][0], 5)])
    body = {"vendorId": po["vendorId"], "businessUnitId": r["bu"],
            "inventoryLocationId": r["warehouse"], "returnDate": "2026-03-10T00:00:00Z",
            "purchaseOrderId": po["id"], "referenceNumber": "RMA-1", "memo": "damaged",
            "items": [{"skuId": r["sku"]["CU-PIPE-075"], "quantity": 2, "cost": 38.5}]}
    resp = st.post("inventory", "returns", body)
    assert resp.status_code == 200, resp.text
    validate_schema("inventory", "ModificationResponse", resp.json())
    assert on_hand(st, "CU-PIPE-075", r["warehouse"]) == 3
    (ret,) = ok(st.get("inventory", "returns", params={"purchaseOrderId": po["id"]}))["data"]
    assert ret["referenceNumber"] == "RMA-1" and ret["returnAmount"] == 77
    too_many = st.post("inventory", "returns", dict(body, items=[
        {"skuId": r["sku"]["CU-PIPE-075"], "quantity": 4, "cost": 38.5}]))
    assert too_many.status_code == 400 and "items" in too_many.json()["errors"]


def test_validation_errors_are_api_error_responses(st):
    r = refs(st)
    missing = ok(st.post("inventory", "purchase-orders", {"vendorId": r["vendor"]["Johnstone Supply"]}),
                 400, spec_rejects=True)
    assert missing["title"] == "One or more validation errors occurred." and missing["status"] == 400
    assert set(missing["errors"]) == {"typeId", "businessUnitId", "inventoryLocationId", "shipTo",
                                      "impactsTechnicianPayroll", "date", "requiredOn", "tax",
                                      "shipping", "items"}
    assert missing["errors"]["date"] == ["The date field is required."]
    assert missing["traceId"] and missing["data"] == {}

    unknown = ok(st.post("inventory", "purchase-orders", po_body(r, vendorId=1, items=[
        {"skuId": 2, "description": "?", "vendorPartNumber": "?", "quantity": 1, "cost": 1}])), 400)
    assert set(unknown["errors"]) == {"vendorId", "items[0].skuId"}
    typed = ok(st.post("inventory", "vendors", {"name": "X", "active": "yes", "isTruckReplenishment": False,
                                                 "taxRate": 0, "restrictedMobileCreation": False,
                                                 "address": {"street": "s"}}), 400, spec_rejects=True)
    assert "active" in typed["errors"] and "address.city" in typed["errors"]

    # the endpoints outside the spec snapshot answer the same body shape
    no_po = st.post("inventory", "receipts", {"purchaseOrderId": 5, "dateReceived": "2026-03-05",
                                              "tax": 0, "shipping": 0,
                                              "items": [{"skuId": 1, "quantity": 1, "cost": 1}]})
    assert no_po.status_code == 400
    validate_schema("inventory", "ApiErrorResponse", no_po.json())
    assert "purchaseOrderId" in no_po.json()["errors"]
    empty = st.post("inventory", "receipts", {})
    assert set(empty.json()["errors"]) == {"purchaseOrderId", "dateReceived", "tax", "shipping", "items"}
    assert ok(st.get("inventory", "receipts", params={"purchaseOrderIds": "x"}), 400)["errors"]


def test_pagination(st):
    st.seed(vendors=[{"name": f"Vendor {n:02d}"} for n in range(5)])   # 7 vendors in all
    seen, pages = [], []
    for page in (1, 2, 3):
        body = ok(st.get("inventory", "vendors", params={"page": page, "pageSize": 3,
                                                          "includeTotal": "true"}))
        pages.append((body["page"], body["pageSize"], body["hasMore"], body["totalCount"],
                      len(body["data"])))
        seen += [v["id"] for v in body["data"]]
    assert pages == [(1, 3, True, 7, 3), (2, 3, True, 7, 3), (3, 3, False, 7, 1)]
    assert seen == sorted(seen) and len(set(seen)) == 7
    default = ok(st.get("inventory", "vendors"))
    assert (default["page"], default["pageSize"], default["totalCount"]) == (1, 50, None)
    assert ok(st.get("inventory", "vendors", params={"pageSize": 5001}), 400)["errors"]["pageSize"]
    assert ok(st.get("inventory", "vendors", params={"page": 0}), 400)["errors"]["page"]
    assert ok(st.get("inventory", "vendors", params={"page": 9}))["data"] == []
    bills = ok(st.get("accounting", "inventory-bills", params={"pageSize": 1}))
    assert bills == []


def test_auto_received_purchase_order_type(st):
    st.seed(purchase_order_types=[{"name": "Counter sale", "automaticallyReceive": True}])
    r = refs(st)
    auto_type = st.tenant_state()["purchase_order_types"][1]["id"]
    po = create_po(st, r, typeId=auto_type, vendorInvoiceNumber="CS-9")
    assert po["status"] == "Received"
    (rec,) = ok(st.get("inventory", "receipts", params={"purchaseOrderIds": str(po["id"])}))["data"]
    assert rec["vendorInvoiceNumber"] == "CS-9"
    assert on_hand(st, "FLT-16252", r["warehouse"]) == 4


# ====================================================================================== auth
def test_token_endpoint(st):
    r = st.token_response()
    assert r.status_code == 200
    body = r.json()
    assert body["expires_in"] == 900 and body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    for client_id, secret in ((DEMO_CLIENT_ID, "wrong"), ("cid.unknown", DEMO_CLIENT_SECRET)):
        bad = st.token_response(client_id, secret)
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    grant = st.token_response(grant="password")
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    as_json = requests.post(f"{st.base}/connect/token", json={"grant_type": "client_credentials"},
                            timeout=5)
    assert as_json.status_code == 400


def test_api_calls_need_app_key_and_bearer_token(st):
    token = st.token()
    no_key = st.get("inventory", "vendors", headers={"Authorization": f"Bearer {token}"})
    assert no_key.status_code == 401
    assert no_key.text == "Application key not present, check ST-App-Key header value."
    wrong_key = st.get("inventory", "vendors", headers={"Authorization": f"Bearer {token}",
                                                        "ST-App-Key": "ak1.nope"})
    assert wrong_key.status_code == 401
    for auth in (None, "Bearer not-a-token", f"Basic {token}"):
        headers = {"ST-App-Key": DEMO_APP_KEY}
        if auth:
            headers["Authorization"] = auth
        resp = st.get("inventory", "vendors", headers=headers)
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert st.get("inventory", "vendors").status_code == 200


def test_expired_tokens_are_refused(start):
    st = start({"token_ttl": 1})
    assert st.token_response().json()["expires_in"] == 1
    assert st.get("inventory", "vendors").status_code == 200
    time.sleep(1.2)
    resp = st.get("inventory", "vendors")
    assert resp.status_code == 401 and "expired" in resp.headers["WWW-Authenticate"]
    st._token = None
    assert st.get("inventory", "vendors").status_code == 200     # a new token works
    st.fault(expire_tokens=True)                                  # "expire all tokens now"
    assert st.get("inventory", "vendors").status_code == 401


def test_token_is_bound_to_its_tenant(start):
    st = start({"tenants": {
        DEMO_TENANT: {"name": "Demo", "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
        OTHER_TENANT: {"name": "Other", "client_id": OTHER_CLIENT[0], "client_secret": OTHER_CLIENT[1]}}})
    assert st.get("inventory", "vendors").status_code == 200
    cross = st.get("inventory", "vendors", tenant=OTHER_TENANT)
    assert cross.status_code == 403                               # ASSUMPTION: 403, not 401
    other = ST(st.base, tenant=OTHER_TENANT, client=OTHER_CLIENT)
    page = ok(other.get("inventory", "vendors"))
    assert len(page["data"]) == 2                                 # its own seeded world
    assert {v["id"] for v in page["data"]}.isdisjoint(
        {v["id"] for v in ok(st.get("inventory", "vendors"))["data"]})
    assert other.get("inventory", "vendors", tenant=DEMO_TENANT).status_code == 403


# ====================================================================================== rate limit
def _fresh_second() -> None:
    """Sleep to just after a whole second, so a burst falls into one window."""
    time.sleep(1.0 - (time.time() % 1.0) + 0.01)


def test_rate_limit_60_per_second_with_retry_after(st):
    st.token()
    _fresh_second()
    with ThreadPoolExecutor(max_workers=12) as pool:
        started = time.time()
        statuses = list(pool.map(lambda _: st.get("inventory", "purchase-order-types"), range(90)))
        elapsed = time.time() - started
    codes = [r.status_code for r in statuses]
    assert set(codes) <= {200, 429}
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, f"90 requests in {elapsed:.2f}s were never limited"
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    validate_schema("inventory", "ApiErrorResponse", limited[0].json())
    rate = st.state(requests=0)["rate"]
    assert rate["limit"] == 60 and rate["max_admitted_in_any_window"] == 60
    (bucket,) = rate["buckets"].values()
    assert all(n <= 60 for n in bucket["windows"].values())
    assert bucket["admitted"] == codes.count(200) and bucket["rejected"] == len(limited)
    assert codes.count(200) <= 60 * len(bucket["windows"])
    # the next window admits again
    time.sleep(max(int(limited[-1].headers["Retry-After"]), 1))
    assert st.get("inventory", "purchase-order-types").status_code == 200


def test_rate_limit_is_configurable_and_per_tenant(start):
    st = start({"rate_limit": 3, "tenants": {
        DEMO_TENANT: {"name": "Demo", "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
        OTHER_TENANT: {"name": "Other", "client_id": OTHER_CLIENT[0], "client_secret": OTHER_CLIENT[1]}}})
    other = ST(st.base, tenant=OTHER_TENANT, client=OTHER_CLIENT)
    st.token(), other.token()
    _fresh_second()
    mine = [st.get("inventory", "warehouses").status_code for _ in range(4)]
    theirs = [other.get("inventory", "warehouses").status_code for _ in range(3)]
    assert mine == [200, 200, 200, 429] and theirs == [200, 200, 200]
    buckets = st.state(requests=0)["rate"]["buckets"]
    assert sorted(b.split("-")[1] for b in buckets) == sorted([str(DEMO_TENANT), str(OTHER_TENANT)])


# ====================================================================================== faults, state
def test_injected_faults(st):
    r = refs(st)
    st.fault(status=429, count=2, retry_after=7)
    first = [st.get("inventory", "vendors") for _ in range(3)]
    assert [x.status_code for x in first] == [429, 429, 200]
    assert first[0].headers["Retry-After"] == "7"
    st.fault(status=503, method="POST", path="/purchase-orders")
    assert st.get("inventory", "purchase-orders").status_code == 200         # GET not matched
    assert st.post("inventory", "purchase-orders", po_body(r)).status_code == 503
    assert ok(st.get("inventory", "purchase-orders"))["data"] == []            # not processed

    # a lost response: processed, then answered 500 — the PO exists, findable by its number
    st.fault(status=500, when="after", method="POST", path="/purchase-orders")
    lost = st.post("inventory", "purchase-orders", po_body(r, vendorInvoiceNumber="LOST-1"))
    assert lost.status_code == 500
    (po,) = ok(st.get("inventory", "purchase-orders"))["data"]
    assert po["vendorDocumentNumber"] == "LOST-1"

    st.fault(delay=0.4)
    started = time.time()
    assert st.get("inventory", "vendors").status_code == 200
    assert time.time() - started >= 0.4

    st.fault(target="token", status=503, count=1)
    assert st.token_response().status_code == 503
    assert st.token_response().status_code == 200
    bad = requests.post(f"{st.base}/_sandbox/faults", json={"status": 418}, timeout=5)
    assert bad.status_code == 400


def test_sandbox_state_log_and_seed(st):
    st.get("inventory", "vendors", params={"page": 1})
    state = st.state()
    tenant = state["tenants"][str(DEMO_TENANT)]
    assert {m["code"] for m in tenant["materials"]} == {"CU-PIPE-075", "FLT-16252", "CAP-45-5"}
    assert [b["name"] for b in tenant["business_units"]] == ["HVAC Service"]
    assert min(v["id"] for v in tenant["vendors"]) > FIRST_ID
    token_call, api_call = state["requests"][-2:]
    assert token_call["path"] == "/connect/token" and "cs1." not in token_call["body"]
    assert api_call["query"] == {"page": ["1"]} and api_call["status"] == 200
    headers = {k.lower(): v for k, v in api_call["headers"].items()}
    assert headers["authorization"] == "Bearer ***"
    assert headers["st-app-key"].startswith("sha256:")
    assert DEMO_APP_KEY not in str(state) and DEMO_CLIENT_SECRET not in str(state)
    assert st.token() not in str(state)

    added = st.seed(vendors=[{"name": "Seeded Supply", "taxRate": "0.05"}],
                    materials=[{"code": "SEED-1", "description": "seeded", "cost": "2.50",
                                "vendor": "Seeded Supply"}],
                    on_hand=[{"location": "Truck 101", "code": "SEED-1", "quantity": 3}])
    assert len(added["vendors"]) == 1 and len(added["materials"]) == 1
    assert on_hand(st, "SEED-1", refs(st)["truck"]) == 3
    requests.post(f"{st.base}/_sandbox/reset", timeout=5)
    assert "SEED-1" not in {m["code"] for m in st.tenant_state()["materials"]}


def test_refuses_to_start_in_production():
    with pytest.raises(ProductionRefused):
        serve("127.0.0.1", 0, None, env="production")
