"""Factories of ledger targets for the contract suite (tests/contract/test_ledger_targets.py).

Each factory starts the target's emulator and returns a :class:`TargetUnderTest`: the
LedgerTarget port (``find_journal``, ``ensure_ledgers``, ``post_journal``), the ledgers the
suite's journals use, and two views from the emulator's side: how many requests reached it and
how many journals carry a key. Adaptations to the port live here, never in the clients.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import requests

from connector_tasks.domain.model import LedgerMaster
from connector_tasks.domain.ports import LedgerTarget

#: The ledgers every suite journal uses (names of the payroll flow's defaults).
LEDGERS = [LedgerMaster("Salaries & Wages", "Indirect Expenses"),
           LedgerMaster("Salaries Payable", "Current Liabilities"),
           LedgerMaster("Payroll Taxes Payable", "Duties & Taxes")]


@dataclass
class TargetUnderTest:
    """A LedgerTarget and what its emulator saw."""

    name: str
    target: LedgerTarget
    requests: Callable[[], int]            # requests that reached the emulator so far
    journals_with_key: Callable[[str], int]


@contextlib.contextmanager
def tallyprime() -> Iterator[TargetUnderTest]:
    """TallyClient against the TallyPrime emulator; the voucher's REMOTEID is the key."""
    from connector_tasks.connectors.tallyprime import TallyClient
    from sandbox.tallyprime.server import serve

    server, _thread, port = serve()
    url = f"http://127.0.0.1:{port}"
    company = "Demo Trading Co"

    def state() -> dict:
        return requests.get(f"{url}/_sandbox/state", timeout=10).json()

    def journals(key: str) -> int:
        comp = next(c for c in state()["companies"] if c["name"] == company)
        return sum(1 for v in comp["vouchers"] if v["remote_id"] == key)

    try:
        yield TargetUnderTest("tallyprime", TallyClient(url, company),
                              lambda: state()["request_count"], journals)
    finally:
        server.shutdown()


@contextlib.contextmanager
def _acumatica(auth: str) -> Iterator[TargetUnderTest]:
    from connector_tasks.connectors.acumatica.adapter import AcumaticaLedgerTarget, key_marker
    from connector_tasks.connectors.acumatica.client import AcumaticaClient
    from connector_tasks.connectors.acumatica.mapping import resolve_accounts
    from sandbox.acumatica.server import serve
    from tests.support.oauth import InMemoryTokenStore

    server, base = serve("127.0.0.1", 0, env="test")
    world = server.app.extensions["acumatica"]
    client = AcumaticaClient(base, "24.200.001", auth=auth,
                             client_id="88358B02-A48D-A50E-F710-39C1636C30F6@Company",
                             client_secret="demo-acumatica-secret", username="admin", password="setup",
                             tenant="Company", token_store=InMemoryTokenStore())
    accounts = resolve_accounts([m.name for m in LEDGERS])
    target = AcumaticaLedgerTarget(client, accounts, branch="HEADOFFICE", ledger="ACTUAL")

    def state() -> dict:
        return requests.get(f"{base.rsplit('/', 1)[0]}/_sandbox/state", timeout=10).json()

    def journals(key: str) -> int:
        return sum(1 for b in state()["journal_transactions"] if key_marker(key) in b["Description"])

    try:
        yield TargetUnderTest(f"acumatica-{auth}", target, lambda: state()["request_count"], journals)
    finally:
        client.close()
        assert world.state()["open_sessions"] == 0, "a cookie session was left open"
        server.shutdown()


def acumatica_oauth():
    """AcumaticaClient (OAuth2 password grant + refresh) against the Acumatica emulator."""
    return _acumatica("oauth")


def acumatica_cookie():
    """AcumaticaClient (cookie session, logged out at the end) against the Acumatica emulator."""
    return _acumatica("cookie")


FACTORIES = {"tallyprime": tallyprime, "acumatica-oauth": acumatica_oauth, "acumatica-cookie": acumatica_cookie}
