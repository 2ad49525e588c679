"""Employee → headcount master: the fields a book of accounts keeps, and its dict form."""
import datetime as dt

from connector_tasks.connectors.gusto.adapter import employee_from_gusto
from connector_tasks.domain.model import EmployeeMaster
from connector_tasks.flows.employee_to_master import build_master


def gusto_employee(**over):
    data = {"uuid": "u-1", "first_name": "Maya", "last_name": "Patel", "employee_code": "a1f001",
            "email": "maya@example.com", "department": "Operations", "terminated": False,
            "jobs": [{"primary": True, "title": "Warehouse Lead", "hire_date": "2019-03-04"}],
            "terminations": []}
    data.update(over)
    return data


def test_a_hire_becomes_a_master_named_like_its_payroll_cost_centre():
    m = build_master(employee_from_gusto(gusto_employee()))
    assert m == EmployeeMaster(key="u-1", name="Maya Patel (a1f001)", category="Employees", group="Operations",
                               designation="Warehouse Lead", joining_date=dt.date(2019, 3, 4),
                               deactivation_date=None, email="maya@example.com", code="a1f001")
    assert EmployeeMaster.from_dict(m.to_dict()) == m


def test_an_active_termination_sets_the_deactivation_date_and_a_cancelled_one_does_not():
    terms = [{"active": False, "effective_date": "2020-01-31"}, {"active": True, "effective_date": "2023-05-31"}]
    m = build_master(employee_from_gusto(gusto_employee(terminated=True, terminations=terms)), "Staff")
    assert m.deactivation_date == dt.date(2023, 5, 31) and m.category == "Staff"
    rehired = gusto_employee(terminations=[{"active": False, "effective_date": "2023-05-31"}])
    assert build_master(employee_from_gusto(rehired)).deactivation_date is None


def test_no_department_means_the_category_root():
    assert build_master(employee_from_gusto(gusto_employee(department=None))).group is None
