"""IFS Cloud's side of a payroll journal without IFS: the company rules, the split into one
balanced journal per company (pro rata to gross wages), the typed connection settings and the
payload the prepare step stores (on a real store, SQLite and PostgreSQL)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from connector_tasks.connectors.ifs_cloud.companies import CompanyRules, apportion, split_payroll
from connector_tasks.connectors.ifs_cloud.settings import IfsSettings
from connector_tasks.core.errors import ConfigurationError, MappingError
from connector_tasks.domain.model import CostAllocation, Employee, EmployeeMaster, JournalEntry, JournalLine
from connector_tasks.flows.mapping.payroll import PayrollMapping
from connector_tasks.flows.payroll_to_journal import build_journal
from connector_tasks.flows.payroll_to_settlement import build_settlement
from tests.unit.test_payroll_to_journal import run_with

EMPLOYEES = [Employee("e1", "Asha", "Rao", code="A1", department="Operations"),
             Employee("e2", "Ben", "Lim", code="B2", department="Sales", title="Account Executive"),
             Employee("e3", "Cy", "Ode", code="C3", department="Finance")]
RULES = CompanyRules("10", by_department={"Sales": "30"})


def journal() -> JournalEntry:
    return build_journal(run_with(), PayrollMapping.from_overrides(), EMPLOYEES, source="src")


def test_apportion_adds_up_to_the_cent_and_gives_the_cents_to_the_largest_remainders():
    parts = apportion(D("100.00"), {"a": D("1"), "b": D("1"), "c": D("1")})
    assert list(parts.values()) == [D("33.34"), D("33.33"), D("33.33")]
    assert sum(apportion(D("6917.19"), {"x": D("2791.25"), "y": D("127844.64")}).values()) == D("6917.19")
    assert apportion(D("0.01"), {"a": D("1"), "b": D("3")}) == {"a": D("0.00"), "b": D("0.01")}
    with pytest.raises(ValueError):
        apportion(D("1.00"), {"a": D("0")})


def test_the_example_splits_into_one_balanced_journal_per_company_with_every_line_whole():
    entry = journal()
    parts = split_payroll(entry, RULES)
    assert list(parts) == ["10", "30"]
    for part in parts.values():
        assert part.total_debit == part.total_credit and part.key == entry.key and part.date == entry.date
    assert sum(p.total_debit for p in parts.values()) == entry.total_debit == D("137553.08")
    for component in {l.component for l in entry.lines}:
        whole = sum(l.amount for l in entry.lines if l.component == component)
        assert sum(l.amount for p in parts.values() for l in p.lines if l.component == component) == whole
    sales = parts["30"]
    wages = sum(l.debit for l in sales.lines if l.component == "gross_wages")
    assert wages == D("2791.25")                                  # Ben's gross pay
    taxes = next(l for l in sales.lines if l.component == "employer_taxes")
    assert abs(taxes.debit - D("6917.19") * wages / D("130635.89")) < D("0.01")
    assert {a.dimension("department") for l in sales.lines for a in l.allocations} == {"Sales"}


def test_a_reversal_splits_as_the_mirror_of_its_journal():
    entry = journal()
    reversal = entry.reversed(key=entry.key + "-reversal", date=entry.date, narration="r")
    parts, mirror = split_payroll(entry, RULES), split_payroll(reversal, RULES)
    assert list(mirror) == list(parts)
    for company in parts:
        assert [(l.ledger, l.debit, l.credit) for l in mirror[company].lines] == \
            [(l.ledger, l.credit, l.debit) for l in parts[company].lines]


def test_a_settlement_splits_in_the_accrual_s_shares_and_the_bank_takes_the_rounding():
    entry = journal()
    settlement = build_settlement(run_with(), PayrollMapping.from_overrides(), key="s", source_label="Src")
    parts = split_payroll(settlement, RULES, weights_from=entry)
    assert list(parts) == ["10", "30"]
    assert sum(l.credit for p in parts.values() for l in p.lines if l.component == "company_debit") == D("121747.71")
    for part in parts.values():
        assert part.total_debit == part.total_credit
    without = split_payroll(settlement, RULES)                     # no shares at all: the default company
    assert list(without) == ["10"] and without["10"].lines == settlement.lines


def test_rules_go_employee_then_job_then_department_then_default():
    rules = CompanyRules("10", by_employee={"B2": "40", "e3": "50"}, by_job={"Account Executive": "20"},
                         by_department={"Sales": "30", "Finance": "60"})

    def alloc(**dims):
        return CostAllocation("Employees", "x", D("1"), tuple(sorted(dims.items())))
    assert rules.company_of(alloc(employee="e2", code="B2", job="Account Executive", department="Sales")) == "40"
    assert rules.company_of(alloc(employee="e3", department="Finance")) == "50"
    assert rules.company_of(alloc(employee="e9", job="Account Executive", department="Sales")) == "20"
    assert rules.company_of(alloc(employee="e9", department="Sales")) == "30"
    assert rules.company_of(CostAllocation("Employees", "Unallocated", D("1"))) == "10"
    assert rules.company_of_master(EmployeeMaster(key="e7", name="N", group="Finance")) == "60"
    assert rules.companies == ["10", "20", "30", "40", "50", "60"]


def _three_way(wages, credits) -> JournalEntry:
    shares = (("a", "Sales"), ("b", "Operations"), ("c", None))
    return JournalEntry(key="k", date=dt.date(2021, 2, 22), narration="n", source_ref="s", lines=(
        JournalLine("W", "gross_wages", debit=sum(wages, D("0")), allocations=tuple(
            CostAllocation("E", name, amount, (("department", dep),) if dep else ())
            for (name, dep), amount in zip(shares, wages))),
        *(JournalLine(ledger, component, credit=amount) for (ledger, component), amount in
          zip((("P", "net_pay"), ("T", "payroll_taxes"), ("B", "benefit_deductions")), credits))))


def test_net_pay_absorbs_a_company_s_rounding_and_still_totals_the_source_s_figure():
    rules = CompanyRules("10", by_department={"Sales": "30", "Operations": "20"})
    entry = _three_way([D("584.77"), D("350.08"), D("946.73")], [D("599.69"), D("774.84"), D("507.05")])
    parts = split_payroll(entry, rules)
    net = {c: next(l.credit for l in p.lines if l.component == "net_pay") for c, p in parts.items()}
    pro_rata = apportion(D("599.69"), {"30": D("584.77"), "20": D("350.08"), "10": D("946.73")})
    assert pro_rata == {"30": D("186.37"), "20": D("111.58"), "10": D("301.74")}
    assert net == {"10": D("301.73"), "20": D("111.58"), "30": D("186.38")}      # a cent moved, in balance
    assert sum(net.values()) == D("599.69")
    for part in parts.values():
        assert part.total_debit == part.total_credit
        assert sum(a.amount for a in part.lines[1].allocations) == part.lines[1].amount


def test_a_company_that_cannot_absorb_its_rounding_is_refused():
    rules = CompanyRules("10", by_department={"Sales": "30"})
    entry = _three_way([D("0.01")] * 3, [D("0.01")] * 3)       # every tied cent goes to the first share
    with pytest.raises(MappingError, match=r"company 10's share of gross_wages \(0\.02\) cannot absorb"):
        split_payroll(entry, rules)


def test_settings_are_checked_when_written():
    ok = IfsSettings.from_dict({"system_url": "https://acme.ifs.cloud", "namespace": "acme", "default_company": "10",
                                "company_by_department": {"Sales": "30"}, "company_by_job": {"Driver": "20"}})
    assert ok.companies() == ["10", "20", "30"] and ok.rate_limit == {"per_second": 10}
    assert ok.require("c") is ok
    for bad, word in (({"system_url": "https://acme.ifs.cloud/main"}, "system_url"),
                      ({"cost_centre_code_part": "K"}, "cost_centre_code_part"),
                      ({"rate_limit": {"per_fortnight": 3}}, "per_fortnight"),
                      ({"projections": {"nonsense": "X"}}, "nonsense"),
                      ({"company_by_department": {"Sales": ""}}, "company_by_department"),
                      ({"voucher_route": "fax"}, "voucher_route"),
                      ({"employee_sync": "payslip"}, "employee_sync"),
                      ({"unknown_key": 1}, "unknown_key")):
        with pytest.raises(ConfigurationError, match=word):
            IfsSettings.from_dict(bad)
    with pytest.raises(ConfigurationError, match="default_company"):
        IfsSettings.from_dict({"system_url": "https://a.b", "namespace": "n"}).require("c")


def test_the_payload_carries_the_split_the_accounts_and_the_cost_centres(database_url):
    from connector_tasks.connectors.ifs_cloud import target
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import Connection

    with session_scope(database_url) as s:
        conn = Connection(name="ifs", system="ifs_cloud", account="acme", status="connected", settings={
            "system_url": "https://acme.ifs.cloud", "namespace": "acme", "default_company": "10",
            "company_by_department": {"Sales": "30"}, "cost_centre_by_department": {"Sales": "300"},
            "bank_account": "1010", "settlement": False})
        s.add(conn)
        s.flush()
        repo.set_mapping(s, conn.id, "ifs_account", "Salaries Payable", "2110", {"code_parts": {"C": "PRJ1"}})
        entry = journal()
        payload = target.journal_payload(s, conn, entry, [])
        assert payload["dispatch"] == {"task": "ifs_cloud.post_vouchers", "queue": "ifs_cloud"}
        assert list(payload["companies"]) == ["10", "30"] and payload["entry"] == entry.to_dict()
        assert payload["accounts"]["Salaries Payable"] == {"account": "2110", "cost_centre": False,
                                                           "code_parts": {"C": "PRJ1"}}
        assert payload["cost_centres"]["by_department"] == {"Sales": "300"}
        settlement = build_settlement(run_with(), PayrollMapping.from_overrides(), key="s", source_label="Src")
        paid = target.settlement_payload(s, conn, settlement, [], entry)
        assert paid["accounts"]["Payroll Bank Account"]["account"] == "1010"      # the bank_account setting
        assert target.books_settlements(conn) is False
        master = EmployeeMaster(key="e2", name="Ben Lim (B2)", group="Sales", code="B2")
        assert target.employee_payload(s, conn, master)["company"] == "30"
        repo.set_mapping(s, conn.id, "ifs_account", "Salaries Payable", "", {})
        with pytest.raises(MappingError, match="Salaries Payable"):
            target.journal_payload(s, conn, entry, [])
