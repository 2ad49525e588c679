"""Acumatica wire format (https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp Model/JournalTransaction.cs), GL mapping resolution and the journal body."""
import datetime as dt
from decimal import Decimal

import pytest

from connector_tasks.connectors.acumatica import wire
from connector_tasks.connectors.acumatica.adapter import journal_fields, reference_nbr
from connector_tasks.connectors.acumatica.mapping import GlAccount, department_id, resolve_accounts
from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import JournalEntry, JournalLine


def test_wrap_and_unwrap_round_trip_with_details_and_linked_entities():
    plain = {"Module": "GL", "Hold": False, "id": "abc", "ContactInfo": {"Email": "a@b.c"},
             "Details": [{"Account": "60000", "DebitAmount": Decimal("2791.25"), "rowNumber": 1}]}
    wrapped = wire.wrap(plain)
    assert wrapped == {"Module": {"value": "GL"}, "Hold": {"value": False}, "id": "abc",
                       "ContactInfo": {"Email": {"value": "a@b.c"}},
                       "Details": [{"Account": {"value": "60000"}, "DebitAmount": {"value": Decimal("2791.25")},
                                    "rowNumber": 1}]}
    reply = dict(wrapped, _links={"self": "/x"}, custom={}, files=[], note={"value": "n"})
    assert wire.unwrap(reply) == dict(plain, note="n")
    assert wire.unwrap({"Description": {}}) == {"Description": None}


def test_float_money_is_refused_and_decimals_travel_digit_for_digit():
    with pytest.raises(TypeError):
        wire.wrap({"DebitAmount": 0.1})
    text = wire.dumps(wire.wrap({"DebitAmount": Decimal("130635.89"), "CreditAmount": Decimal("0.00")}))
    assert text == '{"DebitAmount":{"value":130635.89},"CreditAmount":{"value":0.00}}'
    back = wire.unwrap(wire.loads(text))
    assert back["DebitAmount"] == Decimal("130635.89") and isinstance(back["DebitAmount"], Decimal)


def test_error_body_parsing_per_field_per_line_and_exception_chain():
    echo = {"Module": {"value": "GL"}, "error": "Batch is out of balance.",
            "Details": [{"Account": {"value": "60000"}},
                        {"Account": {"value": "99999", "error": "'Account' cannot be found in the system."},
                         "Subaccount": {"value": "000-000"}}]}
    import json
    assert wire.error_messages(json.dumps(echo)) == [
        "Batch is out of balance.",
        "Details line 2: Account '99999': 'Account' cannot be found in the system."]
    nested = {"message": "An error has occurred.", "exceptionMessage": "Outer", "exceptionType": "X",
              "innerException": {"message": "An error has occurred.", "exceptionMessage": "Inner"}}
    assert wire.error_messages(json.dumps(nested)) == ["Outer", "Inner"]
    assert wire.error_messages("The custom error module does not recognize this error.") == [
        "The custom error module does not recognize this error."]
    assert wire.error_messages("") == []


def test_mapping_defaults_overrides_and_the_unmapped_ledger_named():
    got = resolve_accounts(["Salaries & Wages", "Bonus Expense"],
                           {"Bonus Expense": {"ledger": "61000", "subaccount": "100-000"}},
                           default_subaccount="200-000")
    assert got == {"Salaries & Wages": GlAccount("60000", "200-000"),
                   "Bonus Expense": GlAccount("61000", "100-000")}
    assert resolve_accounts(["Wages - Bonus"])["Wages - Bonus"] == GlAccount("60000", "000-000")
    with pytest.raises(MappingError, match="'Commission Payable' is not mapped"):
        resolve_accounts(["Salaries Payable", "Commission Payable"])
    with pytest.raises(MappingError, match="names no Acumatica account"):
        resolve_accounts(["X"], {"X": {"ledger": " "}})
    assert department_id("Customer Success") == "CUSTOMERSU"
    assert department_id("Sales", {"Sales": {"ledger": "SLS"}}) == "SLS"
    assert department_id(None) is None


def _entry(credit="100.00"):
    return JournalEntry(key="gusto-payroll-b50e611d-8f3d-4f24-b001-46675f7b5777", date=dt.date(2021, 2, 22),
                        narration="Payroll; Gusto payroll b50e611d-8f3d-4f24-b001-46675f7b5777",
                        source_ref="b50e611d-8f3d-4f24-b001-46675f7b5777",
                        lines=(JournalLine("Salaries & Wages", "gross_wages", debit=Decimal("100.00")),
                               JournalLine("Salaries Payable", "net_pay", credit=Decimal(credit))))


def test_journal_body_is_balanced_dated_and_carries_the_reference():
    accounts = resolve_accounts(["Salaries & Wages", "Salaries Payable"])
    f = journal_fields(_entry(), accounts, branch="HEADOFFICE", ledger="ACTUAL")
    assert f["Module"] == "GL" and f["TransactionDate"] == "2021-02-22T00:00:00"
    assert f["Description"].endswith("[gusto-payroll-b50e611d-8f3d-4f24-b001-46675f7b5777]")
    assert [(d["Account"], d["Subaccount"], d["DebitAmount"], d["CreditAmount"]) for d in f["Details"]] == [
        ("60000", "000-000", Decimal("100.00"), Decimal("0.00")),
        ("21000", "000-000", Decimal("0.00"), Decimal("100.00"))]
    assert {d["ReferenceNbr"] for d in f["Details"]} == {reference_nbr(_entry())} == {"b50e611d8f3d4f2"}
    with pytest.raises(MappingError, match="unbalanced"):
        journal_fields(_entry(credit="99.99"), accounts, branch="HEADOFFICE", ledger="ACTUAL")
