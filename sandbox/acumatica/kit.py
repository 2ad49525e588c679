"""The Acumatica emulator's kit (see :mod:`sandbox.kit`): start it, the demo's Acumatica
connection (OAuth through the instance's identity server, releasing each batch), the GL batch
read back from the emulator, and the factories of the shared ledger-target contract suite."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator

import requests

from sandbox.kit import EmulatorKit, Posted, TargetUnderTest

ACU_CONN = "demo-acumatica"
TENANT = "Company"
#: the emulator's demo OAuth client and user (``sandbox/acumatica/app.py``)
CLIENT_ID = "88358B02-A48D-A50E-F710-39C1636C30F6@Company"
CLIENT_SECRET = "demo-acumatica-secret"
USERNAME, PASSWORD = "admin", "setup"


@dataclass
class AcumaticaKit(EmulatorKit):
    """The Acumatica emulator as a ledger target reached by the cloud workers."""

    system: str = "acumatica"
    connection: str = ACU_CONN

    def start(self, config: dict | None = None, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start the emulator (the release action answers 202 once before 204, unless ``config``
        says otherwise)."""
        from sandbox.acumatica.server import serve

        self.server, self.url = serve(host, port, {"release_polls": 1, **(config or {})})
        return self.url

    def state(self) -> dict:
        """The emulator's state (``/_sandbox/state``)."""
        return requests.get(f"{self.url.rsplit('/', 1)[0]}/_sandbox/state", timeout=30).json()

    def add_connection(self, session, *, targets: list[str] = ()) -> None:
        """The demo's Acumatica connection: OAuth, batches released, the licence's limits."""
        from connector_tasks import runtime
        from connector_tasks.store import repo
        from connector_tasks.store.models import Connection

        conn = Connection(name=self.connection, system=self.system, account=TENANT, status="connected",
                          settings={"base_url": self.url, "endpoint_version": "24.200.001", "branch": "HEADOFFICE",
                                    "ledger": "ACTUAL", "release": True, "auth": "oauth",
                                    "requests_per_minute": 600, "concurrent_requests": 3})
        session.add(conn)
        session.flush()
        repo.write_credentials(conn, runtime.vault(), {"username": USERNAME, "password": PASSWORD,
                                                       "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})

    def describe(self, job: dict) -> Posted:
        """The job's GL batch as the emulator holds it."""
        batches = [b for b in self.state()["journal_transactions"] if b.get("BatchNbr") == job["target_ref"]]
        if not batches:
            return Posted(f"journal transaction {job['target_ref']} not found", False)
        b = batches[0]
        dr = sum((Decimal(str(d["DebitAmount"])) for d in b["Details"]), Decimal("0"))
        cr = sum((Decimal(str(d["CreditAmount"])) for d in b["Details"]), Decimal("0"))
        lines = [f"JournalTransaction {b['BatchNbr']}  {b.get('Status')}  dated {b.get('TransactionDate')}  "
                 f"branch {b.get('BranchID')}  ledger {b.get('LedgerID')}", f"Description: {b.get('Description')}", ""]
        for d in b["Details"]:
            side = "Dr" if Decimal(str(d["DebitAmount"])) else "Cr"
            amount = Decimal(str(d["DebitAmount"])) or Decimal(str(d["CreditAmount"]))
            lines.append(f"  {side}  {d['Account']}-{d['Subaccount']}  {amount:>14,.2f}  {d.get('TransactionDescription', '')}")
        lines.append(f"  Totals Dr {dr:,.2f} Cr {cr:,.2f}  Balanced: {'yes' if dr == cr else 'NO'}")
        summary = (f"journal transaction {b['BatchNbr']} balanced {dr:,.2f}" if dr == cr else
                   f"journal transaction {b['BatchNbr']} UNBALANCED Dr {dr:,.2f} Cr {cr:,.2f}")
        return Posted(summary, dr == cr, "\n".join(lines))


KIT = AcumaticaKit


@contextlib.contextmanager
def _ledger_contract(auth: str) -> Iterator[TargetUnderTest]:
    from connector_tasks.connectors.acumatica.adapter import AcumaticaLedgerTarget, key_marker
    from connector_tasks.connectors.acumatica.client import AcumaticaClient
    from connector_tasks.connectors.acumatica.mapping import resolve_accounts
    from tests.support.oauth import InMemoryTokenStore

    kit = AcumaticaKit()
    kit.start()
    world = kit.server.app.extensions["acumatica"]
    client = AcumaticaClient(kit.url, "24.200.001", auth=auth, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                             username=USERNAME, password=PASSWORD, tenant=TENANT, token_store=InMemoryTokenStore())
    ledgers = ["Salaries & Wages", "Salaries Payable", "Payroll Taxes Payable"]
    target = AcumaticaLedgerTarget(client, resolve_accounts(ledgers), branch="HEADOFFICE", ledger="ACTUAL")
    try:
        yield TargetUnderTest(f"acumatica-{auth}", target, lambda: kit.state()["request_count"],
                              lambda key: sum(1 for b in kit.state()["journal_transactions"]
                                              if key_marker(key) in b["Description"]))
    finally:
        client.close()
        assert world.state()["open_sessions"] == 0, "a cookie session was left open"
        kit.stop()


def ledger_contracts() -> dict:
    """The two ways a connection reaches Acumatica, each a factory of the contract suite:
    OAuth (password grant + refresh) and a cookie session (logged out at the end). The contract
    suite runs in the test tree, so the factories use its in-memory token store."""
    return {"acumatica-oauth": lambda: _ledger_contract("oauth"),
            "acumatica-cookie": lambda: _ledger_contract("cookie")}
