"""The IFS Cloud emulator's kit: the LedgerTarget port against a running emulator, for the shared
ledger-target contract suite (``tests/contract/test_ledger_targets.py``).

:func:`ledger_contract` starts the emulator (default seed, plus accounting years back to 2024:
the suite's journals are dated 2024-01-31), builds an
:class:`~connector_tasks.connectors.ifs_cloud.client.IfsClient` with the seeded IAM client and an
:class:`~connector_tasks.connectors.ifs_cloud.adapter.IfsLedgerTarget` on company ``10``, and
yields a :class:`sandbox.kit.TargetUnderTest`; :func:`ledger_contracts` gives one per voucher
route.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from typing import Callable, Iterator

import requests

from sandbox.kit import TargetUnderTest

COMPANY = "10"
CLIENT_ID, CLIENT_SECRET, NAMESPACE = "ml-connector", "ifs-demo-secret", "ifsdemo"
#: The first accounting year seeded (the suite posts on 2024-01-31).
FIRST_YEAR = 2024


def contract_seed(today: dt.date | None = None) -> dict:
    """The emulator's default seed with accounting years from :data:`FIRST_YEAR` to the current
    one in every company (closed periods as seeded)."""
    from sandbox.ifs_cloud.world import default_seed

    seed = default_seed(today)
    year = (today or dt.date.today()).year
    for company in seed["companies"]:
        company["years"] = sorted(set(company["years"]) | set(range(min(FIRST_YEAR, year), year + 1)))
    return seed


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
