"""The factories of the shared ledger-target contract suite (tests/contract/test_ledger_targets.py),
collected from the registry: every system whose entry names a ``contract``
(``ledger_contracts() -> {name: factory}``, each factory a context manager yielding a
:class:`sandbox.kit.TargetUnderTest`), including systems registered from the test tree
(``tests/systems/<system>/``). Adaptations to the port live in the kits, never in the clients.
"""
from __future__ import annotations

from connector_tasks.connectors import registry
from connector_tasks.domain.model import LedgerMaster
from connector_tasks.domain.ports import Role

#: The ledgers every suite journal uses (names of the payroll flow's defaults).
LEDGERS = [LedgerMaster("Salaries & Wages", "Indirect Expenses"),
           LedgerMaster("Salaries Payable", "Current Liabilities"),
           LedgerMaster("Payroll Taxes Payable", "Duties & Taxes")]


def factories() -> dict:
    """``{name: factory}`` of every registered ledger target with a contract kit."""
    out: dict = {}
    for spec in registry.playing(Role.LEDGER_TARGET):
        if spec.contract:
            out.update(spec.load("contract")())
    return out


FACTORIES = factories()
