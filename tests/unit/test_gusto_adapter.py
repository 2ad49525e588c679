"""Gusto JSON → domain objects, on the spec's published "Processed" payroll example."""
import copy
import datetime as dt
from decimal import Decimal

import pytest

from connector_tasks.connectors.gusto.adapter import employee_from_gusto, payroll_from_gusto
from connector_tasks.core.client import parse_json
from connector_tasks.core.oauth import TokenSet
from connector_tasks.core.errors import MappingError
from sandbox.gusto.app import EXAMPLE_PAYROLL_FILE, create_app


@pytest.fixture
def example():
    return parse_json(EXAMPLE_PAYROLL_FILE.read_text())


def test_parse_json_gives_decimals_not_floats(example):
    amounts = [t["amount"] for t in example["payroll_taxes"]]
    assert amounts == [Decimal("3546.72"), Decimal("786.0"), Decimal("786.0"), Decimal("132.51")]
    assert all(type(a) is Decimal for a in amounts)
    assert type(example["employee_compensations"][2]["taxes"][0]["amount"]) is Decimal


def test_example_payroll_maps_exactly(example):
    run = payroll_from_gusto(example)
    assert run.source_id == "b50e611d-8f3d-4f24-b001-46675f7b5777"
    assert run.company_id == "6bf7807c-a5a0-4f4d-b2e7-3fbb4b2299fb"
    assert (run.check_date, run.period_start, run.period_end) == (
        dt.date(2021, 2, 22), dt.date(2021, 2, 1), dt.date(2021, 2, 15))
    assert run.processed is True and run.off_cycle is False and run.version is None
    t = run.totals
    assert t.gross_pay == Decimal("130635.89") and t.net_pay == Decimal("81752.94")
    assert t.employee_taxes == Decimal("35546.72") and t.employer_taxes == Decimal("6917.19")
    assert t.employee_benefits_deductions == Decimal("13336.23") and t.other_deductions == Decimal("240.00")
    assert t.employer_benefits == Decimal("0.00") and t.reimbursements == Decimal("0.00")
    assert t.company_debit == Decimal("121747.71") and t.net_pay_debit == Decimal("79283.80")
    assert t.tax_debit == Decimal("42463.91") and t.check_amount == Decimal("2469.14")
    assert all(type(v) is Decimal for v in vars(t).values())
    assert [c.employee_id for c in run.compensations] == [
        "187412e1-3dbe-491a-bb2f-2f40323a7067", "187412e1-3dbe-491a-bb2f-2f40323a7012",
        "187412e1-3dbe-491a-bb2f-2f40323a7781"]
    assert {(c.gross_pay, c.net_pay, c.excluded) for c in run.compensations} == {
        (Decimal("2791.25"), Decimal("1953.31"), False)}


def test_benefits_total_is_employer_benefits(example):
    example["totals"]["benefits"] = "150.25"
    assert payroll_from_gusto(example).totals.employer_benefits == Decimal("150.25")


def test_uuid_fallback_and_number_amounts(example):
    del example["payroll_uuid"]
    example["uuid"] = "u-1"
    example["employee_compensations"][0]["gross_pay"] = Decimal("2791.25")
    run = payroll_from_gusto(example)
    assert run.source_id == "u-1" and run.compensations[0].gross_pay == Decimal("2791.25")


def test_float_amount_is_refused(example):
    example["employee_compensations"][0]["gross_pay"] = 2791.25
    with pytest.raises(TypeError):
        payroll_from_gusto(example)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(processed=False), "not processed"),
    (lambda d: d.pop("totals"), "no totals"),
    (lambda d: d["totals"].pop("gross_pay"), "gross_pay"),
    (lambda d: d.update(check_date="22/02/2021"), "check_date"),
    (lambda d: d["totals"].update(net_pay="12,00"), "net_pay"),
    (lambda d: d.pop("payroll_uuid"), "payroll_uuid"),
])
def test_bad_payrolls_raise_mapping_error(example, mutate, message):
    data = copy.deepcopy(example)
    mutate(data)
    with pytest.raises(MappingError) as err:
        payroll_from_gusto(data)
    assert message in str(err.value)


def test_employee_from_seeded_employees():
    world = create_app().extensions["gusto"]
    emp = employee_from_gusto(world.employees["187412e1-3dbe-491a-bb2f-2f40323a7781"])
    assert (emp.first_name, emp.last_name, emp.code, emp.title, emp.department) == (
        "Lucia", "Romero", "a1f003", "Bookkeeper", "Finance")
    assert emp.hire_date == dt.date(2018, 7, 23) and emp.terminated is True


def test_employee_primary_job_and_blank_title():
    data = {"uuid": "e1", "first_name": "A", "last_name": "B", "employee_code": "",
            "jobs": [{"uuid": "j1", "primary": False, "title": "Old", "hire_date": "2010-01-01"},
                     {"uuid": "j2", "primary": True, "title": "", "hire_date": "2020-05-06"}]}
    emp = employee_from_gusto(data)
    assert emp.title is None and emp.hire_date == dt.date(2020, 5, 6) and emp.code is None
    assert employee_from_gusto({"uuid": "e2", "jobs": []}).hire_date is None
    with pytest.raises(MappingError):
        employee_from_gusto({"first_name": "x"})


def test_tokenset_expiry_margin():
    t = TokenSet("a", "r", expires_at=1000.0)
    assert not t.expired(now=939.0) and t.expired(now=940.0)
    ts = TokenSet.from_response({"access_token": "a", "refresh_token": "r", "created_at": 100,
                                 "expires_in": 7200})
    assert ts.expires_at == 7300.0
