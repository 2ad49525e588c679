"""The TallyPrime emulator answers the request shapes real clients send (tally-database-loader,
TallyConnector, erpnext_tally_migrator, report scrapers) as Tally does, over real HTTP, and
lays its replies out one element per line; it refuses what Tally refuses, in Tally's words.

Requests are sent as tally-database-loader sends them (UTF-16LE, ``text/xml;charset=utf-16``)
unless a test says otherwise; replies are read line by line where a real client does."""
import datetime as dt
import html
import re
from decimal import Decimal

import pytest
import requests

from connector_tasks.connectors.tallyprime import TallyClient, exports, replies
from connector_tasks.domain.model import JournalEntry, JournalLine

COMPANY = "Demo Trading Co"


def post(url: str, xml: str, *, utf16: bool = True) -> str:
    if utf16:
        r = requests.post(url, data=xml.encode("utf-16-le"),
                          headers={"Content-Type": "text/xml;charset=utf-16"}, timeout=30)
    else:
        r = requests.post(url, data=xml.encode(), headers={"Content-Type": "text/xml"}, timeout=30)
    assert r.status_code == 200
    return replies.decode_body(r.content, r.headers.get("Content-Type"))


def read_lines(reply: str, tag: str) -> list[dict]:
    """A line-oriented reader in the manner of tally-database-loader's
    ``parseXmlToJsonCollection``: an item opens on a line of its own, every field is one line
    ``<F TYPE="T">v</F>``; ``.LIST`` blocks open and close on lines of their own."""
    items, depth_lists = [], 0
    for line in reply.split("\r\n"):
        line = line.strip()
        if line == f"<{tag}>" or line.startswith(f"<{tag} "):
            items.append({"_name": html.unescape((re.search(r'NAME="([^"]*)"', line) or [None, ""])[1])})
        elif line.startswith(f"</{tag}>"):
            continue
        elif re.fullmatch(r"<[A-Z.]+\.LIST( TYPE=\"\w+\")?>", line):
            depth_lists += 1
        elif re.fullmatch(r"</[A-Z.]+\.LIST>", line):
            depth_lists -= 1
        elif items and depth_lists == 0:
            m = re.fullmatch(r'<([A-Z_]+)(?: TYPE="(\w+)")?>([^<]*)</\1>', line)
            if m:
                items[-1][m.group(1)] = (m.group(2), m.group(3))
    return items


@pytest.fixture
def books(tally):
    """Journals, purchases, debit notes, a cancelled and an optional purchase."""
    tally.seed(count=25, purchases=12, debit_notes=3, cancelled=2, optional=1, stock_items=6)
    return tally


def collection(name: str, inner: str, sv: str = "", extra: str = "") -> str:
    return ("<ENVELOPE><HEADER><VERSION>1</VERSION><TALLYREQUEST>Export</TALLYREQUEST>"
            f"<TYPE>Collection</TYPE><ID>{name}</ID></HEADER><BODY><DESC><STATICVARIABLES>"
            f"<SVEXPORTFORMAT>$$SysName:XML</SVEXPORTFORMAT>{sv}</STATICVARIABLES><TDL>"
            f'<TDLMESSAGE><COLLECTION NAME="{name}">{inner}</COLLECTION>{extra}</TDLMESSAGE>'
            "</TDL></DESC></BODY></ENVELOPE>")


# ----------------------------------------------------------------- collections

def test_loader_company_list_with_compute_laid_out_one_element_per_line(books):
    xml = ('<ENVELOPE><HEADER><VERSION>1</VERSION><TALLYREQUEST>Export</TALLYREQUEST>'
           '<TYPE>Collection</TYPE><ID>TallyDatabaseLoaderColl</ID></HEADER><BODY><DESC><TDL>'
           '<TDLMESSAGE><COLLECTION NAME="TallyDatabaseLoaderColl"><TYPE>company</TYPE>'
           '<COMPUTE>IsActiveCompany : $$IsEqual:$Name:##SVCurrentCompany</COMPUTE>'
           '<FETCH>BooksFrom,AltMstId,AltVchId</FETCH></COLLECTION></TDLMESSAGE></TDL></DESC>'
           '</BODY></ENVELOPE>')
    reply = post(books.url, xml)
    assert reply.startswith("<ENVELOPE>\r\n <HEADER>\r\n  <VERSION>1</VERSION>\r\n  <STATUS>1</STATUS>")
    assert all(line.strip().startswith("<") for line in reply.split("\r\n") if line.strip())
    assert "   <CMPINFO>\r\n" in reply                       # as the live capture shows
    [company] = read_lines(reply, "COMPANY")
    marks = books.company()["alter_ids"]
    assert company["_name"] == COMPANY
    assert company["BOOKSFROM"] == ("Date", "20200401")
    assert company["ALTMSTID"] == ("Number", f" {marks['master']}")
    assert company["ALTVCHID"] == ("Number", f" {marks['voucher']}")
    assert company["ISACTIVECOMPANY"] == ("Logical", "Yes")
    # the stream reader of our own client skips DESC/CMPINFO's <COMPANY>0</COMPANY>
    rows = list(exports._iter_objects(iter([reply.encode()]), "text/xml; charset=utf-8",
                                      "COMPANY", exports._master_of))
    assert [r.name for r in rows] == [COMPANY]


def test_filters_with_system_formulae_date_and_alterid(books):
    mark = books.company()["alter_ids"]["voucher"] - 10
    xml = collection("Recent", "<TYPE>Voucher</TYPE><FETCH>Date, VoucherTypeName, AlterId</FETCH>"
                     "<FILTERS>AfterMark, InMay</FILTERS>",
                     f"<SVCURRENTCOMPANY>{COMPANY}</SVCURRENTCOMPANY>",
                     f'<SYSTEM TYPE="Formulae" NAME="AfterMark">$AlterID &gt; {mark}</SYSTEM>'
                     '<SYSTEM TYPE="Formulae" NAME="InMay">$Date &gt;= "1-May-2024" AND '
                     '$Date &lt;= $$Date:"20241231"</SYSTEM>')
    rows = read_lines(post(books.url, xml), "VOUCHER")
    expected = [v for v in books.vouchers() if v["alter_id"] > mark
                and "20240501" <= v["date"] <= "20241231"]
    assert len(rows) == len(expected) > 0
    assert all(int(r["ALTERID"][1]) > mark and "20240501" <= r["DATE"][1] <= "20241231" for r in rows)


def test_builtin_filter_is_non_optional_cancelled_vchs_and_aggregate_count(books):
    """tally-database-loader ``generateVoucherDatewiseCount``: an aggregate over vouchers
    filtered by Tally's built-in ``IsNonOptionalCancelledVchs``."""
    xml = ('<ENVELOPE>\n<HEADER>\n<VERSION>1</VERSION>\n<TALLYREQUEST>Export</TALLYREQUEST>\n'
           '<TYPE>Collection</TYPE>\n<ID>TallyDatabaseLoaderColl</ID>\n</HEADER>\n<BODY>\n<DESC>\n'
           '<TDL>\n<TDLMESSAGE>\n<COLLECTION NAME="TallyDatabaseLoaderCollEx">\n<TYPE>voucher</TYPE>\n'
           '<FILTER>IsNonOptionalCancelledVchs</FILTER>\n</COLLECTION>\n'
           '<COLLECTION NAME="TallyDatabaseLoaderColl">\n'
           '<SOURCECOLLECTION>TallyDatabaseLoaderCollEx</SOURCECOLLECTION>\n<BY>Date : $Date</BY>\n'
           '<AGGRCOMPUTE>Count : SUM : $$Number:1</AGGRCOMPUTE>\n</COLLECTION>\n</TDLMESSAGE>\n'
           '</TDL>\n</DESC>\n</BODY>\n</ENVELOPE>')
    rows = read_lines(post(books.url, xml), "OBJECT")
    vouchers = books.vouchers()
    usable = [v for v in vouchers if not v.get("is_cancelled") and not v.get("is_optional")]
    assert len(usable) == len(vouchers) - 3
    per_day: dict = {}
    for v in usable:
        per_day[v["date"]] = per_day.get(v["date"], 0) + 1
    assert {r["DATE"][1]: int(r["COUNT"][1]) for r in rows} == per_day


def test_native_methods_with_spaces_childof_belongsto_and_fail_open(books):
    """erpnext_tally_migrator's NATIVEMETHOD lists; CHILDOF + BELONGSTO; a method Tally does
    not know is silently left out; FETCH * leaves a voucher's entry lists out."""
    xml = collection("New Group", "<TYPE>Ledger</TYPE><CHILDOF>$$GroupSundryCreditors</CHILDOF>"
                     "<BELONGSTO>Yes</BELONGSTO><NATIVEMETHOD>Parent</NATIVEMETHOD>"
                     "<NATIVEMETHOD>Is Revenue</NATIVEMETHOD><NATIVEMETHOD>No Such Method</NATIVEMETHOD>",
                     f"<SVCURRENTCOMPANY>{COMPANY}</SVCURRENTCOMPANY>")
    rows = read_lines(post(books.url, xml, utf16=False), "LEDGER")
    assert {r["_name"] for r in rows} == {"Zenith Supplies", "Northwind Parts"}
    assert all(r["PARENT"] == ("String", "Sundry Creditors") and r["ISREVENUE"] == ("Logical", "No")
               and "NOSUCHMETHOD" not in r for r in rows)
    period = collection("Period", "<TYPE>COMPANY</TYPE><NATIVEMETHOD>Starting From</NATIVEMETHOD>"
                        "<NATIVEMETHOD>Ending At</NATIVEMETHOD>",
                        f"<SVCURRENTCOMPANY>{COMPANY}</SVCURRENTCOMPANY>")
    [company] = read_lines(post(books.url, period), "COMPANY")
    assert company["STARTINGFROM"] == ("Date", "20240401") and company["ENDINGAT"] == ("Date", "20250331")
    star = post(books.url, collection("All", "<TYPE>Voucher</TYPE><FETCH>*</FETCH>",
                                      f"<SVCURRENTCOMPANY>{COMPANY}</SVCURRENTCOMPANY>"))
    assert "<VOUCHERTYPENAME TYPE=\"String\">" in star and ".LIST>" not in star


def test_purchase_vouchers_as_tally_writes_them(books):
    xml = collection("P", "<TYPE>Voucher</TYPE><FETCH>Date, VoucherTypeName, Reference, "
                     "IsCancelled, IsOptional, LedgerEntries, AllInventoryEntries</FETCH>"
                     "<FILTER>Kind</FILTER>", f"<SVCURRENTCOMPANY>{COMPANY}</SVCURRENTCOMPANY>",
                     '<SYSTEM TYPE="Formulae" NAME="Kind">$$IsPurchase:$VoucherTypeName</SYSTEM>')
    reply = post(books.url, xml)
    rows = read_lines(reply, "VOUCHER")
    assert len(rows) == 12 and {r["VOUCHERTYPENAME"][1] for r in rows} == {"Purchase"}
    assert sum(r["ISCANCELLED"] == ("Logical", "Yes") for r in rows) == 2
    assert re.search(r'\r\n      <ACTUALQTY TYPE="Quantity"> \d+(\.\d{3})? (Nos|Kg)</ACTUALQTY>\r\n', reply)
    assert re.search(r'<RATE TYPE="Rate">\d+\.\d{2}/(Nos|Kg)</RATE>', reply)
    assert re.search(r'<ISPARTYLEDGER TYPE="Logical">Yes</ISPARTYLEDGER>', reply)
    assert "<GODOWNNAME TYPE=\"String\">" in reply and "<ACCOUNTINGALLOCATIONS.LIST>" in reply
    items = read_lines(post(books.url, collection(
        "S", "<TYPE>StockItem</TYPE><FETCH>Name, BaseUnits, MailingName, ClosingBalance</FETCH>",
        f"<SVCURRENTCOMPANY>{COMPANY}</SVCURRENTCOMPANY>")), "STOCKITEM")
    assert len(items) == 6 and items[0]["BASEUNITS"] == ("String", "Nos")
    assert items[0]["CLOSINGBALANCE"][0] == "Quantity"


# ----------------------------------------------------------------- TYPE=Data, functions

LOADER_REPORT = (
    '<?xml version="1.0" encoding="utf-8"?><ENVELOPE><HEADER><VERSION>1</VERSION>'
    '<TALLYREQUEST>Export</TALLYREQUEST><TYPE>Data</TYPE><ID>MyReport</ID></HEADER><BODY><DESC>'
    '<STATICVARIABLES><SVEXPORTFORMAT>ASCII (Comma Delimited)</SVEXPORTFORMAT></STATICVARIABLES>'
    '<TDL><TDLMESSAGE><REPORT NAME="MyReport"><FORMS>MyForm</FORMS></REPORT><FORM NAME="MyForm">'
    '<PARTS>MyPart</PARTS></FORM><PART NAME="MyPart"><LINES>MyLine</LINES><REPEAT>MyLine : '
    'MyCollection</REPEAT><SCROLLED>Vertical</SCROLLED></PART><LINE NAME="MyLine"><FIELDS>'
    'FldAlterMaster,FldAlterTransaction</FIELDS></LINE><FIELD NAME="FldAlterMaster"><SET>$AltMstId'
    '</SET></FIELD><FIELD NAME="FldAlterTransaction"><SET>$AltVchId</SET></FIELD><COLLECTION '
    'NAME="MyCollection"><TYPE>Company</TYPE><FILTER>FilterActiveCompany</FILTER></COLLECTION>'
    '<SYSTEM TYPE="Formulae" NAME="FilterActiveCompany">$$IsEqual:##SVCurrentCompany:$Name'
    '</SYSTEM></TDLMESSAGE></TDL></DESC></BODY></ENVELOPE>')


def test_type_data_report_ascii_alter_ids_and_closed_company(books):
    """tally-database-loader ``updateLastAlterId``: ``"m","v",`` CRLF; an empty reply when the
    company is closed."""
    marks = books.company()["alter_ids"]
    assert post(books.url, LOADER_REPORT) == f'"{marks["master"]}","{marks["voucher"]}",\r\n'
    named = LOADER_REPORT.replace("##SVCurrentCompany", '"Some Other Co"')
    assert post(books.url, named) == ""


def test_type_data_report_company_info_with_expressions(books):
    xml = (LOADER_REPORT.replace("FldAlterMaster,FldAlterTransaction",
                                 "FldGuid,FldName,FldBooksFrom,FldLastAlterIdTransaction,FldEOL")
           .replace('<FIELD NAME="FldAlterMaster"><SET>$AltMstId</SET></FIELD>',
                    '<FIELD NAME="FldGuid"><SET>$Guid</SET></FIELD><FIELD NAME="FldName"><SET>'
                    '$$StringFindAndReplace:$Name:\'"\':\'""\'</SET></FIELD><FIELD NAME="FldBooksFrom">'
                    '<SET>(($$YearOfDate:$BooksFrom)*10000)+(($$MonthOfDate:$BooksFrom)*100)+'
                    '(($$DayOfDate:$BooksFrom)*1)</SET></FIELD><FIELD NAME="FldEOL"><SET>†</SET></FIELD>')
           .replace('<FIELD NAME="FldAlterTransaction">', '<FIELD NAME="FldLastAlterIdTransaction">'))
    reply = post(books.url, xml)
    assert reply.endswith(',"†",\r\n')
    parts = reply.replace('","†",\r\n', "")[1:].split('","')
    assert parts[1:3] == [COMPANY, "20200401"] and int(parts[3]) == books.company()["alter_ids"]["voucher"]


def test_type_data_report_xml_data_interchange_with_exploded_sub_collection(books):
    """tally-database-loader ``generateXMLfromYAML`` for ``Voucher.AllInventoryEntries``: a
    line exploding a part that repeats over the sub-collection; ``$Guid`` on an inventory
    line answers the voucher's."""
    fields = {"Fld01": "$Guid", "Fld02": "$StockItemName",
              "Fld03": '$$StringFindAndReplace:(if $$IsInwards:$ActualQty then '
                       '$$Number:$$String:$ActualQty:"TailUnits" else '
                       '-$$Number:$$String:$ActualQty:"TailUnits"):"(-)":"-"',
              "Fld04": "if $$IsEmpty:$Rate then 0 else $$Number:$Rate",
              "Fld05": '$$StringFindAndReplace:(if $$IsDebit:$Amount then -$$NumValue:$Amount '
                       'else $$NumValue:$Amount):"(-)":"-"',
              "Fld06": "$GodownName"}
    field_xml = "".join(f'<FIELD NAME="{k}"><SET>{v}</SET><XMLTAG>F{k[3:]}</XMLTAG></FIELD>'
                        for k, v in fields.items())
    xml = ('<ENVELOPE><HEADER><VERSION>1</VERSION><TALLYREQUEST>Export</TALLYREQUEST><TYPE>Data'
           '</TYPE><ID>TallyDatabaseLoaderReport</ID></HEADER><BODY><DESC><STATICVARIABLES>'
           '<SVEXPORTFORMAT>XML (Data Interchange)</SVEXPORTFORMAT><SVFROMDATE>1-Apr-2024'
           f'</SVFROMDATE><SVTODATE>31-Mar-2025</SVTODATE><SVCURRENTCOMPANY>{COMPANY}'
           '</SVCURRENTCOMPANY></STATICVARIABLES><TDL><TDLMESSAGE><REPORT NAME="TallyDatabaseLoaderReport">'
           '<FORMS>MyForm</FORMS></REPORT><FORM NAME="MyForm"><PARTS>MyPart01</PARTS></FORM>'
           '<PART NAME="MyPart01"><LINES>MyLine01</LINES><REPEAT>MyLine01 : MyCollection</REPEAT>'
           '<SCROLLED>Vertical</SCROLLED></PART><PART NAME="MyPart02"><LINES>MyLine02</LINES>'
           '<REPEAT>MyLine02 : AllInventoryEntries</REPEAT><SCROLLED>Vertical</SCROLLED></PART>'
           '<LINE NAME="MyLine01"><FIELDS>FldBlank</FIELDS><EXPLODE>MyPart02</EXPLODE></LINE>'
           f'<LINE NAME="MyLine02"><FIELDS>{",".join(fields)}</FIELDS></LINE>{field_xml}'
           '<FIELD NAME="FldBlank"><SET>""</SET></FIELD><COLLECTION NAME="MyCollection"><TYPE>'
           'Voucher</TYPE><FETCH>AllInventoryEntries</FETCH><FILTER>Fltr01,Fltr02</FILTER>'
           '</COLLECTION><SYSTEM TYPE="Formulae" NAME="Fltr01">NOT $IsCancelled</SYSTEM>'
           '<SYSTEM TYPE="Formulae" NAME="Fltr02">NOT $IsOptional</SYSTEM></TDLMESSAGE></TDL>'
           '</DESC></BODY></ENVELOPE>')
    reply = post(books.url, xml)
    # the loader's processTdlOutputManipulation: rows from <F01>, tab between fields
    flat = re.sub(r"<FLDBLANK></FLDBLANK>", "", reply.replace("<ENVELOPE>", "").replace("</ENVELOPE>", ""))
    flat = re.sub(r"\s+\r\n", "", flat).replace("\r\n", "")
    flat = re.sub(r"\s+<F", "<F", flat)
    flat = re.sub(r"</F\d+>", "", flat).replace("<F01>", "\r\n")
    rows = [r.split("\t") for r in re.sub(r"<F\d+>", "\t", flat).split("\r\n") if r]
    lines = [(v, i) for v in books.vouchers() if v["type"] in ("Purchase", "Debit Note")
             and not v.get("is_cancelled") and not v.get("is_optional") for i in v["items"]]
    assert len(rows) == len(lines)
    by_guid = {v["guid"] for v, _ in lines}
    for guid, item, qty, rate, amount, godown in rows:
        assert guid in by_guid and item.startswith("Item ")
        # stock in: positive quantity, debit (negative) amount; a return the other way round
        assert (Decimal(qty) > 0) == (Decimal(amount) < 0) and Decimal(rate) >= 0 and godown
    assert sum(Decimal(r[2]) < 0 for r in rows) == sum(
        len(v["items"]) for v in books.vouchers() if v["type"] == "Debit Note")


def test_system_period_function(books):
    xml = ('<ENVELOPE><HEADER><VERSION>1</VERSION><TALLYREQUEST>Export</TALLYREQUEST><TYPE>Function'
           '</TYPE><ID>$$SystemPeriodFrom</ID></HEADER></ENVELOPE>')
    reply = post(books.url, xml)
    m = re.search(r'<RESULT TYPE="Date" JD="(\d+)">', reply)
    assert m and dt.date(1899, 12, 31) + dt.timedelta(days=int(m.group(1))) == dt.date(2024, 4, 1)
    to = post(books.url, xml.replace("PeriodFrom", "PeriodTo"))
    assert re.search(r'<RESULT TYPE="Date" JD="\d+">31-Mar-2025</RESULT>', to)


# ----------------------------------------------------------------- legacy Export Data reports

def export_data(report: str, sv: str = "", request: str = "Export Data") -> str:
    return (f"<ENVELOPE><HEADER><TALLYREQUEST>{request}</TALLYREQUEST></HEADER><BODY><EXPORTDATA>"
            f"<REQUESTDESC><REPORTNAME>{report}</REPORTNAME><STATICVARIABLES><SVCURRENTCOMPANY>"
            f"{COMPANY}</SVCURRENTCOMPANY>{sv}</STATICVARIABLES></REQUESTDESC></EXPORTDATA></BODY>"
            "</ENVELOPE>")


def test_bills_receivable_only_in_the_legacy_form(books):
    reply = post(books.url, export_data("Bills Receivable", "<SVTODATE>20250331</SVTODATE>"))
    bills = re.findall(r"<BILLFIXED>\r\n  <BILLDATE>(\d+-\w+-\d\d)</BILLDATE>\r\n  <BILLREF>(\d+)"
                       r"</BILLREF>\r\n  <BILLPARTY>([^<]+)</BILLPARTY>\r\n </BILLFIXED>\r\n <BILLCL>"
                       r"(-[\d.]+)</BILLCL>\r\n <BILLDUE>[^<]+</BILLDUE>\r\n <BILLOVERDUE>(\d+)"
                       r"</BILLOVERDUE>", reply)
    debtor_lines = [line for v in books.vouchers() for line in v["lines"]
                    if line.startswith("Acme Traders: -")]
    assert len(bills) == len(debtor_lines) > 0
    assert {b[2] for b in bills} == {"Acme Traders"}
    # tally-database-loader: TALLYREQUEST=EXPORT with the same body is refused; TYPE=Data gives an empty envelope
    refused = post(books.url, export_data("Bills Receivable", request="EXPORT"))
    assert "<DATA>Unknown Request, cannot be processed</DATA>" in refused and "<STATUS>0</STATUS>" in refused
    typed = post(books.url, "<ENVELOPE><HEADER><VERSION>1</VERSION><TALLYREQUEST>Export</TALLYREQUEST>"
                 "<TYPE>Data</TYPE><ID>Bills Receivable</ID></HEADER><BODY><DESC><STATICVARIABLES>"
                 f"<SVCURRENTCOMPANY>{COMPANY}</SVCURRENTCOMPANY></STATICVARIABLES></DESC></BODY></ENVELOPE>")
    assert typed == "<ENVELOPE></ENVELOPE>\r\n"


def test_stock_summary_day_book_and_list_of_accounts(books):
    summary = post(books.url, export_data("Stock Summary"))
    names = re.findall(r"<DSPDISPNAME>([^<]+)</DSPDISPNAME>", summary)
    qtys = re.findall(r"<DSPCLQTY>(-?[\d.]+) (Nos|Kg)</DSPCLQTY>", summary)
    assert names and len(names) == len(qtys) == summary.count("<DSPSTKINFO>")
    typed = post(books.url, "<ENVELOPE><HEADER><VERSION>1</VERSION><TALLYREQUEST>Export</TALLYREQUEST>"
                 "<TYPE>Data</TYPE><ID>Stock Summary</ID></HEADER><BODY><DESC><STATICVARIABLES>"
                 f"<SVCURRENTCOMPANY>{COMPANY}</SVCURRENTCOMPANY></STATICVARIABLES></DESC></BODY></ENVELOPE>")
    assert typed == summary
    day = post(books.url, export_data("Day Book", "<SVFROMDATE>20240401</SVFROMDATE>"
                                      "<SVTODATE>20240630</SVTODATE>"))
    in_range = [v for v in books.vouchers() if "20240401" <= v["date"] <= "20240630"]
    assert day.count("<TALLYMESSAGE") == len(in_range) and "\r\n   <REQUESTDATA>\r\n" in day
    accounts = post(books.url, export_data("List of Accounts",
                                           "<ACCOUNTTYPE>All Inventory Masters</ACCOUNTTYPE>"))
    assert accounts.count("<STOCKITEM NAME=") == 6 and "<UNIT NAME=\"Kg\"" in accounts
    assert "<LEDGER NAME=" not in accounts
    assert re.search(r'<MAILINGNAME.LIST TYPE="String">\r\n\s+<MAILINGNAME>PN-0001</MAILINGNAME>', accounts)
    everything = post(books.url, export_data("List of Accounts"))
    assert "<LEDGER NAME=\"Zenith Supplies\"" in everything and "<GROUP NAME=" in everything


# ----------------------------------------------------------------- refusals and layout

def test_unsupported_tdl_is_refused_not_guessed(books):
    xml = collection("X", "<TYPE>Voucher</TYPE><FILTER>F</FILTER>",
                     f"<SVCURRENTCOMPANY>{COMPANY}</SVCURRENTCOMPANY>",
                     '<SYSTEM TYPE="Formulae" NAME="F">$$NoSuchFunction:$Date</SYSTEM>')
    reply = post(books.url, xml)
    assert "<STATUS>0</STATUS>" in reply and "Sandbox: unsupported TDL function $$NoSuchFunction" in reply
    missing = post(books.url, collection("Y", "<TYPE>Ledger</TYPE><FILTER>Undefined</FILTER>"))
    assert "<LINEERROR>Sandbox: formula 'Undefined' is not defined" in missing


def test_protected_company_refuses_raw_requests_without_credentials(tally):
    requests.post(f"{tally.url}/_sandbox/companies", json={
        "name": "Vault Co", "create": True, "username": "acct", "password": "pw"}, timeout=10)
    xml = collection("L", "<TYPE>Ledger</TYPE><FETCH>Name</FETCH>",
                     "<SVCURRENTCOMPANY>Vault Co</SVCURRENTCOMPANY>")
    refused = post(tally.url, xml)
    assert "<STATUS>0</STATUS>" in refused
    assert "<LINEERROR>Company 'Vault Co' needs a User Name and Password</LINEERROR>" in refused
    ok = post(tally.url, xml.replace("<SVCURRENTCOMPANY>", "<SVCURRENTUSER>acct</SVCURRENTUSER>"
                                     "<SVCURRENTUSERPASSWORD>pw</SVCURRENTUSERPASSWORD><SVCURRENTCOMPANY>"))
    assert read_lines(ok, "LEDGER")
    wrong = post(tally.url, xml.replace("<SVCURRENTCOMPANY>", "<SVCURRENTUSER>acct</SVCURRENTUSER>"
                                        "<SVCURRENTUSERPASSWORD>x</SVCURRENTUSERPASSWORD><SVCURRENTCOMPANY>"))
    assert "Invalid User Name or Password for Company 'Vault Co'" in wrong
    assert [r["credentials"] for r in tally.state()["requests"][-3:]] == ["none", "valid", "invalid"]
    # the company list is not one company's: answered
    listing = post(tally.url, collection("C", "<TYPE>Company</TYPE><FETCH>Name</FETCH>"))
    assert {r["_name"] for r in read_lines(listing, "COMPANY")} == {COMPANY, "Vault Co"}


@pytest.fixture
def emulator_with(request):
    from sandbox.tallyprime.server import serve
    servers = []

    def start(config):
        server, _t, port = serve(config=config, env="test")
        servers.append(server)
        return f"http://127.0.0.1:{port}", server.app.extensions["tally_emulator"]
    yield start
    for s in servers:
        s.shutdown()


def test_enforce_login_off_answers_as_tallys_faq_says(emulator_with):
    url, _em = emulator_with({"companies": [{"name": "Vault Co", "books_from": "20240401",
                                             "username": "acct", "password": "pw"}],
                              "enforce_login": False})
    xml = collection("L", "<TYPE>Ledger</TYPE><FETCH>Name</FETCH>",
                     "<SVCURRENTCOMPANY>Vault Co</SVCURRENTCOMPANY>")
    assert {r["_name"] for r in read_lines(post(url, xml), "LEDGER")} == {"Cash", "Profit & Loss A/c"}


def test_our_client_works_against_replies_laid_out_as_tally_does(emulator_with):
    """With ``layout: tally`` every reply (imports, our legacy shapes) is one element per
    line: the client's parsers must not care."""
    from sandbox.tallyprime.seed import seed_purchases, seed_vouchers
    url, em = emulator_with({"layout": "tally"})
    seed_vouchers(em, 60)
    seed_purchases(em, 5, debit_notes=1)
    client = TallyClient(url, COMPANY, encoding="utf-16")
    entry = JournalEntry(key="laid-out-1", source_ref="t", date=dt.date(2024, 6, 1), narration="n",
                         lines=(JournalLine("Cash", "x", debit=Decimal("5.00")),
                                JournalLine("Profit & Loss A/c", "y", credit=Decimal("5.00"))))
    master_id = client.post_journal(entry)
    assert client.find_journal("laid-out-1") == master_id
    assert "Cash" in client.ledger_groups()
    run = exports.iter_changed_vouchers(client, since_alter_id=0, from_date="20240401",
                                        to_date="20250331", batch_days=90)
    assert sum(1 for _ in run) == 60 + 5 + 1 + 1
    assert len(client.day_book("20240401", "20250331")) == 67
    poll = exports.poll_purchases(client)
    assert len(poll.vouchers) == 6 and poll.count == 6
    raw = client.post(exports.company_alter_ids_export())
    assert raw.startswith("<ENVELOPE>\r\n <HEADER>")


def test_legacy_shapes_keep_their_compact_replies(books):
    """ml-connector's own collections (MLC…) keep the one-line replies recorded tests were
    written against; the same request under another name is laid out as Tally does."""
    client = TallyClient(books.url, COMPANY)
    from connector_tasks.connectors.tallyprime import envelopes
    raw = client.post(envelopes.collection_export(COMPANY, "MLCLedgerList", "Ledger", ["Name", "Parent"]))
    assert "\n" not in raw and raw.startswith("<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>1")
    laid = client.post(envelopes.collection_export(COMPANY, "Ledgers", "Ledger", ["Name", "Parent"]))
    assert laid.count("\r\n") > 20
    def pairs(text):
        return [(r["NAME"], r["PARENT"]) for r in replies.parse_collection(text, "LEDGER")]
    assert pairs(raw) == pairs(laid) and ("Profit & Loss A/c", "Primary") in pairs(raw)
