"""Reply decoding and parsing for TallyPrime (https://help.tallysolutions.com/xml-integration/ "Response"; https://github.com/dhananjay1405/tally-database-loader processTdlOutputManipulation; https://help.tallysolutions.com/xml-integration/)."""
from decimal import Decimal

import pytest

from connector_tasks.connectors.tallyprime import replies
from connector_tasks.core.errors import RejectedError, TransientApiError

V1_OK = ("<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>1</STATUS></HEADER><BODY><DATA><IMPORTRESULT>"
         "<CREATED>2</CREATED><ALTERED>0</ALTERED><LASTVCHID>119</LASTVCHID><LASTMID>0</LASTMID>"
         "<COMBINED>0</COMBINED><IGNORED>0</IGNORED><ERRORS>0</ERRORS></IMPORTRESULT></DATA></BODY></ENVELOPE>")
LEGACY_EXC = ("<RESPONSE><CREATED>0</CREATED><ALTERED>0</ALTERED><DELETED>0</DELETED><LASTVCHID>0</LASTVCHID>"
              "<LASTMID>0</LASTMID><COMBINED>0</COMBINED><IGNORED>0</IGNORED><ERRORS>0</ERRORS>"
              "<CANCELLED>0</CANCELLED><EXCEPTIONS>17</EXCEPTIONS></RESPONSE>")
LINEERR = ("<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>1</STATUS></HEADER><BODY><DATA>"
           "<LINEERROR>Ledger 'Salaries &amp; Wages' does not exist!</LINEERROR>"
           "<LINEERROR>Voucher totals do not match!</LINEERROR>"
           "<IMPORTRESULT><CREATED>0</CREATED><ERRORS>2</ERRORS></IMPORTRESULT></DATA></BODY></ENVELOPE>")
BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        '<ENVELOPE><BODY><DATA>&lol3;</DATA></BODY></ENVELOPE>')


def test_version1_wrapper_counters():
    r = replies.parse_import_reply(V1_OK)
    assert (r.created, r.altered, r.last_vch_id, r.errors, r.status) == (2, 0, 119, 0, 1)
    replies.ensure_success(r, expect="created")
    with pytest.raises(RejectedError, match="nothing was altered"):
        replies.ensure_success(r, expect="altered")


def test_legacy_response_wrapper_exceptions_without_text_is_a_failure():
    r = replies.parse_import_reply(LEGACY_EXC)
    assert r.exceptions == 17 and r.created == 0 and r.status is None and r.line_errors == ()
    with pytest.raises(RejectedError) as exc:
        replies.ensure_success(r, expect="any")
    assert "EXCEPTIONS=17" in exc.value.message and exc.value.system == "tallyprime"


def test_line_errors_anywhere_are_collected_in_order_with_tally_text():
    r = replies.parse_import_reply(LINEERR)
    assert r.line_errors == ("Ledger 'Salaries & Wages' does not exist!", "Voucher totals do not match!")
    with pytest.raises(RejectedError) as exc:
        replies.ensure_success(r)
    assert exc.value.lines == list(r.line_errors)
    assert "Ledger 'Salaries & Wages' does not exist!" in exc.value.message


def test_status0_envelope_text_becomes_a_line_error():
    r = replies.parse_import_reply("<ENVELOPE><HEADER><STATUS>0</STATUS></HEADER><BODY><DATA>DESC not found"
                                   "</DATA></BODY></ENVELOPE>")
    assert r.status == 0 and r.line_errors == ("DESC not found",)
    with pytest.raises(RejectedError, match="DESC not found"):
        replies.ensure_success(r, expect="any")


def test_http_200_that_created_nothing_is_a_failure():
    r = replies.parse_import_reply(LEGACY_EXC.replace("<EXCEPTIONS>17</EXCEPTIONS>", "<EXCEPTIONS>0</EXCEPTIONS>"))
    with pytest.raises(RejectedError, match="nothing was created"):
        replies.ensure_success(r, expect="created")


def test_not_an_import_reply_is_refused():
    with pytest.raises(RejectedError, match="not an import result"):
        replies.parse_import_reply("<ENVELOPE><BODY/></ENVELOPE>")


def test_sanitize_strips_illegal_char_refs_and_raw_controls_keeps_legal():
    raw = "<A><P>&#4; Primary</P><Q>&#x4;x&#x1F;</Q><R>a&#10;b&#x939;</R><S>\x04raw\x07</S></A>"
    clean = replies.sanitize(raw)
    assert "&#4;" not in clean and "&#x4;" not in clean and "&#x1F;" not in clean
    assert "&#10;" in clean and "&#x939;" in clean and "\x04" not in clean
    doc = replies.parse_xml(raw)["A"]
    assert doc["P"] == "Primary" and doc["Q"] == "x" and doc["R"] == "a\nbह" and doc["S"] == "raw"


def test_parse_collection_with_real_export_quirks():
    text = ('<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>1</STATUS></HEADER><BODY><DESC></DESC><DATA>'
            '<COLLECTION><LEDGER NAME="Cash" RESERVEDNAME=""><PARENT TYPE="String">&#4; Primary</PARENT>'
            '<MASTERID TYPE="Number"> 12</MASTERID></LEDGER><LEDGER NAME="Duties &amp; Taxes X">'
            '<PARENT TYPE="String">Duties &amp; Taxes</PARENT></LEDGER></COLLECTION></DATA></BODY></ENVELOPE>')
    rows = replies.parse_collection(text, "LEDGER")
    assert rows[0]["NAME"] == "Cash" and rows[0]["PARENT"] == "Primary" and rows[0]["MASTERID"] == "12"
    assert rows[1] == {"NAME": "Duties & Taxes X", "PARENT": "Duties & Taxes"}
    assert replies.parse_collection(text.replace("<LEDGER", "<X").replace("</LEDGER", "</X"), "LEDGER") == []


def test_export_failure_raises_with_tally_text():
    with pytest.raises(RejectedError, match="Could not find"):
        replies.parse_collection("<ENVELOPE><HEADER><STATUS>0</STATUS></HEADER><BODY><DATA>"
                                 "<LINEERROR>Could not find Ledger 'X'</LINEERROR></DATA></BODY></ENVELOPE>", "LEDGER")


def test_parse_day_book_amounts_are_decimal():
    text = ('<ENVELOPE><BODY><IMPORTDATA><REQUESTDATA><TALLYMESSAGE><VOUCHER REMOTEID="k1" VCHTYPE="Journal">'
            '<DATE>31-Jan-2024</DATE><VOUCHERTYPENAME>Journal</VOUCHERTYPENAME><VOUCHERNUMBER>7</VOUCHERNUMBER>'
            '<NARRATION>n</NARRATION><ALLLEDGERENTRIES.LIST><LEDGERNAME>A</LEDGERNAME><ISDEEMEDPOSITIVE>Yes'
            '</ISDEEMEDPOSITIVE><AMOUNT>-0.10</AMOUNT></ALLLEDGERENTRIES.LIST><ALLLEDGERENTRIES.LIST>'
            '<LEDGERNAME>B</LEDGERNAME><ISDEEMEDPOSITIVE>No</ISDEEMEDPOSITIVE><AMOUNT>0.10</AMOUNT>'
            '</ALLLEDGERENTRIES.LIST></VOUCHER></TALLYMESSAGE></REQUESTDATA></IMPORTDATA></BODY></ENVELOPE>')
    [v] = replies.parse_day_book(text)
    assert v["date"].isoformat() == "2024-01-31" and v["number"] == "7" and v["remote_id"] == "k1"
    amounts = [e["amount"] for e in v["ledger_entries"]]
    assert amounts == [Decimal("-0.10"), Decimal("0.10")] and all(isinstance(a, Decimal) for a in amounts)
    assert v["ledger_entries"][0]["is_deemed_positive"] is True


def test_xml_bomb_is_refused_not_expanded():
    with pytest.raises(RejectedError) as exc:
        replies.parse_xml(BOMB)
    assert exc.value.message == "Tally reply refused: entity declarations are not allowed"
    with pytest.raises(RejectedError):
        replies.parse_import_reply(BOMB)


def test_not_well_formed_reply_is_transient():
    with pytest.raises(TransientApiError):
        replies.parse_xml("<ENVELOPE><BODY>")


def test_decode_body_variants():
    assert replies.decode_body("<A>é</A>".encode("utf-8"), "text/xml; charset=utf-8") == "<A>é</A>"
    assert replies.decode_body(b"\xff\xfe" + "<A>ह</A>".encode("utf-16-le"), None) == "<A>ह</A>"
    assert replies.decode_body(b"\xfe\xff" + "<A>ह</A>".encode("utf-16-be"), None) == "<A>ह</A>"
    assert replies.decode_body("<A>ह</A>".encode("utf-16-le"), "text/xml;charset=utf-16") == "<A>ह</A>"
    assert replies.decode_body("<A/>".encode("utf-16-le"), None) == "<A/>"
