"""TallyPrime as a source of purchases, against the emulator over real HTTP: credentials on
every request of every flow, the purchase poll (high-water marks, AlterID windows, part
numbers, debit notes, cancelled/optional flags, deletions by GUID list) and its cost."""
import datetime as dt
import logging
from decimal import Decimal

import pytest
import requests

from connector_tasks.connectors.tallyprime import TallyClient, exports
from connector_tasks.core.errors import AuthError
from connector_tasks.domain.model import JournalEntry, JournalLine, LedgerMaster

LOCKED = "Locked Traders"
USER, PASSWORD = "owner", "s3cr&t<pw>"


def admin(tally, method: str, path: str, **body):
    r = requests.request(method, f"{tally.url}/_sandbox/{path}", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def locked_company(tally, **seed) -> TallyClient:
    admin(tally, "POST", "companies", name=LOCKED, create=True, books_from="20240401",
          username=USER, password=PASSWORD)
    if seed:
        tally.seed(company=LOCKED, **seed)
    return TallyClient(tally.url, LOCKED, username=USER, password=PASSWORD)


def inventory_masters(tally, company=LOCKED):
    for kind, spec in [("unit", {"name": "Nos", "decimals": 0}),
                       ("unit", {"name": "Kg", "formal_name": "Kilograms", "decimals": 3}),
                       ("godown", {"name": "Stores"}), ("stockgroup", {"name": "Spares"}),
                       ("stockitem", {"name": "Compressor 2T", "part_no": "CMP-2T-001",
                                      "base_units": "Nos", "parent": "Spares"}),
                       ("stockitem", {"name": "Copper Tube", "part_no": "CU-12MM",
                                      "base_units": "Kg"}),
                       ("ledger", {"name": "Cool Air Distributors", "parent": "Sundry Creditors"}),
                       ("ledger", {"name": "Purchases - HVAC", "parent": "Purchase Accounts"}),
                       ("ledger", {"name": "Input IGST", "parent": "Duties & Taxes"})]:
        admin(tally, "POST", "masters", company=company, kind=kind, **spec)


def purchase(tally, company=LOCKED, **over):
    spec = {"company": company, "type": "Purchase", "date": "20240515",
            "party": "Cool Air Distributors", "purchase_ledger": "Purchases - HVAC",
            "reference": "CAD/24-25/0077", "narration": "Compressors for van stock",
            "items": [{"item": "Compressor 2T", "qty": "10", "rate": "250.00", "godown": "Stores"},
                      {"item": "Copper Tube", "qty": "2.500", "rate": "1234.56"}],
            "ledgers": [{"ledger": "Input IGST", "amount": "1005.55"}]}
    spec.update(over)
    return admin(tally, "POST", "vouchers", **spec)


# ----------------------------------------------------------------- credentials

def test_credentials_go_with_every_request_of_every_flow(tally, caplog):
    client = locked_company(tally, purchases=5, debit_notes=1)
    caplog.set_level(logging.DEBUG)
    before = len(tally.state()["requests"])
    assert client.check()["login"] is True
    client.ensure_ledgers([LedgerMaster("Freight Inward", "Direct Expenses", False)], [])
    entry = JournalEntry(key="locked-1", source_ref="t", date=dt.date(2024, 6, 1), narration="n",
                         lines=(JournalLine("Freight Inward", "x", debit=Decimal("10.00")),
                                JournalLine("Cash", "y", credit=Decimal("10.00"))))
    client.post_journal(entry)
    client.masters_snapshot()
    client.day_book("20240401", "20250331")
    list(exports.iter_changed_vouchers(client, since_alter_id=0, from_date="20240401",
                                       to_date="20250331", batch_days=120))
    exports.poll_purchases(client)
    sent = tally.state()["requests"][before:]
    assert len(sent) >= 20
    assert {r["credentials"] for r in sent} == {"valid"}, sent
    # the password reaches no log line, no repr
    assert PASSWORD not in caplog.text and "s3cr" not in caplog.text
    assert PASSWORD not in repr(client) and "***" in repr(client)
    assert PASSWORD not in repr(client.credentials)


@pytest.mark.parametrize("password, text", [
    (None, f"Company '{LOCKED}' needs a User Name and Password"),
    ("wrong", f"Invalid User Name or Password for Company '{LOCKED}'")])
def test_missing_or_wrong_credentials_are_refused_in_tallys_words(tally, password, text):
    locked_company(tally, purchases=2)
    client = TallyClient(tally.url, LOCKED, username=USER if password else None, password=password)
    calls = [lambda: client.find_journal("k"),
             lambda: client.ledger_groups(),
             lambda: client.day_book("20240401", "20250331"),
             lambda: client.ensure_ledgers([LedgerMaster("X Ledger", "Sundry Debtors", False)], []),
             lambda: exports.poll_purchases(client),
             lambda: list(exports.iter_purchase_guids(client)),
             lambda: list(exports.iter_changed_vouchers(client, since_alter_id=0,
                                                        from_date="20240401", to_date="20240501"))]
    for call in calls:
        with pytest.raises(AuthError) as exc:
            call()
        assert text in exc.value.message and exc.value.retryable is False
        assert password is None or password not in str(exc.value)
    report = client.check()
    assert report["company_loaded"] is True
    if password:
        assert report["login"] is False and text in report["detail"]
    assert not [v for v in tally.company(LOCKED)["vouchers"] if v["remote_id"] == "k"]


def test_unprotected_companies_never_see_credentials_asked_for(tally):
    tally.seed(purchases=3)
    plain = TallyClient(tally.url, "Demo Trading Co")
    poll = exports.poll_purchases(plain)
    assert len(poll.vouchers) == 3 and "login" not in plain.check()


# ----------------------------------------------------------------- the poll

def test_purchase_with_inventory_lines_round_trips_exactly(tally):
    client = locked_company(tally)
    inventory_masters(tally)
    saved = purchase(tally)
    poll = exports.poll_purchases(client)
    [v] = poll.vouchers
    assert (v["guid"], v["master_id"], v["alter_id"]) == (saved["guid"], saved["master_id"],
                                                          saved["alter_id"])
    assert (v["date"], v["voucher_type"], v["kind"], v["number"]) == (
        dt.date(2024, 5, 15), "Purchase", "purchase", "1")
    assert (v["party_ledger"], v["reference"], v["narration"]) == (
        "Cool Air Distributors", "CAD/24-25/0077", "Compressors for van stock")
    assert (v["is_cancelled"], v["is_optional"]) == (False, False)
    assert v["total"] == Decimal("2500.00") + Decimal("3086.40") + Decimal("1005.55")
    lines = [(i["stock_item"], i["part_number"], i["quantity"], i["unit"], i["rate"], i["amount"],
              i["godown"], i["is_inward"], i["ledger"]) for i in v["inventory"]]
    assert lines == [
        ("Compressor 2T", "CMP-2T-001", Decimal("10"), "Nos", Decimal("250.00"), Decimal("2500.00"),
         "Stores", True, "Purchases - HVAC"),
        ("Copper Tube", "CU-12MM", Decimal("2.5"), "Kg", Decimal("1234.56"), Decimal("3086.40"),
         "Main Location", True, "Purchases - HVAC")]
    for line in v["inventory"]:
        assert all(type(line[k]) is Decimal for k in ("quantity", "rate", "amount"))
    assert str(v["inventory"][1]["quantity"]) == "2.500"
    assert [(e["ledger"], e["amount"], e["is_party"]) for e in v["ledger_entries"]] == [
        ("Cool Air Distributors", Decimal("6591.95"), True),
        ("Input IGST", Decimal("-1005.55"), False)]
    assert {i["name"]: i["part_number"] for i in poll.stock_items} == {
        "Compressor 2T": "CMP-2T-001", "Copper Tube": "CU-12MM"}
    # &#4; / raw \x04 before names and narrations, as real exports carry them (tally-database-loader), in UTF-16
    for mode in ("ref", "raw"):
        tally.fault(ctrl_refs=mode)
        utf16 = TallyClient(tally.url, LOCKED, username=USER, password=PASSWORD, encoding="utf-16")
        [again] = exports.poll_purchases(utf16).vouchers
        assert again == v
    tally.fault(ctrl_refs=None)


def test_only_vouchers_above_the_watermark_and_alterations_come_back(tally):
    client = locked_company(tally, purchases=40, count=30)
    inventory_masters(tally)
    first = exports.poll_purchases(client)
    assert len(first.vouchers) == 40 and first.count == 40
    old = first.vouchers[7]
    tally.seed(company=LOCKED, count=5, seed=3, touch=["seed-0-1", "seed-0-2"])  # journals only
    new = purchase(tally, reference="CAD/NEW/1")
    altered = admin(tally, "PATCH", f"vouchers/{old['guid']}", company=LOCKED,
                    narration="qty corrected",
                    items=[{"item": "Compressor 2T", "qty": "12", "rate": "250.00"}])
    second = exports.poll_purchases(client, first.state)
    got = {v["guid"]: v for v in second.vouchers}
    assert set(got) == {new["guid"], old["guid"]}
    assert got[old["guid"]]["alter_id"] == altered["alter_id"] > old["alter_id"]
    assert got[old["guid"]]["master_id"] == old["master_id"]
    assert [(i["stock_item"], i["quantity"]) for i in got[old["guid"]]["inventory"]] == [
        ("Compressor 2T", Decimal("12"))]
    assert second.count == 41 and not second.guid_list_fetched
    third = exports.poll_purchases(client, second.state)
    assert third.vouchers == [] and third.requests == 2        # marks + count


def test_deleted_voucher_disappears_from_the_guid_list(tally):
    client = locked_company(tally, purchases=12, debit_notes=2)
    first = exports.poll_purchases(client)
    known = [v["guid"] for v in first.vouchers]
    gone = known[4]
    admin(tally, "DELETE", f"vouchers/{gone}", company=LOCKED)
    guids = dict(exports.iter_purchase_guids(client))
    assert gone not in guids and len(guids) == 13
    assert all(isinstance(a, int) for a in guids.values())
    poll = exports.poll_purchases(client, first.state, known_guids=known)
    assert poll.guid_list_fetched and poll.deleted_guids == [gone]
    assert poll.vouchers == [] and poll.count == 13
    # AltVchId does not fall back when the newest voucher goes
    marks = exports.company_alter_ids(client)
    admin(tally, "DELETE", f"vouchers/{known[-1]}", company=LOCKED)
    assert exports.company_alter_ids(client)["voucher"] == marks["voucher"]
    again = exports.poll_purchases(client, poll.state, known_guids=set(known) - {gone})
    assert again.deleted_guids == [known[-1]]


def test_debit_notes_cancelled_and_optional_vouchers_are_flagged(tally):
    client = locked_company(tally, purchases=6, debit_notes=3, cancelled=2, optional=1)
    inventory_masters(tally)
    admin(tally, "POST", "masters", company=LOCKED, kind="vouchertype", name="HVAC Purchase",
          parent="Purchase")
    admin(tally, "POST", "masters", company=LOCKED, kind="vouchertype", name="Supplier Return",
          parent="Debit Note")
    own_type = purchase(tally, type="HVAC Purchase", reference="OWN-1")
    ret = purchase(tally, type="Supplier Return", reference="RET-1",
                   items=[{"item": "Compressor 2T", "qty": "1", "rate": "250.00"}], ledgers=[])
    poll = exports.poll_purchases(client)
    by_ref = {v["reference"]: v for v in poll.vouchers}
    assert sum(v["kind"] == "debit_note" for v in poll.vouchers) == 4
    assert sum(v["is_cancelled"] for v in poll.vouchers) == 2
    assert sum(v["is_optional"] for v in poll.vouchers) == 1
    assert by_ref["OWN-1"]["kind"] == "purchase" and by_ref["OWN-1"]["voucher_type"] == "HVAC Purchase"
    r = by_ref["RET-1"]
    assert (r["kind"], r["voucher_type"], r["inventory"][0]["is_inward"]) == (
        "debit_note", "Supplier Return", False)
    assert r["ledger_entries"][0]["amount"] == Decimal("-250.00")     # the supplier is debited
    cancelled = admin(tally, "POST", f"vouchers/{own_type['guid']}/cancel", company=LOCKED)
    after = exports.poll_purchases(client, poll.state)
    assert [(v["guid"], v["is_cancelled"], v["alter_id"]) for v in after.vouchers] == [
        (own_type["guid"], True, cancelled["alter_id"])]
    assert after.count == poll.count and not after.guid_list_fetched
    assert ret["guid"] in dict(exports.iter_purchase_guids(client))


def test_stock_items_changed_since_the_master_mark(tally):
    client = locked_company(tally)
    inventory_masters(tally)
    first = exports.poll_purchases(client)
    assert {i["name"] for i in first.stock_items} == {"Compressor 2T", "Copper Tube"}
    admin(tally, "POST", "masters", company=LOCKED, kind="stockitem", name="Copper Tube",
          part_no="CU-12MM-B")
    cache: dict = {}
    second = exports.poll_purchases(client, first.state, part_numbers=cache)
    assert [(i["name"], i["part_number"], i["base_unit"]) for i in second.stock_items] == [
        ("Copper Tube", "CU-12MM-B", "Kg")]
    assert cache == {"Copper Tube": "CU-12MM-B"}
    purchase(tally)
    third = exports.poll_purchases(client, second.state, part_numbers=cache)
    assert [i["part_number"] for i in third.vouchers[0]["inventory"]] == ["CMP-2T-001", "CU-12MM-B"]
    assert cache["Compressor 2T"] == "CMP-2T-001"    # read once, by name


def test_poll_cost_follows_the_changes_not_the_books(tally):
    client = locked_company(tally, purchases=3000, stock_items=40)
    parts: dict = {}
    first = exports.poll_purchases(client, window=1000, part_numbers=parts)
    # marks, stock items, 4 windows of 1 000 AlterIDs, count (part numbers came with the items)
    assert len(first.vouchers) == 3000 and first.requests == 1 + 1 + 4 + 1
    for ref in range(5):
        purchase_ref = tally.state()["companies"][-1]["vouchers"][ref * 100]["guid"]
        admin(tally, "POST", f"vouchers/{purchase_ref}/cancel", company=LOCKED)
    before = tally.state()["request_count"]
    poll = exports.poll_purchases(client, first.state, window=1000, part_numbers=parts)
    assert len(poll.vouchers) == 5 and poll.requests == 3            # marks, 1 window, count
    assert tally.state()["request_count"] - before == poll.requests
    assert not poll.guid_list_fetched
