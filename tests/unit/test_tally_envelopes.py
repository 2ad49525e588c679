"""Envelope builders for TallyPrime (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/; https://github.com/dhananjay1405/tally-database-loader processTdlOutputManipulation; https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml)."""
import datetime as dt
from decimal import Decimal

import pytest

from connector_tasks.connectors.tallyprime import envelopes
from connector_tasks.connectors.tallyprime.replies import as_list, decode_body, parse_xml
from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import CostAllocation, JournalEntry, JournalLine, LedgerMaster


def _entry(credit="1000.00", narration="Payroll 2024-01 & bonus"):
    return JournalEntry(
        key="gusto-payroll-abc-v1", date=dt.date(2024, 1, 31), narration=narration,
        source_ref="payroll/abc",
        lines=(
            JournalLine("Salaries", "gross_wages", debit=Decimal("1000.00"), allocations=(
                CostAllocation("Primary Cost Category", "Asha Rao", Decimal("600.00")),
                CostAllocation("Primary Cost Category", "Bo Chen", Decimal("400.00")))),
            JournalLine("Duties & Taxes", "employee_taxes", credit=Decimal("150.25")),
            JournalLine("Net Pay Payable", "net_pay", credit=Decimal(credit) - Decimal("150.25")),
        ))


def _voucher(xml):
    doc = parse_xml(xml)
    env = doc["ENVELOPE"]
    assert env["HEADER"] == {"VERSION": "1", "TALLYREQUEST": "Import", "TYPE": "Data", "ID": "Vouchers"}
    assert env["BODY"]["DESC"]["STATICVARIABLES"]["SVCURRENTCOMPANY"] == "Demo & Sons"
    return env["BODY"]["DATA"]["TALLYMESSAGE"]["VOUCHER"]


def test_voucher_sign_convention_debit_negative_credit_positive():
    v = _voucher(envelopes.voucher_import(_entry(), "Demo & Sons"))
    assert v["@REMOTEID"] == "gusto-payroll-abc-v1"
    assert v["@VCHTYPE"] == "Journal" and v["@ACTION"] == "Create"
    assert v["@OBJVIEW"] == "Accounting Voucher View"
    assert v["DATE"] == "20240131" and v["VOUCHERTYPENAME"] == "Journal"
    lines = v["ALLLEDGERENTRIES.LIST"]
    assert [(l["LEDGERNAME"], l["ISDEEMEDPOSITIVE"], l["AMOUNT"]) for l in lines] == [
        ("Salaries", "Yes", "-1000.00"),
        ("Duties & Taxes", "No", "150.25"),
        ("Net Pay Payable", "No", "849.75"),
    ]
    assert sum(Decimal(l["AMOUNT"]) for l in lines) == 0


def test_ampersand_is_escaped_on_the_wire_and_round_trips():
    xml = envelopes.voucher_import(_entry(), "Demo & Sons")
    assert "Duties &amp; Taxes" in xml and "Duties & Taxes" not in xml
    assert "Payroll 2024-01 &amp; bonus" in xml
    v = _voucher(xml)
    assert v["NARRATION"] == "Payroll 2024-01 & bonus"
    assert v["ALLLEDGERENTRIES.LIST"][1]["LEDGERNAME"] == "Duties & Taxes"


def test_cost_centre_allocations_carry_the_line_sign():
    v = _voucher(envelopes.voucher_import(_entry(), "Demo & Sons"))
    first = v["ALLLEDGERENTRIES.LIST"][0]
    cat = first["CATEGORYALLOCATIONS.LIST"]
    assert cat["CATEGORY"] == "Primary Cost Category" and cat["ISDEEMEDPOSITIVE"] == "Yes"
    assert [(c["NAME"], c["AMOUNT"]) for c in as_list(cat["COSTCENTREALLOCATIONS.LIST"])] == [
        ("Asha Rao", "-600.00"), ("Bo Chen", "-400.00")]
    assert "CATEGORYALLOCATIONS.LIST" not in v["ALLLEDGERENTRIES.LIST"][1]


def test_unbalanced_entry_is_refused_before_building():
    with pytest.raises(MappingError, match="unbalanced"):
        envelopes.voucher_import(_entry(credit="999.99"), "Demo")


def test_amounts_refuse_float_and_print_two_places():
    assert envelopes.tally_amount(Decimal("5")) == "5.00"
    assert envelopes.tally_amount(Decimal("-0.5")) == "-0.50"
    with pytest.raises(TypeError):
        envelopes.tally_amount(1.5)


def test_masters_import_orders_groups_categories_centres_ledgers():
    xml = envelopes.masters_import(
        [LedgerMaster("PF & ESI Payable", "Duties & Taxes"), LedgerMaster("Salaries", "Payroll Costs", True)],
        [("Payroll Staff", "Asha Rao")], "Demo", groups=[("Payroll Costs", "Indirect Expenses")],
        cost_categories=["Payroll Staff"])
    assert xml.index("<GROUP") < xml.index("<COSTCATEGORY") < xml.index("<COSTCENTRE") < xml.index("<LEDGER")
    msg = parse_xml(xml)["ENVELOPE"]["BODY"]["DATA"]["TALLYMESSAGE"]
    assert parse_xml(xml)["ENVELOPE"]["HEADER"]["ID"] == "All Masters"
    assert msg["GROUP"]["PARENT"] == "Indirect Expenses"
    assert msg["COSTCENTRE"]["@NAME"] == "Asha Rao" and msg["COSTCENTRE"]["CATEGORY"] == "Payroll Staff"
    ledgers = msg["LEDGER"]
    assert ledgers[0]["@NAME"] == "PF & ESI Payable" and ledgers[0]["PARENT"] == "Duties & Taxes"
    assert ledgers[0]["ISCOSTCENTRESON"] == "No" and ledgers[1]["ISCOSTCENTRESON"] == "Yes"
    assert all(l["@ACTION"] == "Create" for l in ledgers)


def test_collection_export_with_filter_formula():
    xml = envelopes.collection_export("Demo", "Find", "Voucher", ["RemoteID", "MasterID"],
                                      '$RemoteID = "k-1"', dt.date(2024, 4, 1), "20250331")
    env = parse_xml(xml)["ENVELOPE"]
    assert env["HEADER"]["TYPE"] == "Collection" and env["HEADER"]["ID"] == "Find"
    sv = env["BODY"]["DESC"]["STATICVARIABLES"]
    assert (sv["SVFROMDATE"], sv["SVTODATE"], sv["SVEXPORTFORMAT"]) == ("20240401", "20250331", "$$SysName:XML")
    tdl = env["BODY"]["DESC"]["TDL"]["TDLMESSAGE"]
    assert tdl["COLLECTION"]["TYPE"] == "Voucher" and tdl["COLLECTION"]["FILTER"] == "Fltr01"
    assert tdl["SYSTEM"] == {"@TYPE": "Formulae", "@NAME": "Fltr01", "#text": '$RemoteID = "k-1"'}


def test_object_day_book_and_company_list_exports():
    obj = parse_xml(envelopes.object_export("Demo", "Ledger", "Cash", ["Name", "Parent"]))["ENVELOPE"]
    assert obj["HEADER"]["SUBTYPE"] == "Ledger" and obj["HEADER"]["ID"] == {"@TYPE": "Name", "#text": "Cash"}
    assert obj["BODY"]["DESC"]["FETCHLIST"]["FETCH"] == ["Name", "Parent"]
    db = parse_xml(envelopes.day_book_export("Demo", dt.date(2024, 1, 1), dt.date(2024, 1, 31)))["ENVELOPE"]
    assert db["HEADER"]["ID"] == "Day Book" and db["HEADER"]["TYPE"] == "Data"
    assert db["BODY"]["DESC"]["STATICVARIABLES"]["SVFROMDATE"] == "20240101"
    cl = parse_xml(envelopes.company_list_export())["ENVELOPE"]
    assert cl["BODY"]["DESC"]["TDL"]["TDLMESSAGE"]["COLLECTION"]["TYPE"] == "Company"
    assert "STATICVARIABLES" not in cl["BODY"]["DESC"] or "SVCURRENTCOMPANY" not in cl["BODY"]["DESC"]["STATICVARIABLES"]


def test_utf16_encoding_round_trips_hindi():
    entry = JournalEntry("k-hi", dt.date(2024, 1, 31), "वेतन जनवरी", (
        JournalLine("वेतन व्यय", "gross", debit=Decimal("10.00")),
        JournalLine("Cash", "net", credit=Decimal("10.00"))), "src")
    body, ctype = envelopes.encode_request(envelopes.voucher_import(entry, "Demo"), "utf-16")
    assert ctype == "text/xml;charset=utf-16"
    assert body[:2] == b"<\x00"  # UTF-16LE, no BOM (tally-database-loader)
    text = decode_body(body, ctype)
    v = parse_xml(text)["ENVELOPE"]["BODY"]["DATA"]["TALLYMESSAGE"]["VOUCHER"]
    assert v["NARRATION"] == "वेतन जनवरी"
    assert v["ALLLEDGERENTRIES.LIST"][0]["LEDGERNAME"] == "वेतन व्यय"
    with pytest.raises(ValueError):
        envelopes.encode_request("<A/>", "latin-1")


# ----------------------------------------------------------------- credentials and purchases

def test_credentials_go_into_every_envelope_shape_escaped():
    from connector_tasks.connectors.tallyprime import exports
    shapes = [envelopes.company_list_export(), envelopes.day_book_export("Demo & Sons", "20240401", "20240430"),
              envelopes.voucher_import(_entry(), "Demo & Sons"),
              envelopes.masters_import([LedgerMaster("Rent", "Indirect Expenses", False)], [], "Demo & Sons"),
              envelopes.object_export("Demo & Sons", "Ledger", "Cash", ["Name"]),
              exports.purchase_count_export("Demo & Sons"),
              "<ENVELOPE><HEADER><TALLYREQUEST>Export Data</TALLYREQUEST></HEADER><BODY><EXPORTDATA>"
              "<REQUESTDESC><REPORTNAME>Day Book</REPORTNAME><STATICVARIABLES/></REQUESTDESC>"
              "</EXPORTDATA></BODY></ENVELOPE>"]
    for xml in shapes:
        out = envelopes.with_credentials(xml, "o<wner", "p&ss")
        doc = parse_xml(out)
        sv = (doc["ENVELOPE"]["BODY"].get("DESC") or doc["ENVELOPE"]["BODY"]["EXPORTDATA"]["REQUESTDESC"]
              )["STATICVARIABLES"]
        assert sv[envelopes.USER_VARIABLE] == "o<wner" and sv[envelopes.PASSWORD_VARIABLE] == "p&ss"
        assert out.count("<STATICVARIABLES>") == 1
    assert envelopes.with_credentials(shapes[0], None, None) == shapes[0]
    with pytest.raises(ValueError):
        envelopes.with_credentials("<ENVELOPE><HEADER/></ENVELOPE>", "u", "p")


def test_purchase_envelopes_carry_family_filter_alter_window_and_aggregate():
    from connector_tasks.connectors.tallyprime import exports
    xml = exports.purchase_changes_export("Demo & Sons", 100, 5100)
    doc = parse_xml(xml)["ENVELOPE"]
    coll = doc["BODY"]["DESC"]["TDL"]["TDLMESSAGE"]["COLLECTION"]
    assert coll["TYPE"] == "Voucher" and coll["FILTER"] == "MLCPurchaseKind, MLCAlterWindow"
    assert coll["COMPUTE"] == "MLCIsDebitNote : $$IsDebitNote:$VoucherTypeName"
    assert "AllInventoryEntries" in coll["FETCH"] and "LedgerEntries" in coll["FETCH"]
    formulas = {s["@NAME"]: s["#text"] for s in as_list(doc["BODY"]["DESC"]["TDL"]["TDLMESSAGE"]["SYSTEM"])}
    assert formulas == {"MLCPurchaseKind": "$$IsPurchase:$VoucherTypeName OR $$IsDebitNote:$VoucherTypeName",
                        "MLCAlterWindow": "$AlterID > 100 AND $AlterID <= 5100"}
    assert "$AlterID &gt; 100 AND $AlterID &lt;= 5100" in xml
    assert doc["BODY"]["DESC"]["STATICVARIABLES"]["SVFROMDATE"] == "19000101"
    guids = parse_xml(exports.purchase_guids_export("X"))["ENVELOPE"]["BODY"]["DESC"]["TDL"]["TDLMESSAGE"]
    assert guids["COLLECTION"]["FETCH"] == "Guid, AlterId"
    count = parse_xml(exports.purchase_count_export("X"))["ENVELOPE"]
    assert count["HEADER"]["ID"] == "MLCPurchaseCount"
    agg = count["BODY"]["DESC"]["TDL"]["TDLMESSAGE"]["COLLECTION"][1]
    assert agg["SOURCECOLLECTION"] == "MLCPurchaseSet" and agg["AGGRCOMPUTE"] == "Count : SUM : $$Number:1"
    items = exports.stock_items_export("X", names=["Pump A", "Valve & Seal"])
    assert '$Name = "Pump A" OR $Name = "Valve &amp; Seal"' in items
    with pytest.raises(MappingError):
        exports.stock_items_export("X", names=['12" Pipe'])
    with pytest.raises(Exception):
        exports.purchase_changes_export("X", -1, 5)
