"""The purchase flow's pure parts: a polled Tally voucher → Purchase (Decimal exact), exact
matching of vendor and SKUs (no fuzzy matching), the unmatched text naming every miss, the
ServiceTitan settings' rules and the poll result checks."""
import datetime as dt
from decimal import Decimal

import pytest

from connector_tasks.connectors.servicetitan.settings import ServiceTitanSettings
from connector_tasks.connectors.tallyprime.polling import _check_result
from connector_tasks.connectors.tallyprime.source import purchase_from_voucher
from connector_tasks.core.errors import ConfigurationError, MappingError
from connector_tasks.domain.purchases import Purchase
from connector_tasks.flows.purchase_to_order import index, marker, match_purchase, memo_for, purchase_key


def voucher(**over):
    v = {"guid": "g-1", "master_id": 7, "alter_id": 41, "date": "2024-05-15", "voucher_type": "Purchase",
         "kind": "purchase", "number": "12", "party_ledger": "Ferguson Enterprises", "reference": "INV-77",
         "narration": "van stock", "is_cancelled": False, "is_optional": False, "total": "2548.06",
         "inventory": [{"stock_item": "Copper pipe 3/4in", "part_number": "CU-PIPE-075", "quantity": "12",
                        "unit": "Nos", "rate": "38.50", "amount": "462.00", "godown": "Main Location"},
                       {"stock_item": "Copper Tube", "part_number": "CU-12MM", "quantity": "2.500", "unit": "Kg",
                        "rate": "1234.56", "amount": "3086.40", "godown": ""}]}
    v.update(over)
    return v


VENDORS = index([{"id": 1, "name": "Ferguson Enterprises"}, {"id": 2, "name": "Johnstone Supply"},
                 {"id": 3, "name": "Old Vendor", "active": False}], "name")
MATERIALS = index([{"id": 10, "code": "CU-PIPE-075"}, {"id": 11, "code": "CU-12MM"},
                   {"id": 12, "code": "DUP"}, {"id": 13, "code": "DUP"}], "code")


def test_voucher_becomes_purchase_with_exact_decimals():
    p = purchase_from_voucher(voucher())
    assert p.source_id == "g-1" and p.version == 41 and p.kind == "purchase"
    assert p.date == dt.date(2024, 5, 15) and p.party == "Ferguson Enterprises" and p.vendor_document() == "INV-77"
    assert p.lines[1].quantity == Decimal("2.500") and str(p.lines[1].quantity) == "2.500"
    assert p.lines[1].rate == Decimal("1234.56") and p.total == Decimal("2548.06")
    assert Purchase.from_dict(p.to_dict()) == p
    assert purchase_from_voucher(voucher(kind="debit_note")).kind == "return"
    assert purchase_from_voucher(voucher(date="20240515")).date == dt.date(2024, 5, 15)
    gone = purchase_from_voucher({"guid": "g-1", "deleted": True, "alter_id": 99})
    assert gone.deleted and gone.undone and gone.lines == ()
    with pytest.raises(MappingError):
        purchase_from_voucher({"number": "1"})
    for bad in ({"inventory": [{"quantity": "ten"}]}, {"date": "yesterday"}, {"inventory": "x"}):
        with pytest.raises(MappingError):
            purchase_from_voucher(voucher(**bad))


def test_exact_match_gives_vendor_and_one_item_per_line():
    vendor, lines, unmatched = match_purchase(purchase_from_voucher(voucher()), VENDORS, MATERIALS)
    assert not unmatched and vendor == 1
    assert [(x.sku_id, x.quantity, x.cost) for x in lines] == [(10, Decimal("12"), Decimal("38.50")),
                                                              (11, Decimal("2.500"), Decimal("1234.56"))]


def test_no_fuzzy_matching_and_every_miss_named():
    p = purchase_from_voucher(voucher(party_ledger="ferguson enterprises", inventory=[
        {"stock_item": "Pipe", "part_number": "cu-pipe-075", "quantity": "1", "rate": "1", "amount": "1"},
        {"stock_item": "Valve", "part_number": "TXV-1", "quantity": "1", "rate": "1", "amount": "1"},
        {"stock_item": "Valve again", "part_number": "TXV-1", "quantity": "1", "rate": "1", "amount": "1"},
        {"stock_item": "Bare item", "part_number": "", "quantity": "1", "rate": "1", "amount": "1"},
        {"stock_item": "Twice", "part_number": "DUP", "quantity": "1", "rate": "1", "amount": "1"},
        {"stock_item": "Spaced", "part_number": "CU-12MM ", "quantity": "1", "rate": "1", "amount": "1"}]))
    vendor, _lines, unmatched = match_purchase(p, VENDORS, MATERIALS)
    assert unmatched.vendors == ("ferguson enterprises",)
    assert unmatched.skus == ("cu-pipe-075", "TXV-1", "Bare item (no part number)", "DUP (2 records)", "CU-12MM ")
    text = unmatched.describe("ServiceTitan")
    assert text.startswith("unmatched in ServiceTitan: vendor 'ferguson enterprises'; SKU 'cu-pipe-075'")
    # an inactive vendor does not match either
    assert match_purchase(purchase_from_voucher(voucher(party_ledger="Old Vendor")), VENDORS, MATERIALS)[2].vendors


def test_match_by_name_uses_the_stock_item_name():
    p = purchase_from_voucher(voucher())
    by_name = index([{"id": 20, "code": "Copper pipe 3/4in"}, {"id": 21, "code": "Copper Tube"}], "code")
    vendor, lines, unmatched = match_purchase(p, VENDORS, by_name, "name")
    assert not unmatched and [x.sku_id for x in lines] == [20, 21]
    assert match_purchase(p, VENDORS, by_name, "part_number")[2].skus == ("CU-PIPE-075", "CU-12MM")
    with pytest.raises(ValueError):
        match_purchase(p, VENDORS, by_name, "fuzzy")


def test_key_and_marker():
    key = purchase_key("tallyprime", "g-1")
    assert key == "tallyprime-purchase-g-1" and marker(key) == "[mlc:tallyprime-purchase-g-1]"
    assert memo_for(purchase_from_voucher(voucher()), key, "TallyPrime").endswith("[mlc:tallyprime-purchase-g-1]")


def test_servicetitan_settings_rules():
    s = ServiceTitanSettings.from_dict({})
    assert s.poll_interval_minutes == 10 and s.match_items_by == "part_number"
    assert s.hosts() == ("https://api-integration.servicetitan.io", "https://auth-integration.servicetitan.io/connect/token")
    assert ServiceTitanSettings.from_dict({"environment": "production"}).hosts()[0] == "https://api.servicetitan.io"
    for bad in ({"poll_interval_minutes": 4}, {"poll_interval_minutes": 16}, {"match_items_by": "fuzzy"},
                {"environment": "staging"}, {"api_url": "ftp://x"}, {"client_secret": "x"}):
        with pytest.raises(ConfigurationError):
            ServiceTitanSettings.from_dict(bad)


def test_poll_results_from_the_agent_are_checked():
    good = {"request_id": "r", "marks": {"voucher": 5, "master": 3}, "vouchers": [voucher()],
            "state": {"voucher_alter_id": 5, "master_alter_id": 3, "count": 1}, "current_guids": None}
    _check_result(good)
    _check_result({"request_id": "r", "error": "AuthError: refused"})
    for bad in ({**good, "vouchers": [{"alter_id": 1}]}, {**good, "vouchers": [voucher(alter_id="5")]},
                {**good, "marks": {}}, {**good, "state": {"voucher_alter_id": "x"}},
                {**good, "current_guids": [1, 2]}, "not a dict"):
        with pytest.raises(ValueError):
            _check_result(bad)
