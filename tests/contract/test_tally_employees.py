"""Employees as payroll cost centres, ledger validation and the masters snapshot: TallyClient
against the TallyPrime emulator over real HTTP (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/; https://help.tallysolutions.com/xml-integration/ "Response"; https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml; https://help.tallysolutions.com/xml-integration/ (REMOTEID identification))."""
import datetime as dt
from decimal import Decimal

import pytest

from connector_tasks.connectors.tallyprime import TallyClient
from connector_tasks.connectors.tallyprime import envelopes, replies
from connector_tasks.core.errors import ConflictError, MappingError, RejectedError
from connector_tasks.domain.model import EmployeeMaster, JournalEntry, JournalLine, LedgerMaster

COMPANY = "Demo Trading Co"
KEY = "2a1c5b9e-8f1d-4c57-9d36-3e5f0b8c7a11"


def asha(**kw):
    base = dict(key=KEY, name="Asha Rao (E1)", group="Engineering", designation="Engineer",
                joining_date=dt.date(2023, 4, 3), email="asha@example.com")
    base.update(kw)
    return EmployeeMaster(**base)


def test_created_altered_twice_then_deactivated_is_one_master(tally):
    client = TallyClient(tally.url, COMPANY)
    first = client.sync_employee(asha())
    assert first["action"] == "created" and first["name"] == "Asha Rao (E1)"
    assert first["masters_created"] == ["Employees", "Engineering"]
    centres = tally.centres()
    group, emp = centres["Engineering"], centres["Asha Rao (E1)"]
    assert (group["is_employee_group"], group["for_payroll"], group["category"]) == (True, True, "Employees")
    assert emp["mailing_name"] == KEY and emp["parent"] == "Engineering" and emp["category"] == "Employees"
    assert (emp["for_payroll"], emp["is_employee_group"]) == (True, False)
    assert (emp["date_of_join"], emp["designation"], emp["email_id"]) == ("20230403", "Engineer", "asha@example.com")
    assert emp["deactivation_date"] == "" and emp["alter_count"] == 0
    assert first["master_id"] == str(emp["master_id"])

    # job change 1: designation; job change 2: moved to another employee group
    assert client.sync_employee(asha(designation="Senior Engineer"))["action"] == "altered"
    moved = client.sync_employee(asha(designation="Senior Engineer", group="Platform"))
    assert moved["action"] == "altered" and moved["changed"] == ["parent"]
    assert moved["masters_created"] == ["Platform"]
    # termination: a deactivation date (Tally masters are never deleted)
    gone = client.sync_employee(asha(designation="Senior Engineer", group="Platform",
                                     deactivation_date=dt.date(2024, 6, 30)))
    assert gone["action"] == "altered" and gone["changed"] == ["deactivation_date"]

    centres = tally.centres()
    employees = [c for c in centres.values() if c["mailing_name"] == KEY]
    assert len(employees) == 1
    emp = employees[0]
    assert emp["alter_count"] == 3 and str(emp["master_id"]) == first["master_id"]
    assert [h["action"] for h in emp["history"]] == ["create", "alter", "alter", "alter"]
    assert [h["designation"] for h in emp["history"]] == ["Engineer", "Senior Engineer",
                                                          "Senior Engineer", "Senior Engineer"]
    assert [h["parent"] for h in emp["history"]] == ["Engineering", "Engineering", "Platform", "Platform"]
    assert [h["deactivation_date"] for h in emp["history"]] == ["", "", "", "20240630"]
    alter_ids = [h["alter_id"] for h in emp["history"]]
    assert alter_ids == sorted(alter_ids) and len(set(alter_ids)) == 4  # ALTERID moves on each alter
    assert gone["master_id"] == first["master_id"]


def test_rename_keeps_one_master_found_by_key(tally):
    client = TallyClient(tally.url, COMPANY)
    created = client.sync_employee(asha())
    renamed = client.sync_employee(asha(name="Asha Rao-Iyer (E1)"))
    assert renamed == {**renamed, "action": "altered", "name": "Asha Rao-Iyer (E1)",
                       "master_id": created["master_id"], "changed": ["name"]}
    names = {n for n, c in tally.centres().items() if c["mailing_name"] == KEY}
    assert names == {"Asha Rao-Iyer (E1)"}
    # rehire: deactivation cleared again
    client.sync_employee(asha(name="Asha Rao-Iyer (E1)", deactivation_date=dt.date(2024, 1, 31)))
    back = client.sync_employee(asha(name="Asha Rao-Iyer (E1)"))
    assert back["action"] == "altered" and back["changed"] == ["deactivation_date"]
    assert tally.centres()["Asha Rao-Iyer (E1)"]["deactivation_date"] == ""


def test_unchanged_sends_no_import(tally):
    client = TallyClient(tally.url, COMPANY)
    client.sync_employee(asha())
    before = tally.state()["request_count"]
    result = client.sync_employee(asha())
    assert result["action"] == "unchanged" and result["changed"] == []
    assert tally.imports_since(before) == []
    assert tally.centres()["Asha Rao (E1)"]["alter_count"] == 0


def test_alter_answered_with_created_is_rejected(tally):
    client = TallyClient(tally.url, COMPANY)
    client.sync_employee(asha())
    tally.fault(alter_reports_created=1)
    with pytest.raises(RejectedError) as exc:
        client.sync_employee(asha(designation="Lead"))
    assert "CREATED=1" in exc.value.message and "duplicate cost centre" in exc.value.message
    assert not exc.value.retryable


def test_unclaimed_master_of_same_name_is_adopted_not_duplicated(tally):
    client = TallyClient(tally.url, COMPANY)
    # a cost centre made earlier for payroll cost allocations, carrying no key
    client.ensure_ledgers([], [("Primary Cost Category", "Asha Rao (E1)")])
    mid = str(tally.centres()["Asha Rao (E1)"]["master_id"])
    result = client.sync_employee(asha())
    assert result["action"] == "altered" and result["master_id"] == mid
    assert tally.centres()["Asha Rao (E1)"]["mailing_name"] == KEY
    other = EmployeeMaster(key="someone-else", name="Asha Rao (E1)")
    with pytest.raises(ConflictError, match="belongs to employee key"):
        client.sync_employee(other)


def test_emulator_cost_centre_alter_and_create_rules(tally):
    """Raw envelopes: Alter of an unknown name and Create of an existing name are refused
    with a LINEERROR; Alter by the NAME attribute renames and counts ALTERED."""
    client = TallyClient(tally.url, COMPANY)
    client.sync_employee(asha(group=None))
    r = replies.parse_import_reply(client.post(envelopes.employee_import(asha(group=None), COMPANY)))
    assert r.line_errors == ("Cost Centre 'Asha Rao (E1)' already exists!",) and r.created == 0
    ghost = envelopes.employee_import(asha(group=None), COMPANY, action="Alter", current_name="Nobody")
    r = replies.parse_import_reply(client.post(ghost))
    assert r.line_errors == ("Cost Centre 'Nobody' does not exist!",) and (r.created, r.altered) == (0, 0)
    with pytest.raises(RejectedError, match="does not exist"):
        replies.ensure_altered_only(r)
    found = client.find_employee(KEY)
    assert found["name"] == "Asha Rao (E1)" and found["parent"] == "" and found["key"] == KEY
    assert found["joining_date"] == dt.date(2023, 4, 3) and found["deactivation_date"] is None


def _entry(ledger):
    return JournalEntry("gusto-payroll-p9", dt.date(2024, 1, 31), "Payroll", (
        JournalLine("Salaries & Wages", "gross_wages", debit=Decimal("100.00")),
        JournalLine(ledger, "net_pay", credit=Decimal("100.00"))), "p9")


def test_unknown_user_ledger_refused_naming_it_before_anything_is_written(tally):
    client = TallyClient(tally.url, COMPANY)
    owned = [LedgerMaster("Salaries & Wages", "Indirect Expenses")]
    before = tally.state()["request_count"]
    with pytest.raises(MappingError) as exc:
        client.check_ledgers(_entry("Bank of Nowhere"), owned)
    assert "'Bank of Nowhere'" in exc.value.message and f"'{COMPANY}'" in exc.value.message
    assert "Salaries & Wages" not in exc.value.message  # owned: created by the connector
    assert not exc.value.retryable
    assert tally.imports_since(before) == []
    client.check_ledgers(_entry("cash"), owned)  # an existing ledger (case-insensitive) passes
    assert client.missing_ledgers(["Cash", "X", "X", "Salaries & Wages"], ["salaries & wages"]) == ["X"]


def test_masters_snapshot_lists_ledgers_centres_and_alter_ids(tally):
    client = TallyClient(tally.url, COMPANY)
    client.ensure_ledgers([LedgerMaster("TDS Payable", "Duties & Taxes")], [])
    client.sync_employee(asha())
    snap = client.masters_snapshot()
    assert snap["ledgers"]["TDS Payable"] == "Duties & Taxes" and snap["ledgers"]["Cash"] == "Cash-in-Hand"
    assert snap["ledgers"]["Profit & Loss A/c"] == ""
    assert {"Primary Cost Category", "Employees"} <= set(snap["cost_categories"])
    emp = next(c for c in snap["cost_centres"] if c["key"] == KEY)
    assert emp == {"name": "Asha Rao (E1)", "category": "Employees", "parent": "Engineering",
                   "for_payroll": True, "is_employee_group": False, "key": KEY}
    centre_alter_ids = [c["alter_id"] for c in tally.centres().values()]
    assert snap["alter_ids"]["master"] >= max(centre_alter_ids)
