"""The LedgerTarget port's promises, checked the same way for every ledger target
(factories in tests/contract/ledger_targets.py), each against its emulator over real HTTP."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import JournalEntry, JournalLine
from tests.contract.ledger_targets import FACTORIES, LEDGERS


@pytest.fixture(params=sorted(FACTORIES))
def tut(request):
    with FACTORIES[request.param]() as t:
        t.target.ensure_ledgers(LEDGERS, [])
        yield t


def entry(key: str, net: str = "812.34") -> JournalEntry:
    gross = Decimal("1000.00")
    return JournalEntry(key=key, date=dt.date(2024, 1, 31), narration=f"Payroll Jan 2024 ({key})",
                        source_ref=key.rsplit("-", 1)[-1], lines=(
                            JournalLine("Salaries & Wages", "gross_wages", debit=gross),
                            JournalLine("Salaries Payable", "net_pay", credit=Decimal(net)),
                            JournalLine("Payroll Taxes Payable", "payroll_taxes",
                                        credit=gross - Decimal("812.34"))))


def new_key() -> str:
    return f"contract-payroll-{uuid.uuid4().hex[:12]}"


def test_find_journal_is_none_before_posting(tut):
    assert tut.target.find_journal(new_key()) is None


def test_post_journal_returns_an_id_that_find_journal_then_returns(tut):
    key = new_key()
    posted = tut.target.post_journal(entry(key))
    assert isinstance(posted, str) and posted
    assert tut.target.find_journal(key) == posted
    assert tut.journals_with_key(key) == 1


def test_ensure_ledgers_is_idempotent(tut):
    assert tut.target.ensure_ledgers(LEDGERS, []) == []
    assert tut.target.ensure_ledgers(LEDGERS, []) == []


def test_a_second_run_that_asks_first_creates_nothing(tut):
    key = new_key()

    def run() -> str:
        return tut.target.find_journal(key) or tut.target.post_journal(entry(key))

    first, second = run(), run()
    assert first == second
    assert tut.journals_with_key(key) == 1


def test_an_unbalanced_entry_is_refused_before_any_request(tut):
    before = tut.requests()
    with pytest.raises(MappingError, match="unbalanced"):
        tut.target.post_journal(entry(new_key(), net="812.33"))
    assert tut.requests() == before


def test_the_suite_runs_against_every_registered_ledger_target_with_a_kit():
    """A ledger target added as one folder (tests/systems/fakeledger) is in the suite with no
    other change, beside the built-in ones."""
    from connector_tasks.connectors import registry
    from connector_tasks.domain.ports import Role

    assert "fakeledger" in FACTORIES
    kits = {s.name for s in registry.playing(Role.LEDGER_TARGET) if s.contract}
    assert {"tallyprime", "acumatica", "ifs_cloud", "fakeledger"} <= kits
    assert {"ifs_cloud", "ifs_cloud-assistant"} <= set(FACTORIES)   # both voucher routes
