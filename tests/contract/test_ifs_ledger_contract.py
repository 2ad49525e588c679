"""The shared LedgerTarget contract suite (tests/contract/test_ledger_targets.py), unchanged, run
against IFS Cloud: both voucher routes, each over real HTTP against the IFS emulator
(sandbox/ifs_cloud/kit.py). The suite's test functions are imported by name and run with this
module's ``tut`` fixture."""
from __future__ import annotations

import pytest

from sandbox.ifs_cloud.kit import ledger_contracts
from tests.contract.ledger_targets import LEDGERS
from tests.contract.test_ledger_targets import (  # noqa: F401  (collected here with this module's tut)
    test_a_second_run_that_asks_first_creates_nothing,
    test_an_unbalanced_entry_is_refused_before_any_request,
    test_ensure_ledgers_is_idempotent,
    test_find_journal_is_none_before_posting,
    test_post_journal_returns_an_id_that_find_journal_then_returns,
)

FACTORIES = ledger_contracts()


@pytest.fixture(params=sorted(FACTORIES))
def tut(request):
    """A TargetUnderTest per IFS voucher route, its ledgers checked first (as the suite does)."""
    with FACTORIES[request.param]() as t:
        t.target.ensure_ledgers(LEDGERS, [])
        yield t
