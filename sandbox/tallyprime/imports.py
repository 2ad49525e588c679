"""Imports of the TallyPrime emulator: ``Import/Data`` (version 1) and legacy ``Import Data``.

Each ``TALLYMESSAGE`` child is one object: GROUP, COSTCATEGORY, COSTCENTRE, LEDGER or VOUCHER
(others count as ``EXCEPTIONS`` without a message, as Tally's "EXCEPTIONS>0 with no
LINEERROR"). ``ACTION`` is Create (default), Alter, Delete or Cancel (vouchers); objects are
identified by name (masters) or the ``REMOTEID`` attribute (vouchers)
(https://help.tallysolutions.com/developer-reference/introduction/understanding-integration-transactions/).
A refused object adds a ``LINEERROR`` and counts in ``ERRORS``; the rest still import.
Voucher sign convention (Case Study I,
https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/):
debit = ``ISDEEMEDPOSITIVE=Yes`` with a negative ``AMOUNT``, credit = ``No`` with a positive
one; the amounts sum to zero.

ASSUMPTIONs: ``ACTION="Create"`` of an existing master other than a cost centre (by name) or
of an existing voucher (by REMOTEID) alters it and counts ``ALTERED`` (the default IMPORTDUPS
behaviour; "Create on an existing ledger may silently alter it" per third-party tooling);
voucher numbers are always auto-numbered per voucher type (third-party live finding that
VOUCHERNUMBER is replaced by auto-numbering).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from .company import (CENTRE_DATES, CENTRE_FIELDS, CENTRE_FLAGS, PRIMARY_COST_CATEGORY, Company,
                      ImportFailure)
from .xmlio import attr, children, find, import_reply, name_of, text

COUNTERS = ("CREATED", "ALTERED", "DELETED", "LASTVCHID", "LASTMID", "COMBINED", "IGNORED",
            "ERRORS", "CANCELLED", "EXCEPTIONS")


def import_data(emulator, sv, data, *, legacy: bool) -> str:
    """Import every object of ``data`` (the element holding the ``TALLYMESSAGE``s) into the
    company ``sv`` (STATICVARIABLES) names and return the reply (see
    :func:`sandbox.tallyprime.xmlio.import_reply`): counters ``CREATED``, ``ALTERED``,
    ``DELETED``, ``LASTVCHID``, ``LASTMID``, ``COMBINED``, ``IGNORED``, ``ERRORS``,
    ``CANCELLED``, ``EXCEPTIONS``. A company that is not loaded → STATUS 0 with one LINEERROR.
    ``emulator`` is the :class:`sandbox.tallyprime.emulator.TallyEmulator` (its company lookup
    and faults)."""
    counters = dict.fromkeys(COUNTERS, 0)
    errors: list[str] = []
    try:
        company = emulator.company_for(sv)
    except ImportFailure as exc:
        errors.append(str(exc))
        counters["ERRORS"] = 1
        return import_reply(counters, errors, legacy, status=0)
    handlers = {"GROUP": import_group, "COSTCATEGORY": import_category,
                "COSTCENTRE": lambda c, o: import_centre(c, o, emulator.faults),
                "LEDGER": import_ledger, "VOUCHER": import_voucher}
    for obj in (obj for msg in children(data, "TALLYMESSAGE") for obj in msg):
        tag = obj.tag.upper()
        handler = handlers.get(tag)
        if handler is None:
            counters["EXCEPTIONS"] += 1  # unknown object: rejected without a message
            continue
        try:
            outcome, mid = handler(company, obj)
        except ImportFailure as exc:
            errors.append(str(exc))
            counters["ERRORS"] += 1
            continue
        counters[outcome] += 1
        counters["LASTVCHID" if tag == "VOUCHER" else "LASTMID"] = mid
    return import_reply(counters, errors, legacy, status=1)


def action_of(obj) -> str:
    """The object's ``ACTION`` attribute, lowercased (default ``create``)."""
    return (attr(obj, "ACTION") or "Create").lower()


def upsert_master(company: Company, table: dict, obj, fields: dict) -> tuple[str, int]:
    """Create, alter or delete the master ``fields["name"]`` in ``table`` per its ACTION;
    returns ``(counter, MASTERID)``: Delete of an unknown name and Alter of an unknown name →
    ``IGNORED`` (the "IGNORED=1 on Alter = target not found" reading); Create or Alter of an
    existing name → ``ALTERED`` (new ALTERID); else ``CREATED``. An empty name is refused."""
    name = fields["name"]
    if not name:
        raise ImportFailure(f"{obj.tag.title()} name is empty")
    key = name.casefold()
    action = action_of(obj)
    existing = table.get(key)
    if action == "delete":
        if existing is None:
            return "IGNORED", 0
        del table[key]
        return "DELETED", existing["master_id"]
    if existing is not None and action in ("create", "alter"):
        existing.update({k: v for k, v in fields.items() if k != "name"})
        company.touch(existing)
        return "ALTERED", existing["master_id"]
    if action == "alter":
        return "IGNORED", 0
    obj_ = company._new(table, dict(fields))
    return "CREATED", obj_["master_id"]


def parent_group(company: Company, parent: str) -> str:
    """The stored name of group ``parent`` (``""`` for ``Primary`` or none); an unknown group
    → ``Group 'X' does not exist!``."""
    parent = parent.strip()
    if parent in ("", "Primary"):
        return ""
    if parent.casefold() not in company.groups:
        raise ImportFailure(f"Group '{parent}' does not exist!")
    return company.groups[parent.casefold()]["name"]


def import_group(company: Company, obj) -> tuple[str, int]:
    """GROUP ``NAME``/``PARENT`` (the parent must exist)."""
    parent = parent_group(company, text(obj, "PARENT"))
    return upsert_master(company, company.groups, obj, {"name": name_of(obj), "parent": parent})


def import_category(company: Company, obj) -> tuple[str, int]:
    """COSTCATEGORY ``NAME``."""
    return upsert_master(company, company.cost_categories, obj, {"name": name_of(obj)})


def import_ledger(company: Company, obj) -> tuple[str, int]:
    """LEDGER ``NAME``, ``PARENT`` (an existing group; Primary refused) and ``ISCOSTCENTRESON``."""
    parent = parent_group(company, text(obj, "PARENT"))
    if not parent:
        raise ImportFailure(f"Group '{text(obj, 'PARENT')}' does not exist!")
    return upsert_master(company, company.ledgers, obj, {
        "name": name_of(obj), "parent": parent,
        "cost_centres_on": text(obj, "ISCOSTCENTRESON").lower() == "yes"})


def import_centre(company: Company, obj, faults: dict) -> tuple[str, int]:
    """COSTCENTRE import (employees as cost centres: tally-database-loader
    tally-export-config.yaml ``mst_employee``, https://github.com/dhananjay1405/tally-database-loader).

    * ``Create`` of a new name creates it; of an existing name is refused with
      ``Cost Centre 'X' already exists!`` (ASSUMPTION: Tally's duplicate-master error;
      wording ours) — unlike the other masters, whose Create alters.
    * ``Alter`` finds the centre by the ``NAME`` attribute (its current name; identification
      via attributes), renames it to ``NAME.LIST/NAME`` (or ``NAME``) when that differs
      (ASSUMPTION), updates only the fields present, gives it a new ALTERID (MASTERID and GUID
      kept) and counts ``ALTERED``; an unknown name is refused with ``Cost Centre 'X' does not
      exist!`` (ASSUMPTION: for vouchers an unidentified Alter counts ``IGNORED=1``; for
      masters we answer with the catalogue's LINEERROR). Renaming onto another centre's name
      → ``already exists``; children and voucher allocations follow a rename.
    * ``CATEGORY`` and a non-root ``PARENT`` must exist (catalogue errors); dates are
      YYYYMMDD; an empty element clears a field (ASSUMPTION).
    * Sandbox state per centre: ``alter_count`` and ``history`` (one snapshot of the
      fields per create/alter, with ``action`` and ``alter_id``).
    * Fault ``alter_reports_created`` (in ``faults``): the next N Alters are applied but
      answered as CREATED (the Alter-becomes-Create reply seen live) — sandbox only.
    """
    action = action_of(obj)
    attr_name = attr(obj, "NAME")
    new_name = text(obj, "NAME.LIST/NAME") or text(obj, "NAME") or attr_name
    ident = (attr_name or new_name) if action == "alter" else new_name
    if not ident:
        raise ImportFailure("Costcentre name is empty")
    existing = company.cost_centres.get(ident.casefold())
    if action == "delete":
        if existing is None:
            return "IGNORED", 0
        del company.cost_centres[ident.casefold()]
        return "DELETED", existing["master_id"]
    if action == "create" and existing is not None:
        raise ImportFailure(f"Cost Centre '{existing['name']}' already exists!")
    if action == "alter" and existing is None:
        raise ImportFailure(f"Cost Centre '{ident}' does not exist!")
    fields = _centre_fields(company, obj, existing, new_name or ident)
    if existing is None:
        centre = company._new(company.cost_centres, {"name": new_name, **fields,
                                                     "alter_count": 0, "history": []})
        centre["history"].append(centre_snapshot(centre, "create"))
        return "CREATED", centre["master_id"]
    if new_name != existing["name"]:
        _rename_centre(company, existing, new_name)
    existing.update(fields)
    company.touch(existing)
    existing["alter_count"] = existing.get("alter_count", 0) + 1
    existing.setdefault("history", []).append(centre_snapshot(existing, "alter"))
    if faults.get("alter_reports_created", 0) > 0:
        faults["alter_reports_created"] -= 1
        return "CREATED", existing["master_id"]
    return "ALTERED", existing["master_id"]


def _centre_fields(company: Company, obj, existing: dict | None, own_name: str) -> dict:
    """The cost-centre fields present in ``obj`` (all of them, defaulted, for a new centre)."""
    fields: dict = {}
    if find(obj, "CATEGORY") is not None or existing is None:
        category = text(obj, "CATEGORY") or PRIMARY_COST_CATEGORY
        if category.casefold() not in company.cost_categories:
            raise ImportFailure(f"Cost Category '{category}' does not exist!")
        fields["category"] = company.cost_categories[category.casefold()]["name"]
    if find(obj, "PARENT") is not None or existing is None:
        parent = text(obj, "PARENT")
        parent = "" if parent == "Primary" else parent
        if parent:
            if parent.casefold() not in company.cost_centres:
                raise ImportFailure(f"Cost Centre '{parent}' does not exist!")
            if parent.casefold() == own_name.casefold():
                raise ImportFailure(f"Cost Centre '{parent}' cannot be its own parent")
            parent = company.cost_centres[parent.casefold()]["name"]
        fields["parent"] = parent
    for tag, key in CENTRE_FIELDS.items():
        node = find(obj, tag)
        if node is None:
            if existing is None:
                fields[key] = False if tag in CENTRE_FLAGS else ""
            continue
        value = (node.text or "").strip()
        if tag in CENTRE_FLAGS:
            fields[key] = value.lower() == "yes"
        elif tag in CENTRE_DATES and value:
            try:
                dt.datetime.strptime(value, "%Y%m%d")
            except ValueError:
                raise ImportFailure(f"Date '{value}' is not a valid date") from None
            fields[key] = value
        else:
            fields[key] = value
    return fields


def _rename_centre(company: Company, centre: dict, new_name: str) -> None:
    other = company.cost_centres.get(new_name.casefold())
    if other is not None and other is not centre:
        raise ImportFailure(f"Cost Centre '{other['name']}' already exists!")
    old = centre["name"]
    del company.cost_centres[old.casefold()]
    centre["name"] = new_name
    company.cost_centres[new_name.casefold()] = centre
    for c in company.cost_centres.values():  # children follow the rename
        if c.get("parent") == old:
            c["parent"] = new_name
    for v in company.vouchers:  # vouchers refer to the master, not to its old name
        for e in v["entries"]:
            for a in e["allocations"]:
                if a["cost_centre"] == old:
                    a["cost_centre"] = new_name


def centre_snapshot(centre: dict, action: str) -> dict:
    """One ``history`` entry of a cost centre: ``action``, ``alter_id``, name, parent,
    category and the payroll fields."""
    keys = ["name", "parent", "category", *CENTRE_FIELDS.values()]
    return {"action": action, "alter_id": centre["alter_id"], **{k: centre.get(k) for k in keys}}


def import_voucher(company: Company, obj) -> tuple[str, int]:
    """VOUCHER identified by its ``REMOTEID`` attribute: Delete/Cancel remove it (``DELETED``/
    ``CANCELLED``; unknown → ``IGNORED``), Alter of an unknown one → ``IGNORED``, else it is
    created (auto-numbered) or altered. Refusals (catalogue texts): a bad ``DATE`` (YYYYMMDD),
    a date before the books begin (``Date is not within the financial period``), an unknown
    voucher type or ledger, fewer than two entries or entries not summing to zero
    (``Voucher totals do not match!``), and the entry rules of :func:`voucher_entry`."""
    remote_id = attr(obj, "REMOTEID")
    action = action_of(obj)
    existing = next((v for v in company.vouchers if remote_id and v["remote_id"] == remote_id), None)
    if action in ("delete", "cancel"):
        if existing is None:
            return "IGNORED", 0
        company.vouchers.remove(existing)
        return ("DELETED" if action == "delete" else "CANCELLED"), existing["master_id"]
    if action == "alter" and existing is None:
        return "IGNORED", 0
    date = text(obj, "DATE")
    try:
        parsed = dt.datetime.strptime(date, "%Y%m%d").date()
    except ValueError:
        raise ImportFailure(f"Date '{date}' is not a valid date") from None
    if parsed < dt.datetime.strptime(company.books_from, "%Y%m%d").date():
        raise ImportFailure("Date is not within the financial period")
    vtype = text(obj, "VOUCHERTYPENAME") or attr(obj, "VCHTYPE")
    if vtype.casefold() not in company.voucher_types:
        raise ImportFailure(f"Voucher Type '{vtype}' does not exist!")
    vtype = company.voucher_types[vtype.casefold()]["name"]
    entries = [voucher_entry(company, e)
               for e in children(obj, "ALLLEDGERENTRIES.LIST") + children(obj, "LEDGERENTRIES.LIST")]
    if len(entries) < 2:
        raise ImportFailure("Voucher totals do not match!" if entries else "No entries in voucher!")
    if sum((e["amount"] for e in entries), Decimal(0)) != 0:
        raise ImportFailure("Voucher totals do not match!")
    fields = {"remote_id": remote_id, "date": date, "type": vtype,
              "narration": text(obj, "NARRATION"), "entries": entries}
    if existing is not None:
        existing.update(fields)
        company.touch(existing)
        return "ALTERED", existing["master_id"]
    number = company.vch_numbers.get(vtype, 0) + 1
    company.vch_numbers[vtype] = number
    voucher = company._ids(dict(fields, number=str(number)))
    company.vouchers.append(voucher)
    return "CREATED", voucher["master_id"]


def parse_amount(value: str, ledger: str) -> Decimal:
    """``value`` as a Decimal; not a number → ``Invalid amount 'X' for Ledger 'L'``."""
    try:
        return Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        raise ImportFailure(f"Invalid amount '{value}' for Ledger '{ledger}'") from None


def voucher_entry(company: Company, e) -> dict:
    """One ``ALLLEDGERENTRIES.LIST`` → ``{ledger, amount, is_deemed_positive, allocations}``.
    Refusals: unknown ledger, cost category or cost centre (catalogue texts); emulator-only
    (ASSUMPTION, stricter than Tally is known to be): ``ISDEEMEDPOSITIVE`` not matching the
    amount's sign, cost-centre allocations on a ledger without ``ISCOSTCENTRESON``, or
    allocations not adding up to the entry's amount."""
    ledger_name = text(e, "LEDGERNAME")
    ledger = company.ledgers.get(ledger_name.casefold())
    if ledger is None:
        raise ImportFailure(f"Ledger '{ledger_name}' does not exist!")
    amount = parse_amount(text(e, "AMOUNT"), ledger_name)
    positive = text(e, "ISDEEMEDPOSITIVE").lower() == "yes"
    if amount != 0 and positive != (amount < 0):
        raise ImportFailure(f"ISDEEMEDPOSITIVE does not match the sign of AMOUNT for Ledger "
                            f"'{ledger['name']}'")
    allocations = []
    for cat in children(e, "CATEGORYALLOCATIONS.LIST"):
        cname = text(cat, "CATEGORY")
        if cname.casefold() not in company.cost_categories:
            raise ImportFailure(f"Cost Category '{cname}' does not exist!")
        if not ledger["cost_centres_on"]:
            raise ImportFailure(f"Cost Centres are not applicable for Ledger '{ledger['name']}'")
        for cc in children(cat, "COSTCENTREALLOCATIONS.LIST"):
            ccname = text(cc, "NAME")
            if ccname.casefold() not in company.cost_centres:
                raise ImportFailure(f"Cost Centre '{ccname}' does not exist!")
            allocations.append({"category": company.cost_categories[cname.casefold()]["name"],
                                "cost_centre": company.cost_centres[ccname.casefold()]["name"],
                                "amount": parse_amount(text(cc, "AMOUNT"), ledger_name)})
    if allocations and sum((a["amount"] for a in allocations), Decimal(0)) != amount:
        raise ImportFailure(f"Cost Centre allocation totals do not match for Ledger "
                            f"'{ledger['name']}'")
    return {"ledger": ledger["name"], "amount": amount, "is_deemed_positive": positive,
            "allocations": allocations}
