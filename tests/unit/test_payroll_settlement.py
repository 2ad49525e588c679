"""The settlement entry of a funded payroll (flows/payroll_to_settlement.py), and the employee
dimensions a payroll journal's cost allocations carry (flows/payroll_to_journal.py)."""
import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import Employee, JournalEntry
from connector_tasks.flows.catalog import get_flow
from connector_tasks.flows.mapping.payroll import PayrollMapping
from connector_tasks.flows.payroll_to_journal import build_journal
from connector_tasks.flows.payroll_to_settlement import FLOW, build_settlement, settlement_key
from tests.unit.test_payroll_to_journal import run_with as example_run

D = Decimal


def test_the_published_example_settles_what_the_company_debit_paid():
    run = replace(example_run(), debit_date=dt.date(2021, 2, 18))
    entry = build_settlement(run, PayrollMapping.from_overrides(), key="k-settlement", source_label="Source")
    assert [(l.ledger, l.component, l.debit, l.credit) for l in entry.lines] == [
        ("Salaries Payable", "net_pay", D("79283.80"), D("0.00")),
        ("Payroll Taxes Payable", "payroll_taxes", D("42463.91"), D("0.00")),
        ("Payroll Bank Account", "company_debit", D("0.00"), D("121747.71"))]
    assert entry.date == dt.date(2021, 2, 18) and entry.key == "k-settlement" and entry.source_ref == run.source_id
    assert entry.total_debit == entry.total_credit == D("121747.71")
    assert "2469.14 of net pay" in entry.warnings[0] and "13096.23 of benefit" in entry.warnings[1]
    assert "company debit of 121747.71 on 2021-02-18" in entry.narration


def test_without_a_debit_date_the_check_date_and_a_renamed_bank_ledger():
    mapping = PayrollMapping.from_overrides({"company_debit": {"ledger": "HDFC Current A/c"}})
    entry = build_settlement(example_run(), mapping, key="k", source_label="Source")
    assert entry.date == dt.date(2021, 2, 22) and entry.lines[-1].ledger == "HDFC Current A/c"


def test_debits_that_do_not_reconcile_are_refused_naming_the_difference():
    run = example_run()
    bad = replace(run, totals=replace(run.totals, company_debit=run.totals.company_debit + D("0.01")))
    with pytest.raises(MappingError, match=r"difference 0\.01"):
        build_settlement(bad, PayrollMapping.from_overrides(), key="k", source_label="Source")


def test_nothing_debited_is_nothing_to_settle():
    run = example_run()
    zero = replace(run, totals=replace(run.totals, company_debit=D("0.00"), net_pay_debit=D("0.00"),
                                       tax_debit=D("0.00")))
    assert build_settlement(zero, PayrollMapping.from_overrides(), key="k", source_label="Source") is None


def test_the_settlement_flow_is_keyed_after_the_journal():
    flow = get_flow(FLOW)
    assert flow.key("src", "p1") == "src-payroll-p1-settlement" == settlement_key("src-payroll-p1")
    assert (flow.source_role.value, flow.target_role.value) == ("payroll_source", "ledger_target")


def test_allocations_carry_the_employee_dimensions_and_survive_the_payload():
    run = example_run()
    comp = run.compensations[0]
    maya = Employee(comp.employee_id, "Maya", "Patel", code="a1f001", department="Operations", title="Lead")
    # run_with()'s employees e1..e3: e1 known with a department, e2 and e3 unknown
    entry = build_journal(run, PayrollMapping.from_overrides(), [maya], source="src")
    allocs = [a for line in entry.lines for a in line.allocations]
    mine = [a for a in allocs if a.cost_centre == "Maya Patel (a1f001)"]
    assert mine and all(a.dimensions == (("code", "a1f001"), ("department", "Operations"),
                                         ("employee", comp.employee_id), ("job", "Lead")) for a in mine)
    assert mine[0].dimension("department") == "Operations" and mine[0].dimension("nothing") is None
    unknown = [a for a in allocs if a.cost_centre == run.compensations[1].employee_id]
    assert unknown and unknown[0].dimensions == (("employee", run.compensations[1].employee_id),)
    assert [a.dimensions for a in allocs if a.cost_centre == "Unallocated"] == [()]
    assert JournalEntry.from_dict(entry.to_dict()) == entry
    plain = entry.to_dict()
    for line in plain["lines"]:
        for a in line["allocations"]:
            a.pop("dimensions", None)       # a payload stored before dimensions existed still reads
    assert JournalEntry.from_dict(plain).total_debit == entry.total_debit


def test_excluded_employees_carry_nothing():
    run = example_run()
    run = replace(run, compensations=(replace(run.compensations[0], excluded=True), *run.compensations[1:]))
    entry = build_journal(run, PayrollMapping.from_overrides(), [], source="src")
    ids = {a.dimension("employee") for line in entry.lines for a in line.allocations}
    assert ids == {"e2", "e3", None}                     # None: the Unallocated remainder
