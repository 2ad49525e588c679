"""TallyClient against the TallyPrime emulator over real HTTP (https://help.tallysolutions.com/xml-integration/)."""
import datetime as dt
import socket
import threading
import time
from decimal import Decimal

import pytest
import requests

from connector_tasks.connectors.tallyprime import CompanyNotLoadedError, TallyClient
from connector_tasks.core.errors import MappingError, RejectedError, TransientApiError
from connector_tasks.domain.model import CostAllocation, JournalEntry, JournalLine, LedgerMaster

COMPANY = "Demo Trading Co"
CAT = "Primary Cost Category"
LEDGERS = [LedgerMaster("Salaries & Wages", "Indirect Expenses", cost_centres_on=True),
           LedgerMaster("TDS Payable", "Duties & Taxes"),
           LedgerMaster("Net Salary Payable", "Current Liabilities")]
CENTRES = [(CAT, "Asha Rao"), (CAT, "Bo Chen")]


def entry(key="gusto-payroll-p1-v1", tds="150.25", ledger="TDS Payable", credit_total="1000.00"):
    return JournalEntry(
        key=key, date=dt.date(2024, 1, 31), narration="Payroll Jan 2024 & bonus", source_ref="p1",
        lines=(
            JournalLine("Salaries & Wages", "gross_wages", debit=Decimal("1000.00"), allocations=(
                CostAllocation(CAT, "Asha Rao", Decimal("600.00")),
                CostAllocation(CAT, "Bo Chen", Decimal("400.00")))),
            JournalLine(ledger, "employee_taxes", credit=Decimal(tds)),
            JournalLine("Net Salary Payable", "net_pay", credit=Decimal(credit_total) - Decimal("150.25")),
        ))


def test_ledgers_created_first_then_voucher_posted_once(tally):
    client = TallyClient(tally.url, COMPANY)
    created = client.ensure_ledgers(LEDGERS, CENTRES)
    assert created == ["Asha Rao", "Bo Chen", "Salaries & Wages", "TDS Payable", "Net Salary Payable"]
    assert client.ensure_ledgers(LEDGERS, CENTRES) == []  # second run creates nothing
    before = tally.state()["request_count"]
    vid = client.post_journal(entry())
    again = client.post_journal(entry())
    assert vid == again and vid.isdigit()
    company = tally.company()
    assert len(company["vouchers"]) == 1
    v = company["vouchers"][0]
    assert v["remote_id"] == "gusto-payroll-p1-v1" and str(v["master_id"]) == vid
    assert v["lines"] == ["Salaries & Wages: -1000.00", "TDS Payable: 150.25", "Net Salary Payable: 849.75"]
    ids = [r["id"] for r in tally.state()["requests"][before:]]
    assert ids.count("Vouchers") == 1  # the second post only looked the key up
    ledger_names = {l["name"] for l in company["ledgers"]}
    assert {"Salaries & Wages", "TDS Payable", "Cash", "Profit & Loss A/c"} <= ledger_names


def test_missing_ledger_is_rejected_with_tally_text(tally):
    client = TallyClient(tally.url, COMPANY)
    client.ensure_ledgers(LEDGERS, CENTRES)
    with pytest.raises(RejectedError) as exc:
        client.post_journal(entry(ledger="Professional Tax Payable"))
    assert exc.value.lines == ["Ledger 'Professional Tax Payable' does not exist!"]
    assert "Ledger 'Professional Tax Payable' does not exist!" in exc.value.message
    assert not exc.value.retryable
    assert tally.company()["vouchers"] == []


def test_unbalanced_entry_refused_before_anything_is_sent(tally):
    client = TallyClient(tally.url, COMPANY)
    with pytest.raises(MappingError, match="unbalanced"):
        client.post_journal(entry(credit_total="999.00"))
    assert tally.state()["request_count"] == 0


def test_company_not_loaded_is_retryable(tally):
    client = TallyClient(tally.url, COMPANY)
    tally.fault(unload_company=COMPANY)
    with pytest.raises(CompanyNotLoadedError) as exc:
        client.post_journal(entry())
    assert exc.value.retryable and "is not loaded" in exc.value.detail
    report = client.check()
    assert report["reachable"] and not report["company_loaded"] and report["companies"] == []
    tally.fault(load_company=COMPANY)
    assert client.check()["company_loaded"] is True


def test_unknown_company_name_is_not_loaded(tally):
    with pytest.raises(CompanyNotLoadedError):
        TallyClient(tally.url, "No Such Co").ensure_ledgers(LEDGERS, [])


def test_hang_past_client_timeout_is_transient(tally):
    client = TallyClient(tally.url, COMPANY, timeout=(2, 0.5))
    tally.fault(hang_seconds=1.5, count=1)
    started = time.monotonic()
    with pytest.raises(TransientApiError) as exc:
        client.find_journal("k")
    assert time.monotonic() - started < 1.4
    assert "timed out" in exc.value.message


def test_utf16_round_trip_with_hindi_ledger_name(tally):
    client = TallyClient(tally.url, COMPANY, encoding="utf-16")
    hindi = LedgerMaster("वेतन देय", "Current Liabilities")
    assert client.ensure_ledgers(LEDGERS + [hindi], CENTRES)[-1] == "वेतन देय"
    e = JournalEntry("k-hi", dt.date(2024, 2, 29), "फरवरी वेतन", (
        JournalLine("Salaries & Wages", "gross", debit=Decimal("10.00"), allocations=(
            CostAllocation(CAT, "Asha Rao", Decimal("10.00")),)),
        JournalLine("वेतन देय", "net", credit=Decimal("10.00"))), "src")
    vid = client.post_journal(e)
    [v] = client.day_book(dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert v["master_id"] == vid and v["narration"] == "फरवरी वेतन"
    assert [x["ledger"] for x in v["ledger_entries"]] == ["Salaries & Wages", "वेतन देय"]
    # the raw reply really is UTF-16 when the request was
    from connector_tasks.connectors.tallyprime import envelopes
    body, ctype = envelopes.encode_request(envelopes.company_list_export(), "utf-16")
    raw = requests.post(tally.url, data=body, headers={"Content-Type": ctype}, timeout=5)
    assert raw.content[:2] == b"\xff\xfe" and "utf-16" in raw.headers["Content-Type"]


def test_concurrent_requests_are_serialized(tally):
    tally.fault(hang_seconds=0.4, count=2)
    # separate clients on purpose: the emulator itself must serialise (client lock is per URL,
    # so use distinct URL spellings to bypass it)
    clients = [TallyClient(tally.url, COMPANY), TallyClient(tally.url + "/x", COMPANY)]
    errors = []

    def run(c):
        try:
            c.check()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - started
    state = tally.state()
    assert not errors
    assert state["max_concurrent_arrivals"] == 2  # both were really in the server at once
    assert state["max_in_flight"] == 1
    assert elapsed >= 0.8


def test_check_reports_down_and_up(tally):
    client = TallyClient(tally.url, COMPANY, timeout=(1, 2))
    assert client.check() == {"reachable": True, "companies": [COMPANY], "company_loaded": True,
                              "detail": "ok"}
    tally.fault(down=True)
    report = client.check()
    assert report["reachable"] is False and report["company_loaded"] is False
    tally.fault(down=False)
    assert client.check()["reachable"] is True
    # nothing listening at all: connection refused
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    refused = TallyClient(f"http://127.0.0.1:{port}", COMPANY, timeout=(1, 1)).check()
    assert refused["reachable"] is False and "could not connect" in refused["detail"]


def test_day_book_returns_balanced_voucher_with_cost_allocations(tally):
    client = TallyClient(tally.url, COMPANY)
    client.ensure_ledgers(LEDGERS, CENTRES)
    vid = client.post_journal(entry())
    assert client.day_book("20240201", "20240229") == []
    [v] = client.day_book(dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    assert v["master_id"] == vid and v["remote_id"] == "gusto-payroll-p1-v1"
    assert v["voucher_type"] == "Journal" and v["number"] == "1" and v["date"] == dt.date(2024, 1, 31)
    dr = sum(-e["amount"] for e in v["ledger_entries"] if e["is_debit"])
    cr = sum(e["amount"] for e in v["ledger_entries"] if not e["is_debit"])
    assert dr == cr == Decimal("1000.00")
    assert [(a["cost_centre"], a["amount"]) for a in v["ledger_entries"][0]["cost_allocations"]] == [
        ("Asha Rao", Decimal("-600.00")), ("Bo Chen", Decimal("-400.00"))]


def test_reply_bomb_is_refused(tally):
    client = TallyClient(tally.url, COMPANY)
    tally.fault(reply_bomb=True)
    with pytest.raises(RejectedError) as exc:
        client.find_journal("k")
    assert exc.value.message == "Tally reply refused: entity declarations are not allowed"


def test_emulator_rules_seen_through_raw_xml(tally):
    """Legacy envelope → bare RESPONSE; totals mismatch and dates before books refused;
    &#4; appears in exports."""
    legacy = ("<ENVELOPE><HEADER><TALLYREQUEST>Import Data</TALLYREQUEST></HEADER><BODY><IMPORTDATA>"
              "<REQUESTDESC><REPORTNAME>Vouchers</REPORTNAME><STATICVARIABLES><SVCURRENTCOMPANY>"
              f"{COMPANY}</SVCURRENTCOMPANY></STATICVARIABLES></REQUESTDESC><REQUESTDATA><TALLYMESSAGE>"
              '<VOUCHER REMOTEID="r1" VCHTYPE="Journal" ACTION="Create"><DATE>{date}</DATE>'
              "<VOUCHERTYPENAME>Journal</VOUCHERTYPENAME>"
              "<ALLLEDGERENTRIES.LIST><LEDGERNAME>Cash</LEDGERNAME><ISDEEMEDPOSITIVE>Yes</ISDEEMEDPOSITIVE>"
              "<AMOUNT>-10.00</AMOUNT></ALLLEDGERENTRIES.LIST><ALLLEDGERENTRIES.LIST><LEDGERNAME>"
              "Profit &amp; Loss A/c</LEDGERNAME><ISDEEMEDPOSITIVE>No</ISDEEMEDPOSITIVE><AMOUNT>{cr}</AMOUNT>"
              "</ALLLEDGERENTRIES.LIST></VOUCHER></TALLYMESSAGE></REQUESTDATA></IMPORTDATA></BODY></ENVELOPE>")
    client = TallyClient(tally.url, COMPANY)
    from connector_tasks.connectors.tallyprime import replies
    r = replies.parse_import_reply(client.post(legacy.format(date="20240105", cr="9.00")))
    assert r.line_errors == ("Voucher totals do not match!",) and r.errors == 1 and r.status is None
    r = replies.parse_import_reply(client.post(legacy.format(date="20190105", cr="10.00")))
    assert r.line_errors == ("Date is not within the financial period",)
    text = client.post(legacy.format(date="20240105", cr="10.00"))
    assert text.startswith("<RESPONSE>")
    assert replies.parse_import_reply(text).created == 1
    r = replies.parse_import_reply(client.post(legacy.format(date="20240106", cr="10.00")))
    assert (r.created, r.altered) == (0, 1)  # same REMOTEID with ACTION Create alters
    flipped = legacy.format(date="20240105", cr="10.00").replace('REMOTEID="r1"', 'REMOTEID="r2"') \
        .replace("<ISDEEMEDPOSITIVE>Yes</ISDEEMEDPOSITIVE><AMOUNT>-10.00", "<ISDEEMEDPOSITIVE>Yes</ISDEEMEDPOSITIVE><AMOUNT>10.00") \
        .replace("<ISDEEMEDPOSITIVE>No</ISDEEMEDPOSITIVE><AMOUNT>10.00", "<ISDEEMEDPOSITIVE>No</ISDEEMEDPOSITIVE><AMOUNT>-10.00")
    r = replies.parse_import_reply(client.post(flipped))
    assert r.errors == 1 and "ISDEEMEDPOSITIVE does not match" in r.line_errors[0]
    from connector_tasks.connectors.tallyprime import envelopes
    raw = client.post(envelopes.collection_export(COMPANY, "L", "Ledger", ["Name", "Parent"], '$Name = "Profit & Loss A/c"'))
    assert "<PARENT TYPE=\"String\">&#4; Primary</PARENT>" in raw
    assert replies.parse_collection(raw, "LEDGER")[0]["PARENT"] == "Primary"
