"""The TallyPrime emulator's kit (see :mod:`sandbox.kit`): start it, the demo's Tally
connection and agent, the voucher read back as TallyPrime reports it (a Day Book export), and
the factory of the shared ledger-target contract suite."""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Iterator

import requests

from sandbox.kit import EmulatorKit, Posted, TargetUnderTest

DEMO_COMPANY_NAME = "Demo Trading Co"
TALLY_CONN = "demo-tally"


def format_voucher(voucher: dict) -> tuple[str, Decimal, Decimal]:
    """A human-readable rendering of one Day Book voucher (as parsed from Tally's export), and
    its debit and credit totals (Tally's sign convention: a negative AMOUNT is a debit)."""
    lines = [f"{voucher.get('voucher_type')} No. {voucher.get('number')}  MASTERID {voucher.get('master_id')}  "
             f"dated {voucher.get('date')}  REMOTEID {voucher.get('remote_id')}",
             f"Narration: {voucher.get('narration')}", ""]
    dr_total = cr_total = Decimal("0")
    for e in voucher.get("ledger_entries", []):
        amount = Decimal(str(e["amount"]))
        if amount < 0:
            dr_total += -amount
            lines.append(f"  Dr  {e['ledger']:<34} {-amount:>14,.2f}")
        else:
            cr_total += amount
            lines.append(f"  Cr  {e['ledger']:<34} {'':>14} {amount:>14,.2f}")
        for alloc in e.get("cost_allocations", []) or []:
            lines.append(f"        cost centre {alloc.get('cost_centre') or alloc.get('name')}: "
                         f"{abs(Decimal(str(alloc['amount']))):,.2f}")
    lines.append(f"  {'Totals':<38} {dr_total:>14,.2f} {cr_total:>14,.2f}")
    lines.append(f"  Balanced: {'yes' if dr_total == cr_total else 'NO'}")
    return "\n".join(lines), dr_total, cr_total


@dataclass
class TallyKit(EmulatorKit):
    """The TallyPrime emulator with the demo company, as a ledger target reached by an agent."""

    system: str = "tallyprime"
    connection: str = TALLY_CONN
    company: str = DEMO_COMPANY_NAME

    def start(self, config: dict | None = None, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start the emulator (one company, "Demo Trading Co", unless ``config`` says otherwise)."""
        from sandbox.tallyprime.server import serve

        self.server, _, bound = serve(host, port, config)
        self.url = f"http://{host}:{bound}"
        return self.url

    def environ(self) -> dict[str, str]:
        """The emulator as the agent's TallyPrime (``TALLY_URL``)."""
        return {"TALLY_URL": self.url}

    def add_connection(self, session, *, targets: list[str] = ()) -> None:
        """The demo's Tally connection (company :data:`DEMO_COMPANY_NAME`); ``targets`` are the
        connections its purchase vouchers go to (as a purchase source)."""
        from connector_tasks.store.models import Connection

        session.add(Connection(name=self.connection, system=self.system, account=self.company,
                               status="connected", settings={"targets": list(targets)} if targets else {}))

    # ------------------------------------------------------------------ as a purchase source
    def admin(self, method: str, path: str, **body) -> dict:
        """``<method> /_sandbox/<path>`` with JSON ``body`` (company defaults to the demo's);
        raises RuntimeError with the emulator's text for an error."""
        r = requests.request(method, f"{self.url}/_sandbox/{path}", json={"company": self.company, **body},
                             timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"Tally emulator {method} {path}: {r.status_code} {r.text}")
        return r.json()

    def ensure_purchase_masters(self, party: str, lines: list[dict], purchase_ledger: str = "Purchases") -> None:
        """Create (or keep) what a purchase of ``lines`` from ``party`` needs in the company:
        unit ``Nos``, the party ledger (Sundry Creditors), the purchase ledger (Purchase
        Accounts) and each line's stock item with its part number (``{"item", "part_number"}``)."""
        self.admin("POST", "masters", kind="unit", name="Nos", decimals=0)
        self.admin("POST", "masters", kind="ledger", name=party, parent="Sundry Creditors")
        self.admin("POST", "masters", kind="ledger", name=purchase_ledger, parent="Purchase Accounts")
        for line in lines:
            self.admin("POST", "masters", kind="stockitem", name=line["item"], part_no=line.get("part_number") or "",
                       base_units=line.get("unit") or "Nos")

    def fire_purchase(self, party: str, lines: list[dict], *, reference: str = "", date: str | None = None,
                      kind: str = "Purchase", narration: str = "") -> str:
        """Save a purchase voucher (or ``kind="Debit Note"``) in the emulator as a person would:
        ``lines`` ``[{"item", "part_number", "quantity", "rate"}]`` (decimal strings); masters
        are created first. Returns the voucher's GUID (the purchase flow's source id)."""
        import datetime as dt

        self.ensure_purchase_masters(party, lines)
        voucher = self.admin("POST", "vouchers", type=kind, date=date or dt.date.today().strftime("%Y%m%d"),
                             party=party, purchase_ledger="Purchases", reference=reference, narration=narration,
                             items=[{"item": x["item"], "qty": str(x["quantity"]), "rate": str(x["rate"])}
                                    for x in lines])
        return voucher["guid"]

    def alter_purchase(self, guid: str, **spec) -> dict:
        """Alter voucher ``guid`` (keys of ``fire_purchase``'s voucher: ``items``, ``party``…)."""
        return self.admin("PATCH", f"vouchers/{guid}", **spec)

    def cancel_purchase(self, guid: str) -> dict:
        """Cancel voucher ``guid`` (it stays, ``ISCANCELLED`` Yes)."""
        return self.admin("POST", f"vouchers/{guid}/cancel")

    def delete_purchase(self, guid: str) -> dict:
        """Delete voucher ``guid``."""
        return self.admin("DELETE", f"vouchers/{guid}")

    def poll(self, wait: float = 60.0) -> str:
        """Ask the agent for a purchase poll now (as beat does every interval) and wait for it;
        returns a line saying what it found. Raises TransientApiError without an answer."""
        from connector_tasks.connectors.tallyprime.polling import request_poll

        done = request_poll(self.connection, wait=wait)
        if done.get("status") != "done":
            raise RuntimeError(f"the Tally poll failed: {done.get('error')}")
        return (f"the Tally agent polled {self.company}: {done['vouchers']} changed vouchers, "
                f"{done['deleted']} deleted, {done.get('requests')} requests to Tally")

    agent_env_prefixes: ClassVar[tuple[str, ...]] = ("TALLY_",)

    def agent_argv(self, config=None) -> list[str]:
        """``tally-worker run --config <credential> --connection <name>`` (the agent beside
        TallyPrime)."""
        return [sys.executable, "-m", "tally_worker.cli", "run", *(["--config", str(config)] if config else []),
                "--connection", self.connection]

    def agent_register_argv(self, code: str, url: str, config) -> list[str]:
        """``tally-worker register <code> --url <cloud> --config <credential>``."""
        return [sys.executable, "-m", "tally_worker.cli", "register", code, "--url", url, "--config", str(config)]

    def vouchers(self) -> list[dict]:
        """Every voucher of the demo company, from the emulator's state."""
        state = requests.get(f"{self.url}/_sandbox/state", timeout=30).json()
        return next(c for c in state["companies"] if c["name"] == self.company)["vouchers"]

    def describe(self, job: dict) -> Posted:
        """The job's voucher as TallyPrime reports it in a Day Book export of its date."""
        from connector_tasks.connectors.tallyprime.client import TallyClient

        client = TallyClient(self.url, self.company)
        found = [v for v in self.vouchers() if str(v.get("master_id")) == str(job["target_ref"])]
        day = (found[0]["date"] if found else "")
        rows = client.day_book(day, day) if day else []
        mine = [v for v in rows if str(v.get("master_id")) == str(job["target_ref"])] or rows
        if not mine:
            return Posted(f"voucher {job['target_ref']} not found in the Day Book", False)
        text, dr, cr = format_voucher(mine[0])
        master_id = mine[0].get("master_id")  # the voucher's MASTERID: its id in Tally (the job's target_ref)
        return Posted(f"voucher {master_id} balanced {dr:,.2f}" if dr == cr else
                      f"voucher {master_id} UNBALANCED Dr {dr:,.2f} Cr {cr:,.2f}", dr == cr,
                      f"Day Book of {self.company} as TallyPrime reports it:\n{text}")


KIT = TallyKit


@contextlib.contextmanager
def _ledger_contract() -> Iterator[TargetUnderTest]:
    """TallyClient against the TallyPrime emulator; the voucher's REMOTEID is the key."""
    from connector_tasks.connectors.tallyprime.client import TallyClient

    kit = TallyKit()
    kit.start()
    try:
        yield TargetUnderTest("tallyprime", TallyClient(kit.url, kit.company),
                              lambda: requests.get(f"{kit.url}/_sandbox/state", timeout=10).json()["request_count"],
                              lambda key: sum(1 for v in kit.vouchers() if v["remote_id"] == key))
    finally:
        kit.stop()


def ledger_contracts() -> dict:
    """The factory of the shared ledger-target contract suite: the XML client on the emulator."""
    return {"tallyprime": _ledger_contract}
