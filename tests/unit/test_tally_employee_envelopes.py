"""Employee cost-centre envelopes and the Alter verification (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/; https://help.tallysolutions.com/xml-integration/ "Response"; https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml)."""
import datetime as dt

import pytest

from connector_tasks.connectors.tallyprime import envelopes, replies
from connector_tasks.core.errors import MappingError, RejectedError
from connector_tasks.domain.model import EmployeeMaster

M = EmployeeMaster(key="uuid-1", name="Asha & Co (E1)", group="R&D", designation="Engineer",
                   joining_date=dt.date(2023, 4, 3), email="a@example.com")


def _centre(xml):
    env = replies.parse_xml(xml)["ENVELOPE"]
    assert env["HEADER"]["ID"] == "All Masters" and env["HEADER"]["TALLYREQUEST"] == "Import"
    assert env["BODY"]["DESC"]["STATICVARIABLES"]["SVCURRENTCOMPANY"] == "Demo"
    return env["BODY"]["DATA"]["TALLYMESSAGE"]["COSTCENTRE"]


def test_create_carries_payroll_fields_and_key():
    c = _centre(envelopes.employee_import(M, "Demo"))
    assert (c["@NAME"], c["@ACTION"], c["NAME"]) == ("Asha & Co (E1)", "Create", "Asha & Co (E1)")
    assert (c["PARENT"], c["CATEGORY"], c["FORPAYROLL"], c["ISEMPLOYEEGROUP"]) == ("R&D", "Employees", "Yes", "No")
    assert (c["MAILINGNAME"], c["DATEOFJOIN"], c["DESIGNATION"], c["EMAILID"]) == (
        "uuid-1", "20230403", "Engineer", "a@example.com")
    assert c["DEACTIVATIONDATE"] is None  # sent empty: nothing to deactivate
    assert "&amp;" in envelopes.employee_import(M, "Demo")


def test_alter_is_identified_by_current_name_and_renames_through_name_list():
    c = _centre(envelopes.employee_import(M, "Demo", action="Alter", current_name="Asha (E1)"))
    assert (c["@NAME"], c["@ACTION"]) == ("Asha (E1)", "Alter")
    assert c["NAME.LIST"] == {"NAME": "Asha & Co (E1)"} and "NAME" not in c
    with pytest.raises(MappingError):
        envelopes.employee_import(M, "Demo", action="Delete")
    with pytest.raises(MappingError):
        envelopes.employee_import(EmployeeMaster(key="k", name=" "), "Demo")


def test_groups_import_creates_category_then_employee_group():
    env = replies.parse_xml(envelopes.employee_groups_import("Demo", ["Employees"], [("Employees", "R&D")]))
    msg = env["ENVELOPE"]["BODY"]["DATA"]["TALLYMESSAGE"]
    assert list(k for k in msg if not k.startswith("@")) == ["COSTCATEGORY", "COSTCENTRE"]
    assert msg["COSTCENTRE"]["ISEMPLOYEEGROUP"] == "Yes" and msg["COSTCENTRE"]["FORPAYROLL"] == "Yes"
    assert msg["COSTCENTRE"]["CATEGORY"] == "Employees"


def test_lookup_filters_by_mailing_name():
    env = replies.parse_xml(envelopes.employee_lookup_export("Demo", "uuid-1"))
    tdl = env["ENVELOPE"]["BODY"]["DESC"]["TDL"]["TDLMESSAGE"]
    assert tdl["COLLECTION"]["TYPE"] == "CostCentre" and "MailingName" in tdl["COLLECTION"]["FETCH"]
    assert tdl["SYSTEM"]["#text"] == '$MailingName = "uuid-1"'


@pytest.mark.parametrize("counters,match", [
    (dict(altered=1), None),
    (dict(created=1), "duplicate cost centre"),
    (dict(created=1, altered=1), "duplicate cost centre"),
    (dict(ignored=1), "altered 0 of 1"),
    (dict(errors=1, line_errors=("Cost Centre 'X' does not exist!",)), "does not exist"),
    (dict(altered=1, exceptions=1), "without a message"),
])
def test_alter_must_alter_and_create_nothing(counters, match):
    result = replies.ImportResult(**counters)
    if match is None:
        replies.ensure_altered_only(result, 1, "cost centre")
    else:
        with pytest.raises(RejectedError, match=match):
            replies.ensure_altered_only(result, 1, "cost centre")


def test_employee_centre_reads_both_date_forms_and_root_parent():
    row = replies.parse_collection(
        '<ENVELOPE><BODY><DATA><COLLECTION><COSTCENTRE NAME="A"><NAME>A</NAME>'
        '<PARENT TYPE="String">&#4; Primary</PARENT><CATEGORY>Employees</CATEGORY>'
        '<MAILINGNAME.LIST TYPE="String"><MAILINGNAME>uuid-1</MAILINGNAME></MAILINGNAME.LIST>'
        '<FORPAYROLL>Yes</FORPAYROLL><DATEOFJOIN TYPE="Date">3-Apr-2023</DATEOFJOIN>'
        '<DEACTIVATIONDATE TYPE="Date"></DEACTIVATIONDATE><MASTERID> 9</MASTERID>'
        '</COSTCENTRE></COLLECTION></DATA></BODY></ENVELOPE>', "COSTCENTRE")[0]
    c = replies.employee_centre(row)
    assert c["key"] == "uuid-1" and c["parent"] == "" and c["for_payroll"] is True
    assert c["joining_date"] == dt.date(2023, 4, 3) and c["deactivation_date"] is None
    assert c["master_id"] == "9" and c["is_employee_group"] is False
