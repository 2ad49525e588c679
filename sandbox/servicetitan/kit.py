"""The ServiceTitan emulator's kit (see :mod:`sandbox.kit`): start the emulator with its demo
seed, the demo's ServiceTitan connection (client credentials, app key, business unit, PO type,
inventory location), the purchase scenario the demo runs (a vendor and a SKU it holds, a SKU it
does not), and a job's purchase order read back from the emulator."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import requests

from sandbox.kit import EmulatorKit, Posted
from sandbox.servicetitan.world import DEMO_APP_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT

ST_CONN = "demo-servicetitan"
#: the demo's purchase (ASSUMPTION, invented data): the seeded vendor and material, and a SKU
#: the seed does not hold (the second voucher is parked ``unmatched`` naming it)
DEMO_VENDOR = "Ferguson Enterprises"
DEMO_LINES = [{"item": "Copper pipe 3/4in", "part_number": "CU-PIPE-075", "quantity": "12", "rate": "38.50"}]
UNKNOWN_LINES = [{"item": "TXV valve R410A 3T", "part_number": "TXV-R410A-3T", "quantity": "2", "rate": "145.00"}]


@dataclass
class ServiceTitanKit(EmulatorKit):
    """The ServiceTitan emulator as an inventory target reached by the cloud workers."""

    system: str = "servicetitan"
    connection: str = ST_CONN

    def start(self, config: dict | None = None, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start the emulator (demo tenant and seed unless ``config`` says otherwise)."""
        from sandbox.servicetitan.server import serve

        self.server, self.url = serve(host, port, config)
        return self.url

    def state(self, **params) -> dict:
        """The emulator's state (``/_sandbox/state``) of the demo tenant."""
        return requests.get(f"{self.url}/_sandbox/state", params={"tenant": DEMO_TENANT, "requests": 0, **params},
                            timeout=30).json()

    def tenant(self) -> dict:
        """The demo tenant's records (vendors, materials, purchase_orders, receipts, returns…)."""
        state = self.state()
        tenants = state.get("tenants")
        if isinstance(tenants, list):
            return next(t for t in tenants if int(t["id"]) == DEMO_TENANT)
        if isinstance(tenants, dict):
            return tenants.get(str(DEMO_TENANT)) or tenants.get(DEMO_TENANT)
        return state

    def admin(self, what: str, body=None, method: str = "POST") -> dict:
        """``<method> /_sandbox/<what>`` (seed, faults, config, reset); raises for an error."""
        r = requests.request(method, f"{self.url}/_sandbox/{what}", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    def settings(self) -> dict:
        """The demo connection's settings: the emulator's hosts, business unit ``HVAC Service``,
        PO type ``Standard``, location ``Main Warehouse``, items matched by part number."""
        return {"environment": "integration", "api_url": self.url, "auth_url": f"{self.url}/connect/token",
                "business_unit": "HVAC Service", "po_type": "Standard", "inventory_location": "Main Warehouse",
                "match_items_by": "part_number", "poll_interval_minutes": 5}

    def add_connection(self, session, *, targets: list[str] = ()) -> None:
        """The demo's ServiceTitan connection (tenant :data:`DEMO_TENANT`) with the emulator's
        demo client credentials and app key (encrypted)."""
        from connector_tasks import runtime
        from connector_tasks.store import repo
        from connector_tasks.store.models import Connection

        conn = Connection(name=self.connection, system=self.system, account=str(DEMO_TENANT), status="connected",
                          settings=self.settings())
        session.add(conn)
        session.flush()
        repo.write_credentials(conn, runtime.vault(), {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET,
                                                       "app_key": DEMO_APP_KEY})

    def purchase_scenario(self) -> dict:
        """What the demo buys: ``{"party", "known": lines ServiceTitan matches, "unknown": lines
        naming a SKU it does not hold, "unknown_sku"}`` (lines as a purchase source kit's
        ``fire_purchase`` takes them)."""
        return {"party": DEMO_VENDOR, "known": [dict(x) for x in DEMO_LINES],
                "unknown": [dict(x) for x in UNKNOWN_LINES], "unknown_sku": UNKNOWN_LINES[0]["part_number"]}

    def purchase_order(self, po_id) -> dict | None:
        """The PO with id ``po_id`` as the emulator renders it, with its ``receipts``."""
        t = self.tenant()
        po = next((p for p in t["purchase_orders"] if str(p["id"]) == str(po_id)), None)
        if po is not None:
            po = dict(po, receipts=[r for r in t["receipts"] if r["purchaseOrderId"] == po["id"]])
        return po

    def describe(self, job: dict) -> Posted:
        """The job's purchase order as the emulator holds it: ``po <number> received <amount>``
        (the active receipts' amount), ``balanced`` when the PO is fully received."""
        po = self.purchase_order(job["target_ref"])
        if po is None:
            return Posted(f"purchase order {job['target_ref']} not found", False)
        received = sum((Decimal(str(r["receiptAmount"])) for r in po["receipts"] if r["active"]), Decimal("0"))
        lines = [f"ServiceTitan PO {po['number']} (id {po['id']})  status {po['status']}  vendor {po['vendorId']}  "
                 f"summary {po.get('summary')!r}"]
        for item in po["items"]:
            lines.append(f"  {item.get('status', 'Active'):<8} sku {item['skuId']}  qty {item['quantity']}  "
                         f"cost {item['cost']}  received {item['quantityReceived']}")
        for r in po["receipts"]:
            lines.append(f"  receipt {r['number']}  invoice {r['vendorInvoiceNumber']!r}  amount {r['receiptAmount']}"
                         f"  {'active' if r['active'] else 'canceled'}")
        ok = po["status"] == "Received"
        return Posted(f"po {po['number']} received {received:,.2f}" if ok else
                      f"po {po['number']} {po['status']} (received {received:,.2f})", ok, "\n".join(lines))


KIT = ServiceTitanKit
