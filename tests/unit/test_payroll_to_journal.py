"""The payroll → journal flow: identities, lines, cost centres, refusals."""
import datetime as dt
from dataclasses import replace
from decimal import Decimal as D

import pytest

from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import Employee, EmployeeCompensation, PayrollRun, PayrollTotals
from connector_tasks.flows.mapping.payroll import PayrollMapping
from connector_tasks.flows.payroll_to_journal import build_journal, check_identities

# Gusto's published "Processed" example's totals (shared/specs, Payroll-Show-Object).
EXAMPLE_TOTALS = PayrollTotals(
    gross_pay=D("130635.89"), net_pay=D("81752.94"), employee_taxes=D("35546.72"),
    employer_taxes=D("6917.19"), employee_benefits_deductions=D("13336.23"),
    other_deductions=D("240.00"), employer_benefits=D("0.00"), reimbursements=D("0.00"),
    check_amount=D("2469.14"), company_debit=D("121747.71"), net_pay_debit=D("79283.80"),
    tax_debit=D("42463.91"), reimbursement_debit=D("0.00"), child_support_debit=D("0.00"))
EMPLOYEES = [Employee("e1", "Asha", "Rao", code="A1"), Employee("e2", "Ben", "Lim", code="B2")]


def run_with(totals=EXAMPLE_TOTALS, comps=None, processed=True):
    comps = comps if comps is not None else (
        EmployeeCompensation("e1", D("2791.25"), D("1953.31")),
        EmployeeCompensation("e2", D("2791.25"), D("1953.31")),
        EmployeeCompensation("e3", D("2791.25"), D("1953.31")))
    return PayrollRun(source_id="p-1", company_id="c-1", check_date=dt.date(2021, 2, 22),
                      period_start=dt.date(2021, 2, 1), period_end=dt.date(2021, 2, 15),
                      processed=processed, totals=totals, compensations=tuple(comps))


def lines_by_component(entry):
    return {l.component: l for l in entry.lines}


def test_example_totals_make_a_balanced_journal_from_the_totals():
    entry = build_journal(run_with(), PayrollMapping.from_overrides(), EMPLOYEES, source="gusto")
    assert entry.total_debit == entry.total_credit == D("137553.08")
    c = lines_by_component(entry)
    assert c["gross_wages"].debit == D("130635.89")
    assert c["employer_taxes"].debit == D("6917.19")
    assert c["net_pay"].credit == D("81752.94")
    assert c["payroll_taxes"].credit == D("42463.91")
    assert c["benefit_deductions"].credit == D("13096.23")
    assert c["other_deductions"].credit == D("240.00")
    assert "employer_benefits" not in c and "reimbursements" not in c  # zero lines are left out
    assert entry.date == dt.date(2021, 2, 22)
    assert "2021-02-01 to 2021-02-15" in entry.narration and "p-1" in entry.narration
    assert entry.key == "gusto-payroll-p-1"


def test_gross_wages_split_by_employee_with_unallocated_remainder_and_warning():
    entry = build_journal(run_with(), PayrollMapping.from_overrides(), EMPLOYEES, source="gusto")
    allocs = {a.cost_centre: a.amount for a in lines_by_component(entry)["gross_wages"].allocations}
    assert allocs["Asha Rao (A1)"] == D("2791.25")
    assert allocs["Ben Lim (B2)"] == D("2791.25")
    assert allocs["e3"] == D("2791.25")  # an employee the source did not list keeps its id
    assert allocs["Unallocated"] == D("130635.89") - 3 * D("2791.25")
    assert sum(allocs.values()) == D("130635.89")
    assert len(entry.warnings) == 1 and "Unallocated" in entry.warnings[0]


def test_fully_allocated_payroll_has_no_warning():
    totals = replace(EXAMPLE_TOTALS, gross_pay=D("100.00"), net_pay=D("60.00"), employee_taxes=D("30.00"),
                     employee_benefits_deductions=D("10.00"), other_deductions=D("0.00"),
                     employer_taxes=D("5.00"), tax_debit=D("35.00"), net_pay_debit=D("60.00"),
                     company_debit=D("95.00"))
    comps = [EmployeeCompensation("e1", D("60.00"), D("36.00")), EmployeeCompensation("e2", D("40.00"), D("24.00"))]
    entry = build_journal(run_with(totals, comps), PayrollMapping.from_overrides(), EMPLOYEES, source="gusto")
    assert entry.warnings == ()
    assert [a.cost_centre for a in entry.lines[0].allocations] == ["Asha Rao (A1)", "Ben Lim (B2)"]


def test_totals_that_do_not_reconcile_are_refused_naming_the_difference():
    bad = replace(EXAMPLE_TOTALS, net_pay=D("81752.93"))
    with pytest.raises(MappingError) as err:
        build_journal(run_with(bad), PayrollMapping.from_overrides(), source="gusto")
    assert "difference 0.01" in str(err.value)


def test_funding_identity_is_checked():
    bad = replace(EXAMPLE_TOTALS, company_debit=D("121747.00"))
    with pytest.raises(MappingError, match="difference -0.71"):
        check_identities(run_with(bad))


def test_unprocessed_payroll_is_refused():
    with pytest.raises(MappingError, match="not processed"):
        build_journal(run_with(processed=False), PayrollMapping.from_overrides(), source="gusto")


def test_employees_adding_up_to_more_than_the_totals_is_refused():
    comps = [EmployeeCompensation("e1", D("200000.00"), D("1.00"))]
    with pytest.raises(MappingError, match="more than the total gross pay"):
        build_journal(run_with(comps=comps), PayrollMapping.from_overrides(), source="gusto")


def test_excluded_employees_are_not_allocated():
    comps = [EmployeeCompensation("e1", D("2791.25"), D("1.00"), excluded=True)]
    entry = build_journal(run_with(comps=comps), PayrollMapping.from_overrides(), source="gusto")
    assert [a.cost_centre for a in entry.lines[0].allocations] == ["Unallocated"]


def test_mapping_overrides_change_ledgers_and_groups():
    mapping = PayrollMapping.from_overrides({"net_pay": {"ledger": "HDFC Salary A/c", "group": "Bank Accounts"}},
                                            cost_category="Employees")
    entry = build_journal(run_with(), mapping, source="gusto")
    assert lines_by_component(entry)["net_pay"].ledger == "HDFC Salary A/c"
    assert {a.cost_category for a in entry.lines[0].allocations} == {"Employees"}
    masters = {m.name: m for m in mapping.ledger_masters({l.ledger for l in entry.lines})}
    # a ledger a person mapped must exist in the books: the connector never creates it
    assert "HDFC Salary A/c" not in masters and mapping.user_ledgers == {"HDFC Salary A/c"}
    assert masters["Salaries & Wages"].cost_centres_on is True
    assert masters["Payroll Taxes Payable"].group == "Duties & Taxes"


def test_unknown_component_and_empty_ledger_are_refused():
    with pytest.raises(MappingError, match="unknown pay component"):
        PayrollMapping.from_overrides({"bonus_pool": {"ledger": "X"}})
    with pytest.raises(MappingError, match="names no ledger"):
        PayrollMapping.from_overrides({"net_pay": {"ledger": " "}})


def test_journal_round_trips_through_its_dict_exactly():
    from connector_tasks.domain.model import JournalEntry

    entry = build_journal(run_with(), PayrollMapping.from_overrides(), EMPLOYEES, source="gusto")
    again = JournalEntry.from_dict(entry.to_dict())
    assert again == entry


def test_earning_types_get_their_own_ledger_lines_allocated_to_who_earned_them():
    comps = (EmployeeCompensation("e1", D("2791.25"), D("1953.31"), earnings=(("Bonus", D("100.00")),)),
             EmployeeCompensation("e2", D("2791.25"), D("1953.31"),
                                  earnings=(("Bonus", D("50.00")), ("Gym Stipend", D("25.00")))))
    mapping = PayrollMapping.from_overrides(earning_overrides={"Gym Stipend": {"ledger": "Staff Welfare"}})
    entry = build_journal(run_with(comps=comps), mapping, EMPLOYEES, source="gusto")
    wages = [l for l in entry.lines if l.component == "gross_wages"]
    assert [(l.ledger, l.debit) for l in wages] == [
        ("Salaries & Wages", D("130635.89") - D("175.00")), ("Wages - Bonus", D("150.00")),
        ("Staff Welfare", D("25.00"))]
    bonus = {a.cost_centre: a.amount for a in wages[1].allocations}
    assert bonus == {"Asha Rao (A1)": D("100.00"), "Ben Lim (B2)": D("50.00")}
    base = {a.cost_centre: a.amount for a in wages[0].allocations}
    assert base["Asha Rao (A1)"] == D("2691.25") and base["Ben Lim (B2)"] == D("2716.25")
    assert entry.total_debit == entry.total_credit
    owned = {m.name: m for m in mapping.ledger_masters({l.ledger for l in entry.lines}, ["Bonus", "Gym Stipend"])}
    assert owned["Wages - Bonus"].group == "Indirect Expenses" and owned["Wages - Bonus"].cost_centres_on
    assert "Staff Welfare" not in owned  # mapped by a person: must exist already


def test_earnings_above_an_employees_gross_pay_are_refused():
    comps = (EmployeeCompensation("e1", D("10.00"), D("5.00"), earnings=(("Bonus", D("11.00")),)),)
    with pytest.raises(MappingError, match="more than their gross pay"):
        build_journal(run_with(comps=comps), PayrollMapping.from_overrides(), source="gusto")


def test_reversing_entry_nets_every_ledger_and_cost_centre_to_zero():
    entry = build_journal(run_with(), PayrollMapping.from_overrides(), EMPLOYEES, source="gusto")
    rev = entry.reversed(key=entry.key + "-reversal", date=dt.date(2021, 3, 1), narration="Reversal")
    net: dict = {}
    for e, sign in ((entry, 1), (rev, 1)):
        for l in e.lines:
            net[l.ledger] = net.get(l.ledger, D("0")) + sign * (l.debit - l.credit)
            for a in l.allocations:
                key = (l.ledger, a.cost_centre)
                net[key] = net.get(key, D("0")) + (a.amount if l.debit else -a.amount)
    assert set(net.values()) == {D("0.00")}
    assert rev.key == "gusto-payroll-p-1-reversal" and rev.source_ref == entry.source_ref
    assert rev.total_debit == entry.total_credit
