"""IFS Cloud's target side against the IFS emulator over real HTTP: one voucher per company,
every company checked before the first write, a lost answer between IFS's write and our record,
the currency check; employees as customers and as project resources (matched by e-mail, then
number, never duplicated, inactive on termination, a stale ETag read again)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
import requests

from connector_tasks.connectors.ifs_cloud.adapter import IfsLedgerTarget, post_per_company
from connector_tasks.connectors.ifs_cloud.client import IfsClient
from connector_tasks.connectors.ifs_cloud.companies import CompanyRules, split_payroll
from connector_tasks.connectors.ifs_cloud.employees import resource_id, sync_customer, sync_resource
from connector_tasks.connectors.ifs_cloud.mapping import resolve_cost_centres
from connector_tasks.connectors.ifs_cloud.vouchers import voucher_route
from connector_tasks.core.errors import MappingError, TransientApiError
from connector_tasks.domain.model import CostAllocation, EmployeeMaster, JournalEntry, JournalLine
from sandbox.ifs_cloud.kit import CLIENT_ID, CLIENT_SECRET, NAMESPACE, demo_seed
from sandbox.ifs_cloud.server import serve

DATE = dt.date(2021, 2, 22)


class Ifs:
    """A running emulator (the demo's seed: companies 10, 20 (CAD) and 30) and a client."""

    def __init__(self):
        self.server, self.base = serve("127.0.0.1", 0, {"seed": demo_seed()}, env="test")
        self.client = IfsClient(self.base, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, namespace=NAMESPACE,
                                retry_initial=0.05)

    def admin(self, what: str, body=None) -> dict:
        r = requests.post(f"{self.base}/_sandbox/{what}", json=body, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def state(self) -> dict:
        return requests.get(f"{self.base}/_sandbox/state", timeout=10).json()

    def writes(self) -> list[dict]:
        log = requests.get(f"{self.base}/_sandbox/requests", timeout=10).json()
        return [e for e in log if e["method"] != "GET" and not e["path"].startswith("/auth/")]

    def targets(self, companies, currency: str | None = "USD", centres=None) -> dict[str, IfsLedgerTarget]:
        centres = centres or resolve_cost_centres(by_department={"Sales": "300"})
        return {c: IfsLedgerTarget(voucher_route(self.client), c, cost_centres=centres, currency=currency)
                for c in companies}


@pytest.fixture
def ifs():
    env = Ifs()
    yield env
    env.client.session.close()
    env.server.shutdown()


def parts(key: str, rules: CompanyRules = CompanyRules("10", by_department={"Sales": "30"})) -> dict:
    entry = JournalEntry(key=key, date=DATE, narration="payroll", source_ref="p", lines=(
        JournalLine("Salaries & Wages", "gross_wages", debit=D("1000.00"), allocations=(
            CostAllocation("Employees", "Ann (a1)", D("600.00"), (("department", "Sales"),)),
            CostAllocation("Employees", "Bo (b2)", D("400.00"), (("department", "Operations"),)))),
        JournalLine("Salaries Payable", "net_pay", credit=D("812.34")),
        JournalLine("Payroll Taxes Payable", "payroll_taxes", credit=D("187.66"))))
    return split_payroll(entry, rules)


def test_one_voucher_per_company_then_a_second_run_finds_them_and_writes_nothing(ifs):
    split = parts("src-payroll-1")
    ids, already = post_per_company(ifs.targets(split), split)
    assert list(ids) == ["10", "30"] and already == []
    rows = ifs.state()["tables"]["voucher_row"]
    thirty = [r for r in rows if r["Company"] == "30"]
    assert {r["CodeB"] for r in thirty if r["Account"] == "6000"} == {"300"}
    assert sum(D(str(r["DebetAmount"] or 0)) for r in thirty) == D("600.00")
    writes = len(ifs.writes())
    assert post_per_company(ifs.targets(split), split) == (ids, ["10", "30"])
    assert len(ifs.writes()) == writes


def test_every_company_is_checked_before_the_first_write(ifs):
    ifs.admin("faults", {"kind": "period", "company": "30", "year": 2021, "period": 2, "status": "Closed"})
    wrong = resolve_cost_centres(by_department={"Sales": "300", "Operations": "999"})
    split = parts("src-payroll-2")
    with pytest.raises(MappingError) as info:
        post_per_company(ifs.targets(split, centres=wrong), split)
    text = str(info.value)
    assert "code part B value 999 does not exist in company 10" in text
    assert "accounting period 2021-02 of company 30 (ledger 00) is Closed" in text
    assert ifs.writes() == []                                   # neither company got anything
    ifs.admin("faults", {"kind": "period", "company": "30", "year": 2021, "period": 2, "status": "Open"})
    ids, _ = post_per_company(ifs.targets(split), split)
    assert list(ids) == ["10", "30"]


def test_an_answer_lost_after_ifs_wrote_names_the_company_and_the_next_attempt_writes_nothing_twice(ifs):
    split = parts("src-payroll-3")
    ifs.admin("faults", {"kind": "drop_response", "method": "POST", "path_contains": "Company='30'"})
    with pytest.raises(TransientApiError) as info:
        post_per_company(ifs.targets(split), split)
    assert str(info.value).startswith("[ifs_cloud] company 30: ") and "vouchers already in IFS: 10:Z-2021-1" in str(info.value)
    ids, already = post_per_company(ifs.targets(split), split)   # as a retried task would
    assert ids == {"10": "Z-2021-1", "30": "Z-2021-1"} and already == ["10", "30"]
    assert ifs.state()["counters"]["vouchers_created"] == 2


def test_a_company_keeping_its_books_in_another_currency_is_refused(ifs):
    split = parts("src-payroll-4", CompanyRules("10", by_department={"Sales": "20"}))   # 20 is in CAD
    with pytest.raises(MappingError, match="IFS company 20 keeps its books in CAD, the journal is in USD"):
        post_per_company(ifs.targets(split), split)
    assert ifs.writes() == []


def master(**over) -> EmployeeMaster:
    base = dict(key="u-1", name="Sara Kim (sk0001)", group="Sales", designation="Analyst", code="sk0001",
                email="sara.kim@example.com", joining_date=dt.date(2024, 1, 8))
    return EmployeeMaster(**{**base, **over})


def test_a_customer_is_created_found_altered_deactivated_and_never_duplicated(ifs):
    cid, action = sync_customer(ifs.client, master())
    assert action == "created"
    assert sync_customer(ifs.client, master()) == (cid, "unchanged")                   # by e-mail
    assert sync_customer(ifs.client, master(email=None)) == (cid, "unchanged")         # by employee number
    ifs.admin("faults", {"kind": "stale_etag", "method": "PATCH", "path_contains": "CustomerInfoSet"})
    assert sync_customer(ifs.client, master(name="Sara Kim-Lee (sk0001)"), known_id=cid) == (cid, "altered")
    assert ifs.state()["counters"]["precondition_failures"] == 1                       # 412, read again, done
    gone = master(name="Sara Kim-Lee (sk0001)", deactivation_date=dt.date(2024, 3, 31))
    assert sync_customer(ifs.client, gone, known_id=cid) == (cid, "altered")
    customers = [c for c in ifs.state()["tables"]["customer"] if c.get("Cf_EmployeeNo") == "sk0001"]
    assert [(c["CustomerId"], c["Name"], c["Cf_Active"]) for c in customers] == [(cid, "Sara Kim-Lee (sk0001)", False)]
    assert sync_customer(ifs.client, master())[1] == "altered"                         # rehired: active again
    comms = [m["Value"] for m in ifs.state()["tables"]["customer_comm"] if m["CustomerId"] == cid]
    assert comms == ["sara.kim@example.com"]


def test_a_customer_matched_by_e_mail_keeps_its_employee_number(ifs):
    cid, action = sync_customer(ifs.client, master(key="u-2", name="Existing Employee (ee01)", code="ee01",
                                                   email="existing.employee@example.com"))
    assert (cid, action) == ("1001", "altered")
    [seeded] = [c for c in ifs.state()["tables"]["customer"] if c["CustomerId"] == "1001"]
    assert seeded["Cf_EmployeeNo"] == "E-0001" and seeded["Name"] == "Existing Employee (ee01)"


def test_a_project_resource_lives_in_its_company_and_goes_inactive_and_back(ifs):
    rid, action = sync_resource(ifs.client, master(), "30")
    assert (rid, action) == ("30:SK0001", "created")
    assert sync_resource(ifs.client, master(), "30", known_id=rid) == (rid, "unchanged")
    assert sync_resource(ifs.client, master(deactivation_date=dt.date(2024, 3, 31)), "30") == (rid, "altered")
    [res] = [r for r in ifs.state()["tables"]["project_resource"] if r["ResourceId"] == "SK0001"]
    assert (res["Company"], res["Objstate"], res["EmpNo"]) == ("30", "Inactive", "sk0001")
    assert sync_resource(ifs.client, master(email="sara@example.com"), "30") == (rid, "altered")   # by number
    [res] = [r for r in ifs.state()["tables"]["project_resource"] if r["ResourceId"] == "SK0001"]
    assert (res["Objstate"], res["Email"]) == ("Active", "sara@example.com")
    long_code = master(key="u-9", code="x" * 30, email=None)
    assert resource_id(long_code).startswith("ML") and len(resource_id(long_code)) == 20
