"""The IFS Cloud emulator's kit (see :mod:`sandbox.kit`): ``KIT`` for the demo and the test
harness (start the emulator with the demo's seed, the demo's IFS connection with its company
mapping and IAM client, the vouchers per company read back from the emulator), and the
LedgerTarget port against a running emulator for the shared ledger-target contract suite
(``tests/contract/test_ledger_targets.py``, through the registry's ``contract``).

:func:`ledger_contract` starts the emulator (default seed, plus accounting years back to 2024:
the suite's journals are dated 2024-01-31), builds an
:class:`~connector_tasks.connectors.ifs_cloud.client.IfsClient` with the seeded IAM client and an
:class:`~connector_tasks.connectors.ifs_cloud.adapter.IfsLedgerTarget` on company ``10``, and
yields a :class:`sandbox.kit.TargetUnderTest`; :func:`ledger_contracts` gives one per voucher
route.
"""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterator

import requests

from sandbox.kit import EmulatorKit, Posted, TargetUnderTest

COMPANY = "10"
CLIENT_ID, CLIENT_SECRET, NAMESPACE = "ml-connector", "ifs-demo-secret", "ifsdemo"
#: The first accounting year seeded (the suite posts on 2024-01-31).
FIRST_YEAR = 2024
#: The demo's first accounting year: the payroll source's published example has check date 2021-02-22.
DEMO_FIRST_YEAR = 2021
IFS_CONN = "demo-ifs"
#: ASSUMPTION (invented demo data): a second US company for the sales team, so the published
#: example payroll lands in two companies.
SALES_COMPANY = "30"
#: The demo connection's mapping of the payroll source's departments (its emulator's seed: Maya Patel,
#: Operations; Daniel Okafor, Sales; Lucia Romero, Finance) to companies and cost centres.
DEMO_COMPANIES = {"Sales": SALES_COMPANY}
DEMO_COST_CENTRES = {"Operations": "200", "Sales": "300", "Finance": "100"}


def contract_seed(today: dt.date | None = None, first_year: int = FIRST_YEAR) -> dict:
    """The emulator's default seed with accounting years from ``first_year`` (default
    :data:`FIRST_YEAR`) to the current one in every company (closed periods as seeded)."""
    from sandbox.ifs_cloud.world import default_seed

    seed = default_seed(today)
    year = (today or dt.date.today()).year
    for company in seed["companies"]:
        company["years"] = sorted(set(company["years"]) | set(range(min(first_year, year), year + 1)))
    return seed


def demo_seed(today: dt.date | None = None) -> dict:
    """:func:`contract_seed` from :data:`DEMO_FIRST_YEAR`, plus company :data:`SALES_COMPANY`
    (ML Demo US Sales LLC, USD) with company ``10``'s chart, code parts and periods."""
    seed = contract_seed(today, DEMO_FIRST_YEAR)
    us = next(c for c in seed["companies"] if c["Company"] == COMPANY)
    seed["companies"].append(dict(copy.deepcopy(us), Company=SALES_COMPANY, Name="ML Demo US Sales LLC"))
    return seed


@dataclass
class IfsKit(EmulatorKit):
    """The IFS Cloud emulator as a ledger and master target reached by the cloud workers."""

    system: str = "ifs_cloud"
    connection: str = IFS_CONN

    def start(self, config: dict | None = None, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start the emulator with :func:`demo_seed` (unless ``config`` names a seed)."""
        from sandbox.ifs_cloud.server import serve

        self.server, self.url = serve(host, port, {"seed": demo_seed(), **(config or {})})
        return self.url

    def state(self) -> dict:
        """The emulator's state (``/_sandbox/state``)."""
        return requests.get(f"{self.url}/_sandbox/state", timeout=30).json()

    def admin(self, what: str, body=None) -> dict:
        """``POST /_sandbox/<what>`` (faults, config, seed, reset); raises for an error."""
        r = requests.post(f"{self.url}/_sandbox/{what}", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    def settings(self) -> dict:
        """The demo connection's settings: company 10 by default, the sales team in company
        :data:`SALES_COMPANY`, cost centres per department, External Vouchers, settlement on,
        employees as customers, a budget of 50 requests per second."""
        return {"system_url": self.url, "namespace": NAMESPACE, "default_company": COMPANY,
                "company_by_department": dict(DEMO_COMPANIES), "cost_centre_by_department": dict(DEMO_COST_CENTRES),
                "rate_limit": {"per_second": 50}}

    def add_connection(self, session, *, targets: list[str] = ()) -> None:
        """The demo's IFS Cloud connection with the seeded IAM client (encrypted)."""
        from connector_tasks import runtime
        from connector_tasks.store import repo
        from connector_tasks.store.models import Connection

        conn = Connection(name=self.connection, system=self.system, account=NAMESPACE, status="connected",
                          settings=self.settings())
        session.add(conn)
        session.flush()
        repo.write_credentials(conn, runtime.vault(), {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})

    def vouchers(self, target_ref: str) -> dict[str, tuple[dict | None, list[dict]]]:
        """``{"<company>:<voucher id>": (voucher, rows)}`` of a job's ``target_ref``
        (``"10:Z-2021-1;30:Z-2021-1"``), as the emulator holds them (``(None, [])`` when missing)."""
        from connector_tasks.connectors.ifs_cloud.vouchers import parse_voucher_id

        tables = self.state()["tables"]
        out = {}
        for ref in filter(None, (target_ref or "").split(";")):
            company, _, vid = ref.partition(":")
            key = (company, *parse_voucher_id(vid))

            def ident(r):
                return r["Company"], r["VoucherType"], int(r["AccountingYear"]), int(r["VoucherNo"])
            header = next((v for v in tables.get("voucher", []) if ident(v) == key), None)
            out[ref] = header, [r for r in tables.get("voucher_row", []) if ident(r) == key]
        return out

    def describe(self, job: dict) -> Posted:
        """The job's vouchers, one per company, as the emulator holds them; balanced when each
        company's voucher is. Summary: ``vouchers <company>:<voucher> <amount> + … balanced
        <total>``."""
        lines, total, balanced, parts = [], Decimal("0"), True, []
        for ref, (header, rows) in self.vouchers(job["target_ref"]).items():
            dr = sum((Decimal(str(r.get("DebetAmount") or 0)) for r in rows), Decimal("0"))
            cr = sum((Decimal(str(r.get("CreditAmount") or 0)) for r in rows), Decimal("0"))
            balanced = balanced and bool(rows) and dr == cr
            total += dr
            parts.append(f"{ref} {dr:,.2f}")
            company, _, vid = ref.partition(":")
            lines.append(f"IFS company {company} voucher {vid}  dated {(header or {}).get('VoucherDate')}  "
                         f"status {(header or {}).get('VoucherStatus')}")
            for r in rows:
                side = "Dr" if r.get("DebetAmount") else "Cr"
                amount = Decimal(str(r.get("DebetAmount") or r.get("CreditAmount") or 0))
                codes = " ".join(f"{k}={r[k]}" for k in sorted(r) if k.startswith("Code") and len(k) == 5 and r[k])
                lines.append(f"  {side}  {r['Account']:<6} {codes:<8} {amount:>14,.2f}  {r.get('Text') or ''}")
            lines.append(f"  Totals Dr {dr:,.2f} Cr {cr:,.2f}  Balanced: {'yes' if dr == cr else 'NO'}")
        summary = (f"vouchers {' + '.join(parts)} balanced {total:,.2f}" if balanced and parts else
                   f"vouchers {job['target_ref']} UNBALANCED or missing")
        return Posted(summary, balanced and bool(parts), "\n".join(lines))


KIT = IfsKit


@contextlib.contextmanager
def ledger_contract(route: str = "external", config: dict | None = None) -> Iterator[TargetUnderTest]:
    """Start the IFS emulator and yield ``TargetUnderTest(name, target, requests,
    journals_with_key)``: ``target`` the IfsLedgerTarget for company ``10`` over voucher
    ``route`` (``"external"``, the default, or ``"assistant"``); ``requests()`` the emulator's
    logged request count (token and projection calls; admin calls are not logged);
    ``journals_with_key(key)`` the vouchers of company ``10`` whose rows carry the key's
    reference (:func:`~connector_tasks.connectors.ifs_cloud.vouchers.reference_of`) as
    ``ReferenceNumber``. ``config`` overrides the emulator's configuration. The emulator stops
    on exit."""
    from connector_tasks.connectors.ifs_cloud.adapter import build_target
    from connector_tasks.connectors.ifs_cloud.client import IfsClient
    from connector_tasks.connectors.ifs_cloud.vouchers import reference_of
    from sandbox.ifs_cloud.server import serve

    server, base = serve("127.0.0.1", 0, {"seed": contract_seed(), **(config or {})}, env="test")
    client = IfsClient(base, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, namespace=NAMESPACE,
                       retry_initial=0.05)

    def state() -> dict:
        return requests.get(f"{base}/_sandbox/state", timeout=10).json()

    def journals(key: str) -> int:
        ref = reference_of(key)
        rows = state()["tables"].get("voucher_row", [])
        return len({(r["Company"], r["VoucherType"], r["VoucherNo"], r["AccountingYear"])
                    for r in rows if r["Company"] == COMPANY and r.get("ReferenceNumber") == ref})

    count: Callable[[], int] = lambda: state()["request_count"]  # noqa: E731
    name = "ifs_cloud" if route == "external" else f"ifs_cloud-{route}"
    try:
        yield TargetUnderTest(name, build_target(client, COMPANY, route=route), count, journals)
    finally:
        client.session.close()
        server.shutdown()


def ledger_contracts() -> dict[str, Callable[[], contextlib.AbstractContextManager[TargetUnderTest]]]:
    """``{name: factory}`` for both voucher routes (``ifs_cloud`` = External Vouchers, the
    default; ``ifs_cloud-assistant``)."""
    return {"ifs_cloud": lambda: ledger_contract("external"),
            "ifs_cloud-assistant": lambda: ledger_contract("assistant")}
