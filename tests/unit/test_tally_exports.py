"""Streaming export reader for TallyPrime (https://help.tallysolutions.com/pre-requisites-for-integrations/ UTF-16, Tally XML case study 1 change tracking,
tally-database-loader ``&#4;`` and large exports). No network: replies are fed as bytes."""
import datetime as dt
import io
from decimal import Decimal

import pytest

from connector_tasks.connectors.tallyprime import exports, replies
from connector_tasks.connectors.tallyprime.client import CompanyNotLoadedError
from connector_tasks.core.errors import (
    ConfigurationError, MappingError, RejectedError, TransientApiError,
)

VOUCHER = (
    '<VOUCHER REMOTEID="gusto-payroll-p1-v1" VCHTYPE="Journal" ACTION="Create">'
    '<DATE TYPE="Date">20240131</DATE><VOUCHERTYPENAME>Journal</VOUCHERTYPENAME>'
    '<VOUCHERNUMBER>12</VOUCHERNUMBER><NARRATION>&#4; Payroll Jan &amp; bonus {n}</NARRATION>'
    '<PARTYLEDGERNAME>&#4;Acme Traders</PARTYLEDGERNAME>'
    '<GUID TYPE="String">52889497-5b6b-403d-8f83-224e3c7759b4-00001018</GUID>'
    '<MASTERID TYPE="Number"> {n}</MASTERID><ALTERID TYPE="Number"> {a}</ALTERID>'
    '<ALLLEDGERENTRIES.LIST><LEDGERNAME>Salaries &amp; Wages</LEDGERNAME>'
    '<ISDEEMEDPOSITIVE>Yes</ISDEEMEDPOSITIVE><AMOUNT>-1000.00</AMOUNT></ALLLEDGERENTRIES.LIST>'
    '<ALLLEDGERENTRIES.LIST><LEDGERNAME>TDS Payable</LEDGERNAME>'
    '<ISDEEMEDPOSITIVE>No</ISDEEMEDPOSITIVE><AMOUNT>150.25</AMOUNT></ALLLEDGERENTRIES.LIST>'
    '<LEDGERENTRIES.LIST><LEDGERNAME>Net Salary Payable</LEDGERNAME>'
    '<ISDEEMEDPOSITIVE>No</ISDEEMEDPOSITIVE><AMOUNT>849.75</AMOUNT></LEDGERENTRIES.LIST>'
    '</VOUCHER>')


def collection(n=1, extra="") -> str:
    body = "".join(VOUCHER.format(n=i + 1, a=100 + i) for i in range(n))
    return ("<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>1</STATUS></HEADER><BODY><DESC></DESC>"
            f"<DATA><COLLECTION>{extra}{body}</COLLECTION></DATA></BODY></ENVELOPE>")


BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
        '<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
        '<ENVELOPE><BODY><DATA><COLLECTION><VOUCHER><NARRATION>&lol9;</NARRATION></VOUCHER>'
        '</COLLECTION></DATA></BODY></ENVELOPE>')


def chunks(data: bytes, size: int):
    return [data[i:i + size] for i in range(0, len(data), size)]


def clean(data: bytes, content_type=None, size=7) -> str:
    return exports.SanitizingStream(chunks(data, size), content_type).read().decode("utf-8")


# ----------------------------------------------------------------- sanitiser

def test_sanitiser_strips_illegal_references_split_at_every_boundary():
    text = "<A>&#4; Primary|&#x1F;x|&#0;|\x04raw|&#10;|&#x939;|&amp;|&lt;|&#4;</A>"
    want = replies.sanitize(text)
    assert want == "<A> Primary|x||raw|&#10;|&#x939;|&amp;|&lt;|</A>"
    data = text.encode()
    for cut in range(1, len(data)):
        assert exports.SanitizingStream([data[:cut], data[cut:]]).read().decode() == want, cut
    for size in (1, 2, 3, 5):
        assert clean(data, size=size) == want


def test_sanitiser_read_respects_size_and_file_sources():
    data = collection(3).encode()
    s = exports.SanitizingStream(io.BytesIO(data), chunk_size=10)
    parts = []
    while True:
        part = s.read(17)
        assert len(part) <= 17
        if not part:
            break
        parts.append(part)
    assert b"".join(parts).decode() == replies.sanitize(data.decode())
    assert s.bytes_in == len(data) and s.encoding == "utf-8"


@pytest.mark.parametrize("prefix, codec, content_type", [
    (b"\xff\xfe", "utf-16-le", None),                       # BOM LE
    (b"\xfe\xff", "utf-16-be", "text/xml; charset=utf-8"),  # BOM beats a wrong charset
    (b"", "utf-16-le", "text/xml;charset=utf-16"),          # no BOM, declared charset
    (b"", "utf-16-le", None),                               # no BOM, no charset: '<\\x00'
    (b"\xef\xbb\xbf", "utf-8", "text/xml; charset=utf-8"),  # UTF-8 BOM dropped
])
def test_utf16_with_and_without_bom_split_at_odd_bytes(prefix, codec, content_type):
    text = ('<?xml version="1.0" encoding="UTF-16"?>'
            + collection(2).replace("Payroll Jan", "वेतन 😀 Jan"))
    data = prefix + text.encode(codec)
    for size in (1, 3, 4096):
        vouchers = list(exports.iter_export_vouchers(chunks(data, size), content_type))
        assert [v.narration for v in vouchers] == ["वेतन 😀 Jan & bonus 1", "वेतन 😀 Jan & bonus 2"]
        assert vouchers[0].party_ledger == "Acme Traders"


# ----------------------------------------------------------------- refusals

@pytest.mark.parametrize("codec", ["utf-8", "utf-16-le"])
@pytest.mark.parametrize("size", [3, 65536])
def test_entity_bomb_is_refused_not_expanded(codec, size):
    data = BOMB.encode(codec)
    with pytest.raises(RejectedError, match="entity declarations are not allowed"):
        list(exports.iter_export_vouchers(chunks(data, size),
                                          "text/xml;charset=utf-16" if codec != "utf-8" else None))


def test_external_dtd_is_refused():
    doc = '<?xml version="1.0"?><!DOCTYPE e SYSTEM "http://127.0.0.1:1/x.dtd"><ENVELOPE/>'
    with pytest.raises(RejectedError):
        list(exports.iter_export_vouchers(io.BytesIO(doc.encode())))


def test_failure_envelopes():
    status0 = ("<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>0</STATUS></HEADER><BODY>"
               "<DATA>Could not find Collection 'X'</DATA></BODY></ENVELOPE>")
    with pytest.raises(RejectedError, match="Could not find Collection") as exc:
        list(exports.iter_export_vouchers(io.BytesIO(status0.encode())))
    assert exc.value.system == "tallyprime"
    not_loaded = ("<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>0</STATUS></HEADER><BODY><DATA>"
                  "<LINEERROR>Company 'ACME' is not loaded!</LINEERROR></DATA></BODY></ENVELOPE>")
    with pytest.raises(CompanyNotLoadedError):
        list(exports.iter_export_vouchers(io.BytesIO(not_loaded.encode())))
    truncated = collection(3).encode()[:-40]
    it = exports.iter_export_vouchers(io.BytesIO(truncated))
    with pytest.raises(TransientApiError, match="not well-formed"):
        list(it)
    with pytest.raises(MappingError):
        list(exports.iter_export_vouchers(io.BytesIO(collection(1).replace("150.25", "1,50").encode())))


# ----------------------------------------------------------------- shapes

def test_voucher_shape_with_decimal_amounts():
    [v] = list(exports.iter_export_vouchers(io.BytesIO(collection(1).encode())))
    assert isinstance(v, exports.ExportedVoucher)
    assert v.date == dt.date(2024, 1, 31)
    assert (v.voucher_type, v.number, v.remote_id) == ("Journal", "12", "gusto-payroll-p1-v1")
    assert (v.master_id, v.alter_id) == (1, 100)
    assert v.guid == "52889497-5b6b-403d-8f83-224e3c7759b4-00001018"
    assert v.narration == "Payroll Jan & bonus 1" and v.party_ledger == "Acme Traders"
    assert [(e.ledger, e.amount, e.is_deemed_positive, e.is_debit) for e in v.ledger_entries] == [
        ("Salaries & Wages", Decimal("-1000.00"), True, True),
        ("TDS Payable", Decimal("150.25"), False, False),
        ("Net Salary Payable", Decimal("849.75"), False, False)]
    assert all(type(e.amount) is Decimal for e in v.ledger_entries)
    assert sum(e.amount for e in v.ledger_entries) == 0
    assert v.as_dict()["ledger_entries"][1]["amount"] == Decimal("150.25")


def test_remote_id_from_child_and_day_book_nesting():
    doc = ("<ENVELOPE><HEADER><TALLYREQUEST>Import Data</TALLYREQUEST></HEADER><BODY><IMPORTDATA>"
           "<REQUESTDATA><TALLYMESSAGE><VOUCHER VCHTYPE=\"Payment\"><DATE>31-Jan-2024</DATE>"
           "<REMOTEID>r-1</REMOTEID></VOUCHER></TALLYMESSAGE></REQUESTDATA></IMPORTDATA></BODY></ENVELOPE>")
    [v] = list(exports.iter_export_vouchers(io.BytesIO(doc.encode())))
    assert (v.remote_id, v.voucher_type, v.date, v.master_id, v.ledger_entries) == (
        "r-1", "Payment", dt.date(2024, 1, 31), None, ())


def test_tree_is_released_as_vouchers_stream():
    def peak(n_vouchers):
        sizes = []

        def convert(el):
            sizes.append(sum(1 for _ in el.getroottree().getroot().iter()))
            return exports._voucher_of(el)

        data = collection(n_vouchers).encode()
        n = sum(1 for _ in exports._iter_objects(io.BytesIO(data), None, "VOUCHER", convert))
        assert n == n_vouchers
        return max(sizes)

    # What stays in the tree is lxml's read-ahead (~32 KB of text), not the export so far:
    # 8,000 vouchers = 136,000 elements, yet no more are alive than with 1,000.
    small, big = peak(1000), peak(8000)
    assert big <= small + 50 and big < 2000, (small, big)


def test_masters_parent_primary_is_clean():
    doc = ("<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>1</STATUS></HEADER><BODY><DATA><COLLECTION>"
           '<LEDGER NAME="Cash" RESERVEDNAME=""><NAME>Cash</NAME><PARENT TYPE="String">&#4; Primary'
           '</PARENT><MASTERID TYPE="Number"> 7</MASTERID><ALTERID> 9</ALTERID><GUID>g-7</GUID>'
           "</LEDGER></COLLECTION></DATA></BODY></ENVELOPE>")
    [m] = list(exports.iter_export_masters(io.BytesIO(doc.encode()), None, "LEDGER"))
    assert (m.kind, m.name, m.master_id, m.alter_id, m.guid) == ("LEDGER", "Cash", 7, 9, "g-7")
    assert m.fields["PARENT"] == "Primary"


# ----------------------------------------------------------------- envelopes and batching

def test_envelopes_carry_filter_dates_and_fetch():
    xml = exports.changed_vouchers_export("Duties & Co", 1234, dt.date(2024, 4, 1), "20240430")
    assert "<SYSTEM TYPE=\"Formulae\" NAME=\"Fltr01\">$AlterID &gt; 1234</SYSTEM>" in xml
    assert "<SVFROMDATE>20240401</SVFROMDATE><SVTODATE>20240430</SVTODATE>" in xml
    assert "<SVCURRENTCOMPANY>Duties &amp; Co</SVCURRENTCOMPANY>" in xml
    assert ("<FETCH>Date, VoucherNumber, VoucherTypeName, Narration, PartyLedgerName, "
            "AllLedgerEntries, MasterId, AlterId, Guid, RemoteId</FETCH>") in xml
    ledgers = exports.changed_masters_export("ACME", "Ledger", 5)
    assert "<TYPE>Ledger</TYPE>" in ledgers and "$AlterID &gt; 5" in ledgers
    assert "SVFROMDATE" not in ledgers
    assert "<TYPE>CostCentre</TYPE>" in exports.changed_masters_export("ACME", "CostCentre", 0)
    assert "AltMstId, AltVchId" in exports.company_alter_ids_export()
    for bad in (-1, "5", 1.0, True, "1 or 1"):
        with pytest.raises(ConfigurationError):
            exports.alter_id_filter(bad)
    with pytest.raises(ConfigurationError):
        exports.changed_masters_export("ACME", "StockItem", 0)


def test_date_batches_partition_the_range():
    b = exports.date_batches(dt.date(2024, 1, 30), dt.date(2024, 3, 2), 10)
    assert b[0] == (dt.date(2024, 1, 30), dt.date(2024, 2, 8))
    assert b[-1][1] == dt.date(2024, 3, 2)
    days = [d for s, e in b for d in range((e - s).days + 1)]
    assert len(days) == (dt.date(2024, 3, 2) - dt.date(2024, 1, 30)).days + 1
    assert all(b[i][1] + dt.timedelta(days=1) == b[i + 1][0] for i in range(len(b) - 1))
    with pytest.raises(ValueError):
        exports.date_batches(dt.date(2024, 2, 1), dt.date(2024, 1, 1), 1)


# ----------------------------------------------------------------- HTTP edge (fake session)

class _BrokenRaw:
    """urllib3-like raw body: yields ``parts`` then the connection drops mid-stream."""

    def __init__(self, parts):
        self.parts = parts

    def stream(self, _size, decode_content=True):
        from urllib3.exceptions import ProtocolError
        yield from self.parts
        raise ProtocolError("Connection broken: IncompleteRead")

    def read1(self, _size, decode_content=True):
        from urllib3.exceptions import ProtocolError
        if self.parts:
            return self.parts.pop(0)
        raise ProtocolError("Connection broken: IncompleteRead")

    def close(self):
        pass


class _Session:
    def __init__(self, status, parts):
        self.status, self.parts, self.sent = status, parts, []

    def request(self, method, url, **kwargs):
        import requests
        self.sent.append(kwargs)
        resp = requests.Response()
        resp.status_code, resp.url = self.status, url
        resp.headers["Content-Type"] = "text/xml; charset=utf-16"
        resp.raw = _BrokenRaw(self.parts)
        resp.request = requests.Request(method, url).prepare()
        return resp


def test_stream_broken_mid_way_is_transient_and_frees_the_lock():
    from connector_tasks.connectors.tallyprime import TallyClient
    data = b"\xff\xfe" + collection(200).encode("utf-16-le")
    session = _Session(200, chunks(data, 4096)[:20])
    client = TallyClient("http://tally.invalid:9000", "ACME", session=session, encoding="utf-16")
    run = exports.iter_changed_vouchers(client, since_alter_id=0, from_date="20240101",
                                        to_date="20240131", check_company=False)
    got = []
    with pytest.raises(TransientApiError, match="broke off"):
        for v in run:
            got.append(v)
    assert 0 < len(got) < 200 and not client._lock.locked()
    sent = session.sent[0]
    assert sent["stream"] is True and sent["headers"]["Content-Type"] == "text/xml;charset=utf-16"
    assert "$AlterID &gt; 0".encode("utf-16-le") in sent["data"]


def test_non_200_is_classified():
    from connector_tasks.connectors.tallyprime import TallyClient
    client = TallyClient("http://tally.invalid:9000", "ACME", session=_Session(503, []))
    with pytest.raises(TransientApiError) as exc:
        list(exports.iter_changed_vouchers(client, since_alter_id=0, from_date="20240101",
                                           to_date="20240101", check_company=False))
    assert exc.value.status == 503 and not client._lock.locked()


# ----------------------------------------------------------------- purchases

LAID_OUT = (
    '<ENVELOPE>\r\n <HEADER>\r\n  <VERSION>1</VERSION>\r\n  <STATUS>1</STATUS>\r\n </HEADER>\r\n'
    ' <BODY>\r\n  <DESC>\r\n   <CMPINFO>\r\n    <STOCKITEM>0</STOCKITEM>\r\n    <VOUCHER>0</VOUCHER>\r\n'
    '   </CMPINFO>\r\n  </DESC>\r\n  <DATA>\r\n   <COLLECTION>\r\n'
    '    <VOUCHER REMOTEID="" VCHTYPE="Supplier Return" ACTION="Create" OBJVIEW="Invoice Voucher View">\r\n'
    '     <DATE TYPE="Date">20240515</DATE>\r\n'
    '     <VOUCHERTYPENAME TYPE="String">Supplier Return</VOUCHERTYPENAME>\r\n'
    '     <VOUCHERNUMBER TYPE="String">7</VOUCHERNUMBER>\r\n'
    '     <REFERENCE TYPE="String">RET/77</REFERENCE>\r\n'
    '     <REFERENCEDATE TYPE="Date"></REFERENCEDATE>\r\n'
    '     <PARTYLEDGERNAME TYPE="String">&#4; Cool Air &amp; Co</PARTYLEDGERNAME>\r\n'
    '     <ISCANCELLED TYPE="Logical">No</ISCANCELLED>\r\n'
    '     <ISOPTIONAL TYPE="Logical">Yes</ISOPTIONAL>\r\n'
    '     <GUID TYPE="String">g-1</GUID>\r\n     <MASTERID TYPE="Number"> 41</MASTERID>\r\n'
    '     <ALTERID TYPE="Number"> 907</ALTERID>\r\n'
    '     <LEDGERENTRIES.LIST>\r\n      <LEDGERNAME TYPE="String">Cool Air &amp; Co</LEDGERNAME>\r\n'
    '      <ISPARTYLEDGER TYPE="Logical">Yes</ISPARTYLEDGER>\r\n'
    '      <AMOUNT TYPE="Amount">-3086.40</AMOUNT>\r\n     </LEDGERENTRIES.LIST>\r\n'
    '     <ALLINVENTORYENTRIES.LIST>\r\n      <STOCKITEMNAME TYPE="String">Copper Tube</STOCKITEMNAME>\r\n'
    '      <ISDEEMEDPOSITIVE TYPE="Logical">No</ISDEEMEDPOSITIVE>\r\n'
    '      <RATE TYPE="Rate">1234.56/Kg</RATE>\r\n      <ACTUALQTY TYPE="Quantity"> 2.500 Kg</ACTUALQTY>\r\n'
    '      <BILLEDQTY TYPE="Quantity"> 2.500 Kg</BILLEDQTY>\r\n      <AMOUNT TYPE="Amount">3086.40</AMOUNT>\r\n'
    '      <BATCHALLOCATIONS.LIST>\r\n       <GODOWNNAME TYPE="String">Stores</GODOWNNAME>\r\n'
    '       <BATCHNAME TYPE="String">Primary Batch</BATCHNAME>\r\n'
    '       <AMOUNT TYPE="Amount">3086.40</AMOUNT>\r\n       <ACTUALQTY TYPE="Quantity"> 2.500 Kg</ACTUALQTY>\r\n'
    '      </BATCHALLOCATIONS.LIST>\r\n      <ACCOUNTINGALLOCATIONS.LIST>\r\n'
    '       <LEDGERNAME TYPE="String">Purchases - HVAC</LEDGERNAME>\r\n'
    '       <AMOUNT TYPE="Amount">3086.40</AMOUNT>\r\n      </ACCOUNTINGALLOCATIONS.LIST>\r\n'
    '     </ALLINVENTORYENTRIES.LIST>\r\n     <MLCISDEBITNOTE TYPE="Logical">Yes</MLCISDEBITNOTE>\r\n'
    '    </VOUCHER>\r\n   </COLLECTION>\r\n  </DATA>\r\n </BODY>\r\n</ENVELOPE>\r\n')


def test_purchase_reader_on_a_reply_laid_out_as_tally_does():
    [v] = list(exports._iter_objects(io.BytesIO(b"\xff\xfe" + LAID_OUT.encode("utf-16-le")), None,
                                     "VOUCHER", exports._purchase_of))
    assert (v["guid"], v["master_id"], v["alter_id"], v["date"]) == ("g-1", 41, 907, dt.date(2024, 5, 15))
    assert (v["kind"], v["voucher_type"], v["number"], v["reference"], v["reference_date"]) == (
        "debit_note", "Supplier Return", "7", "RET/77", None)
    assert (v["party_ledger"], v["is_cancelled"], v["is_optional"], v["total"]) == (
        "Cool Air & Co", False, True, Decimal("3086.40"))
    [line] = v["inventory"]
    assert line == {"stock_item": "Copper Tube", "part_number": None, "quantity": Decimal("2.500"),
                    "unit": "Kg", "rate": Decimal("1234.56"), "rate_unit": "Kg",
                    "amount": Decimal("3086.40"), "is_inward": False, "godown": "Stores",
                    "batches": [{"godown": "Stores", "batch": "Primary Batch",
                                 "quantity": Decimal("2.500"), "amount": Decimal("3086.40")}],
                    "ledger": "Purchases - HVAC"}
    assert v["ledger_entries"] == [{"ledger": "Cool Air & Co", "amount": Decimal("-3086.40"), "is_party": True}]


def test_quantity_and_rate_texts():
    assert exports.parse_quantity(" 10 Nos") == (Decimal("10"), "Nos")
    assert exports.parse_quantity("1,250.500 Kg") == (Decimal("1250.500"), "Kg")
    assert exports.parse_quantity(" 2 Box = 24 Nos") == (Decimal("2"), "Box")
    assert exports.parse_quantity("") == (Decimal(0), "")
    assert exports.parse_rate("250.00/Nos") == (Decimal("250.00"), "Nos")
    assert exports.parse_rate("$3.00 = ₹249.60/Nos") == (Decimal("249.60"), "Nos")
    assert exports.parse_rate("12.5") == (Decimal("12.5"), "")
    with pytest.raises(MappingError):
        exports.parse_quantity("lots")


def test_counters_in_desc_are_not_objects():
    doc = LAID_OUT.replace("<STOCKITEM>0</STOCKITEM>", "<STOCKITEM>3</STOCKITEM>")
    assert list(exports._iter_objects(io.BytesIO(doc.encode()), None, "STOCKITEM",
                                      exports._stock_item_of)) == []
    rows = list(exports._iter_objects(io.BytesIO(doc.encode()), None, "VOUCHER", exports._guid_pair))
    assert rows == [("g-1", 907)]


def test_client_repr_and_credentials_never_show_the_password():
    from connector_tasks.connectors.tallyprime import TallyClient
    c = TallyClient("http://h:9000", "Co", username="u", password="hunter2")
    assert "hunter2" not in repr(c) and "hunter2" not in repr(c.credentials)
    assert "hunter2" not in repr(c.clone("Other")) and c.clone("Other").credentials == c.credentials
    with pytest.raises(ConfigurationError):
        TallyClient("http://h:9000", "Co", password="x")
    body, _ct = c.encode("<ENVELOPE><BODY><DESC><STATICVARIABLES></STATICVARIABLES></DESC></BODY></ENVELOPE>")
    assert b"<SVCURRENTUSER>u</SVCURRENTUSER>" in body
