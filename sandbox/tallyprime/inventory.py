"""Inventory masters and invoice-mode vouchers of the TallyPrime emulator, entered "as a person
would in Tally" (the sandbox admin routes and the seeder call these; no XML involved).

Masters (each with GUID, MASTERID, ALTERID from the company's counters; an alteration gives a
new ALTERID, MASTERID and GUID stay — change tracking as tally-database-loader reads it,
https://github.com/dhananjay1405/tally-database-loader ``docs/incremental-sync.md``):

* unit — ``name`` is the symbol (``Nos``), ``formal_name``, ``decimals`` (places a quantity in
  this unit is written with); tally-export-config.yaml ``mst_uom`` (Symbol, FormalName,
  IsSimpleUnit);
* godown — ``name``, ``parent``; ``mst_godown``;
* stock group — ``name``, ``parent``; ``mst_stock_group``;
* stock item — ``name``, ``parent`` (stock group, ``""`` = Primary), ``base_units`` (a unit),
  ``part_no``; ``mst_stock_item`` (Name, Parent, BaseUnits). ASSUMPTION: the part number is the
  item's ``MailingName`` and is exported as ``MAILINGNAME.LIST TYPE="String"/MAILINGNAME``
  (the storage Tally's stock-item form is believed to use for "Part No."; no public source
  found — tally-database-loader does not export it).

Invoice vouchers (Purchase, Debit Note, or a company type derived from one of them), sign
convention of Tally's Case Study I (debit = ``ISDEEMEDPOSITIVE`` Yes + negative AMOUNT,
https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/):

* Purchase (stock comes in): each item line debits (Yes, ``-qty×rate``), each extra ledger line
  (taxes, freight) debits its amount, the party is credited with the total (No, positive,
  ``ISPARTYLEDGER`` Yes);
* Debit Note (purchase return, stock goes out): the mirror image.

An item line: ``STOCKITEMNAME``, ``RATE`` (per the item's base unit), ``ACTUALQTY`` =
``BILLEDQTY``, ``AMOUNT``, one ``BATCHALLOCATIONS.LIST`` (``GODOWNNAME``, ``BATCHNAME``
"Primary Batch") and one ``ACCOUNTINGALLOCATIONS.LIST`` (the purchase ledger) — as in
TallyConnector's TallyPrime 6 resource ``Vouchers_Purchase_complete.xml``. ``REFERENCE`` holds
the supplier's invoice number (``trn_voucher.reference_number`` = ``Reference`` in
tally-export-config.yaml).

Cancel keeps the voucher (number, date, lines) with ``ISCANCELLED`` Yes and a new ALTERID
(ASSUMPTION: Tally's cancellation is an alteration; whether it clears the amounts is not
modelled). Delete removes it (its GUID disappears from every export).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from .company import (INWARD_BASES, OUTWARD_BASES, PRIMARY_BATCH, Company, ImportFailure,
                      parse_decimal)

CENT = Decimal("0.01")
MASTER_KINDS = {"unit": "units", "godown": "godowns", "stockgroup": "stock_groups",
                "stockitem": "stock_items", "ledger": "ledgers", "vouchertype": "voucher_types",
                "group": "groups"}
KIND_LABELS = {"unit": "Unit", "godown": "Godown", "stockgroup": "Stock Group",
               "stockitem": "Stock Item", "ledger": "Ledger", "vouchertype": "Voucher Type",
               "group": "Group"}


def _kind(kind: str) -> str:
    k = kind.replace(" ", "").replace("_", "").lower()
    if k not in MASTER_KINDS:
        raise ImportFailure(f"Sandbox: unknown master kind '{kind}'")
    return k


def _table(company: Company, kind: str) -> dict:
    return getattr(company, MASTER_KINDS[_kind(kind)])


def _existing(company: Company, kind: str, name: str) -> dict:
    obj = _table(company, kind).get((name or "").strip().casefold())
    if obj is None:
        raise ImportFailure(f"{KIND_LABELS[_kind(kind)]} '{name}' does not exist!")
    return obj


def _parent(company: Company, kind: str, parent: str | None) -> str:
    """A parent of the same kind (``""``/``Primary`` = root) that must exist."""
    parent = (parent or "").strip()
    if parent in ("", "Primary"):
        return ""
    return _existing(company, kind, parent)["name"]


def master_fields(company: Company, kind: str, spec: dict, current: dict | None) -> dict:
    """The stored fields of a master of ``kind`` from ``spec`` (for an alteration only the
    keys present change). Refusals use the emulator's catalogue texts."""
    k = _kind(kind)
    out: dict = {}
    if "parent" in spec or current is None:
        if k in ("godown", "stockgroup"):
            out["parent"] = _parent(company, k, spec.get("parent"))
        elif k == "stockitem":
            out["parent"] = _parent(company, "stockgroup", spec.get("parent"))
        elif k in ("ledger", "group"):
            parent = (spec.get("parent") or "").strip()
            if k == "ledger" and parent.casefold() not in company.groups:
                raise ImportFailure(f"Group '{parent}' does not exist!")
            out["parent"] = company.groups[parent.casefold()]["name"] if parent else ""
        elif k == "vouchertype":
            parent = (spec.get("parent") or "").strip()
            out["parent"] = _existing(company, "vouchertype", parent)["name"] if parent else ""
    if k == "unit":
        if "formal_name" in spec or current is None:
            out["formal_name"] = str(spec.get("formal_name") or "")
        if "decimals" in spec or current is None:
            decimals = int(spec.get("decimals") or 0)
            if not 0 <= decimals <= 4:
                raise ImportFailure("Number of decimal places must be between 0 and 4")
            out["decimals"] = decimals
    if k == "stockitem":
        if "base_units" in spec or current is None:
            unit = (spec.get("base_units") or "").strip()
            out["base_units"] = _existing(company, "unit", unit)["name"] if unit else ""
        if "part_no" in spec or current is None:
            out["part_no"] = str(spec.get("part_no") or "")
    if k == "ledger" and current is None:
        out["cost_centres_on"] = bool(spec.get("cost_centres_on", False))
    return out


def upsert_master(company: Company, kind: str, spec: dict) -> tuple[str, dict]:
    """Create (unknown name) or alter (known name; ``rename`` renames it) the master ``kind``
    named ``spec["name"]``; returns ``("created"|"altered", master)``. Inventory masters bring
    the ``Main Location`` godown into being."""
    k = _kind(kind)
    name = str(spec.get("name") or "").strip()
    if not name:
        raise ImportFailure(f"{KIND_LABELS[k]} name is empty")
    if k in ("unit", "godown", "stockgroup", "stockitem"):
        company.ensure_main_location()
    table = _table(company, k)
    current = table.get(name.casefold())
    fields = master_fields(company, k, spec, current)
    if current is None:
        return "created", company._new(table, {"name": name, **fields})
    new_name = str(spec.get("rename") or "").strip()
    if new_name and new_name.casefold() != current["name"].casefold():
        if new_name.casefold() in table:
            raise ImportFailure(f"{KIND_LABELS[k]} '{new_name}' already exists!")
        del table[current["name"].casefold()]
        current["name"] = new_name
        table[new_name.casefold()] = current
    current.update(fields)
    company.touch(current)
    return "altered", current


def delete_master(company: Company, kind: str, name: str) -> dict:
    """Delete the master (refused while a voucher uses a stock item: "Cannot delete Stock
    Item 'X' as it is used in vouchers" — wording ours, ASSUMPTION)."""
    k = _kind(kind)
    obj = _existing(company, k, name)
    if k == "stockitem" and any(i["stock_item"] == obj["name"] for v in company.vouchers
                                for i in v.get("inventory", ())):
        raise ImportFailure(f"Cannot delete Stock Item '{obj['name']}' as it is used in vouchers")
    del _table(company, k)[obj["name"].casefold()]
    company.forget(k, obj)
    return obj


# ---------------------------------------------------------------------- invoice vouchers

def _date(value, company: Company) -> str:
    text = str(value or "").replace("-", "")
    try:
        parsed = dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise ImportFailure(f"Date '{value}' is not a valid date") from None
    if parsed < dt.datetime.strptime(company.books_from, "%Y%m%d").date():
        raise ImportFailure("Date is not within the financial period")
    return text


def _direction(company: Company, vtype: str) -> tuple[str, bool]:
    """``(stored type name, inward?)``: Purchase-like types bring stock in, Debit Note-like
    types take it out; other types are refused (the sandbox enters invoice vouchers of
    these two families only)."""
    key = vtype.casefold()
    if key not in company.voucher_types:
        raise ImportFailure(f"Voucher Type '{vtype}' does not exist!")
    base = company.base_voucher_type(vtype)
    if base not in INWARD_BASES + OUTWARD_BASES:
        raise ImportFailure(f"Sandbox: invoice vouchers of type '{vtype}' are not modelled "
                            f"(Purchase and Debit Note families only)")
    return company.voucher_types[key]["name"], base in INWARD_BASES


def _ledger(company: Company, name: str) -> str:
    ledger = company.ledgers.get((name or "").strip().casefold())
    if ledger is None:
        raise ImportFailure(f"Ledger '{name}' does not exist!")
    return ledger["name"]


def _lines(company: Company, spec: dict, inward: bool) -> tuple[list[dict], list[dict], Decimal]:
    """``(inventory lines, extra ledger entries, invoice total)`` from ``spec`` (``items``,
    ``ledgers``, ``purchase_ledger``)."""
    items = spec.get("items") or []
    if not items:
        raise ImportFailure("No stock items in voucher!")
    default_ledger = spec.get("purchase_ledger")
    inventory, total = [], Decimal(0)
    sign = -1 if inward else 1        # stock in = debit = negative
    for line in items:
        item = _existing(company, "stockitem", str(line.get("item") or line.get("stock_item") or ""))
        unit = item["base_units"]
        if not unit:
            raise ImportFailure(f"Stock Item '{item['name']}' has no unit")
        decimals = company.units[unit.casefold()]["decimals"]
        qty = parse_decimal(line.get("qty"), "quantity")
        if qty <= 0:
            raise ImportFailure(f"Quantity of Stock Item '{item['name']}' must be positive")
        if qty != qty.quantize(Decimal(1).scaleb(-decimals)):
            raise ImportFailure(f"Quantity {qty} has more than {decimals} decimal places for "
                                f"Unit '{unit}'")
        rate = parse_decimal(line.get("rate"), "rate")
        if rate < 0:
            raise ImportFailure(f"Rate of Stock Item '{item['name']}' cannot be negative")
        amount = (qty * rate).quantize(CENT)
        godown = _existing(company, "godown", line.get("godown") or
                           company.ensure_main_location()["name"])["name"]
        ledger = _ledger(company, line.get("ledger") or default_ledger or "")
        signed = sign * amount
        inventory.append({
            "stock_item": item["name"], "qty": qty, "unit": unit, "rate": rate,
            "amount": signed, "is_deemed_positive": inward,
            "batches": [{"godown": godown, "batch": str(line.get("batch") or PRIMARY_BATCH),
                         "qty": qty, "amount": signed}],
            "accounting": [{"ledger": ledger, "amount": signed, "is_deemed_positive": inward}]})
        total += amount
    extra = []
    for line in spec.get("ledgers") or []:
        amount = parse_decimal(line.get("amount"), "amount").quantize(CENT)
        extra.append({"ledger": _ledger(company, line.get("ledger", "")), "amount": sign * amount,
                      "is_deemed_positive": inward if amount >= 0 else not inward,
                      "allocations": [], "is_party": False})
        total += amount
    return inventory, extra, total


def _voucher_fields(company: Company, spec: dict, current: dict | None) -> dict:
    vtype, inward = _direction(company, spec.get("type") or (current or {}).get("type") or "Purchase")
    merged = {**({} if current is None else {
        "date": current["date"], "party": current["party_ledger"],
        "reference": current.get("reference", ""), "narration": current["narration"],
        "optional": current.get("is_optional", False),
        "purchase_ledger": next((a["ledger"] for i in current["inventory"] for a in i["accounting"]), ""),
        "items": [{"item": i["stock_item"], "qty": i["qty"], "rate": i["rate"],
                   "godown": i["batches"][0]["godown"], "batch": i["batches"][0]["batch"],
                   "ledger": i["accounting"][0]["ledger"]} for i in current["inventory"]],
        "ledgers": [{"ledger": e["ledger"], "amount": abs(e["amount"])}
                    for e in current["entries"] if not e.get("is_party")]}), **spec}
    party = _ledger(company, merged.get("party") or "")
    inventory, extra, total = _lines(company, merged, inward)
    party_entry = {"ledger": party, "amount": total if inward else -total,
                   "is_deemed_positive": not inward, "allocations": [], "is_party": True}
    return {"date": _date(merged.get("date"), company), "type": vtype,
            "narration": str(merged.get("narration") or ""), "party_ledger": party,
            "reference": str(merged.get("reference") or ""),
            "reference_date": str(merged.get("reference_date") or "").replace("-", ""),
            "is_invoice": True, "is_optional": bool(merged.get("optional")),
            "is_cancelled": bool((current or {}).get("is_cancelled", False)),
            "entries": [party_entry] + extra, "inventory": inventory,
            "remote_id": str(merged.get("remote_id") or (current or {}).get("remote_id") or "")}


def create_invoice_voucher(company: Company, spec: dict) -> dict:
    """Save a new Purchase/Debit Note as a person would (auto-numbered per type); ``spec``:
    ``{"type", "date": "YYYYMMDD", "party", "purchase_ledger", "items": [{"item", "qty",
    "rate", "godown"?, "batch"?, "ledger"?}], "ledgers": [{"ledger", "amount"}]?,
    "reference"?, "reference_date"?, "narration"?, "optional"?, "remote_id"?}``. Quantities,
    rates and amounts are strings or Decimals."""
    company.ensure_main_location()
    fields = _voucher_fields(company, spec, None)
    number = company.vch_numbers.get(fields["type"], 0) + 1
    company.vch_numbers[fields["type"]] = number
    voucher = company._ids({**fields, "number": str(number)})
    company.vouchers.append(voucher)
    return voucher


def find_voucher(company: Company, guid: str) -> dict:
    """The voucher with this GUID (or MASTERID); ``Could not find Voucher 'X'``."""
    v = next((v for v in company.vouchers if guid in (v["guid"], str(v["master_id"]))), None)
    if v is None:
        raise ImportFailure(f"Could not find Voucher '{guid}'")
    return v


def alter_invoice_voucher(company: Company, guid: str, spec: dict) -> dict:
    """Alter a saved invoice voucher (keys of :func:`create_invoice_voucher`; absent keys keep
    their value): new ALTERID, same MASTERID, GUID and number."""
    v = find_voucher(company, guid)
    if not v.get("is_invoice"):
        raise ImportFailure("Sandbox: only invoice vouchers are altered through this route")
    v.update(_voucher_fields(company, spec, v))
    company.touch(v)
    return v


def cancel_voucher(company: Company, guid: str) -> dict:
    """Mark a voucher cancelled (``ISCANCELLED`` Yes, new ALTERID); see the module doc."""
    v = find_voucher(company, guid)
    v["is_cancelled"] = True
    company.touch(v)
    return v


def delete_voucher(company: Company, guid: str) -> dict:
    """Delete a voucher: it leaves every export; the company's ``$AltVchId`` keeps counting
    its AlterID (see :meth:`Company.last_alter_ids`)."""
    v = find_voucher(company, guid)
    company.vouchers.remove(v)
    company.forget("voucher", v)
    return v


def voucher_summary(v: dict) -> dict:
    """JSON-safe view of a voucher for the admin routes and the sandbox state (amounts,
    quantities and rates as strings)."""
    out = {"guid": v["guid"], "master_id": v["master_id"], "alter_id": v["alter_id"],
           "date": v["date"], "type": v["type"], "number": v["number"],
           "remote_id": v["remote_id"], "narration": v["narration"],
           "party_ledger": v.get("party_ledger", "")}
    if v.get("is_invoice"):
        out.update({
            "reference": v.get("reference", ""), "is_cancelled": v.get("is_cancelled", False),
            "is_optional": v.get("is_optional", False),
            "items": [{"item": i["stock_item"], "qty": str(i["qty"]), "unit": i["unit"],
                       "rate": str(i["rate"]), "amount": str(abs(i["amount"])),
                       "godown": i["batches"][0]["godown"]} for i in v["inventory"]]})
    return out
