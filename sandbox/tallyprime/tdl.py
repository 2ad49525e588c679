"""The inline-TDL subset the TallyPrime emulator understands: formulas, collections (with
FETCH/NATIVEMETHOD, COMPUTE, FILTER(S), CHILDOF/BELONGSTO, aggregate SOURCECOLLECTION/WALK/BY/
AGGRCOMPUTE) and ``TYPE=Data`` reports built from REPORT/FORM/PART/LINE/FIELD.

What real clients send, and where the shapes come from:

* tally-database-loader (https://github.com/dhananjay1405/tally-database-loader, ``dist/tally.mjs``
  v1.0.41): ``generateXMLfromYAML`` — a ``TYPE=Data`` report ``REPORT``/``FORM``/``PART``
  (``REPEAT Line : Collection``)/``LINE`` (``FIELDS``, ``EXPLODE``)/``FIELD`` (``SET``,
  ``XMLTAG`` F01…) over a ``COLLECTION`` with ``FETCH`` and ``FILTER`` Fltr01… +
  ``SYSTEM TYPE="Formulae"``; ``SVEXPORTFORMAT`` ``XML (Data Interchange)`` or ``ASCII (Comma
  Delimited)``; ``fetchTallyCompanyList`` — a Company collection with ``COMPUTE IsActiveCompany :
  $$IsEqual:$Name:##SVCurrentCompany``; ``generateVoucherDatewiseCount`` — an aggregate
  collection (``SOURCECOLLECTION``, ``BY Date : $Date``, ``AGGRCOMPUTE Count : SUM :
  $$Number:1``) over vouchers filtered by Tally's built-in ``IsNonOptionalCancelledVchs``.
* erpnext_tally_migrator ``queries.py`` (https://github.com/jobin05/erpnext_tally_migrator):
  ``NATIVEMETHOD`` elements with spaced names (``Starting From``, ``Is Deemed Positive``).
* public TDL using ``$$IsSales:$VoucherTypeName``, ``$$IsCreditNote``, ``$$IsReceipt``,
  ``$$IsPayment``, ``CHILD OF: $$GroupSundryDebtors`` + ``BELONGS TO: Yes`` and
  ``Filter: ..., IsNonOptionalCancelledVchs``; ``$$IsPurchase``/``$$IsDebitNote`` by analogy
  (ASSUMPTION: same family of functions).

Formula language (a subset; anything else is refused with a ``Sandbox:`` text, never guessed):
literals (numbers, ``"…"``/``'…'`` strings, ``Yes``/``No``, bare words as strings), ``$Method``,
``$..Method`` (the parent object's), ``$Method:Type:NameExpr`` (another master's method),
``##Variable`` (static variables: SVCurrentCompany, SVFromDate, SVToDate…), ``@@Formula``,
``$$Function:arg:…`` (see :data:`FUNCTIONS`), ``+ - * /``, ``= == != <> < > <= >=``,
``Contains``, ``AND OR NOT``, ``if … then … else …`` and parentheses. ASSUMPTIONs: string
comparison ignores case; a date compares with a ``YYYYMMDD``/``d-Mon-yyyy`` string;
``IsNonOptionalCancelledVchs`` is ``NOT $IsCancelled AND NOT $IsOptional``; the rows of an
aggregate collection are exported as ``OBJECT`` elements (tally-database-loader reads them with
``parseXmlToJsonCollection('object', …)``).
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from .company import Company
from .objects import (DEFAULT_FETCH, LIST_TAGS, PRIMARY, SYSNAME_MARK, TYPE_ALIASES, Obj, V, b,
                      canon, company_period, n, objects_of, s, unit_decimals)
from .xmlio import attr, children, text, x

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
BUILTIN_FORMULAS = {"isnonoptionalcancelledvchs": "NOT $IsCancelled AND NOT $IsOptional"}
# $$Group<Name> functions naming predefined groups (public TDL: $$GroupSundryDebtors).
GROUP_FUNCS = {"groupsundrydebtors": "Sundry Debtors", "groupsundrycreditors": "Sundry Creditors",
               "groupbankaccounts": "Bank Accounts", "groupcash": "Cash-in-Hand",
               "groupdutiestaxes": "Duties & Taxes", "groupsales": "Sales Accounts",
               "grouppurchase": "Purchase Accounts", "groupstock": "Stock-in-Hand"}
VCH_FAMILIES = {"ispurchase": "Purchase", "issales": "Sales", "isdebitnote": "Debit Note",
                "iscreditnote": "Credit Note", "ispayment": "Payment", "isreceipt": "Receipt",
                "isjournal": "Journal", "iscontra": "Contra"}
ACCOUNTING_BASES = {"Contra", "Credit Note", "Debit Note", "Journal", "Payment", "Purchase",
                    "Receipt", "Sales", "Reversing Journal", "Memorandum", "Payroll"}
INVENTORY_BASES = {"Delivery Note", "Receipt Note", "Rejections In", "Rejections Out",
                   "Stock Journal", "Physical Stock"}
ORDER_BASES = {"Purchase Order", "Sales Order"}


class TdlError(Exception):
    """A request the emulator refuses; the message is the reply text."""


# =========================================================================== values

def parse_date(value: str) -> dt.date | None:
    """``YYYYMMDD``, ``YYYY-MM-DD``, ``d-Mon-yyyy`` or ``d-Mon-yy`` → date (None if not)."""
    t = (value or "").strip()
    for fmt in ("%Y%m%d", "%Y-%m-%d", "%d-%b-%Y", "%d-%b-%y"):
        try:
            return dt.datetime.strptime(t, fmt).date()
        except ValueError:
            continue
    return None


def _num(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def fmt_qty(qty: Decimal, unit: str, company: Company | None) -> str:
    places = unit_decimals(company, unit)
    q = qty.quantize(Decimal(1).scaleb(-places)) if places else qty
    return f" {_num(q) if not places else format(q, 'f')} {unit}".rstrip()


def fmt_rate(rate: Decimal, unit: str) -> str:
    two = rate.quantize(Decimal("0.01"))
    text_ = format(two if two == rate else rate.normalize(), "f")
    return f"{text_}/{unit}" if unit else text_


def export_text(v: V, company: Company | None) -> str:
    """A value as a collection export writes it (escaped): ``Number`` with a leading space
    (``<ALTERID TYPE="Number"> 210</ALTERID>``), ``Date`` ``YYYYMMDD``, ``Quantity`` ``" 10
    Nos"``, ``Rate`` ``"250.00/Nos"``, ``Amount`` two decimals (empty when none), ``$$SysName``
    values as ``&#4; Name``."""
    t, val = v.type, v.value
    if t == "String":
        return x(val).replace("\x04", "&#4;")
    if t == "Number":
        return f" {_num(val)}"
    if t == "Date":
        return val.strftime("%Y%m%d") if val else ""
    if t == "Logical":
        return "Yes" if val else "No"
    if t == "Amount":
        return "" if val is None else format(val.quantize(Decimal("0.01")), "f")
    if t == "Quantity":
        return x(fmt_qty(val[0], val[1], company))
    if t == "Rate":
        return x(fmt_rate(val[0], val[1]))
    return x(str(val))


def display_text(v: V, company: Company | None) -> str:
    """A value as a report field shows it (not escaped): dates ``1-Apr-24`` (the form of the
    live Bills Receivable capture, RishieRich/ArcAstraOneAru), numbers plain, amounts signed with two decimals."""
    t, val = v.type, v.value
    if t == "String":
        return val
    if t == "Number":
        return _num(val)
    if t == "Date":
        return f"{val.day}-{MONTHS[val.month - 1]}-{val:%y}" if val else ""
    if t == "Logical":
        return "Yes" if val else "No"
    if t == "Amount":
        return "" if val is None else format(val.quantize(Decimal("0.01")), "f")
    if t == "Quantity":
        return fmt_qty(val[0], val[1], company)
    if t == "Rate":
        return fmt_rate(val[0], val[1])
    if t == "List":
        return ", ".join(i if isinstance(i, str) else "" for i in val)
    return str(val)


def to_number(v: V) -> Decimal | None:
    if v.type in ("Number", "Amount"):
        return v.value if v.value is not None else Decimal(0)
    if v.type in ("Quantity", "Rate"):
        return v.value[0]
    if v.type == "Logical":
        return Decimal(1 if v.value else 0)
    if v.type == "String":
        m = re.match(r"^\s*(-?\d+(?:\.\d+)?)", v.value.replace(",", ""))
        return Decimal(m.group(1)) if m else None
    return None


def truth(v: V) -> bool:
    if v.type == "Logical":
        return bool(v.value)
    if v.type in ("Number", "Amount", "Quantity", "Rate"):
        return (to_number(v) or 0) != 0
    if v.type == "String":
        return v.value.strip().lower() not in ("", "no", "false")
    if v.type == "Date":
        return v.value is not None
    if v.type == "List":
        return bool(v.value)
    return bool(v.value)


def is_empty(v: V | None) -> bool:
    if v is None or v.value is None:
        return True
    if v.type == "String":
        return v.value.strip() == ""
    if v.type in ("Number", "Amount", "Quantity", "Rate"):
        return to_number(v) == 0
    if v.type == "List":
        return not v.value
    return False


def compare(a: V, b_: V) -> int:
    """-1/0/1 comparing two values (see the module doc's ASSUMPTIONs)."""
    if a.type == "Date" or b_.type == "Date":
        da = a.value if a.type == "Date" else parse_date(str(a.value))
        db = b_.value if b_.type == "Date" else parse_date(str(b_.value))
        da, db = da or dt.date.min, db or dt.date.min
        return (da > db) - (da < db)
    numeric = ("Number", "Amount", "Quantity", "Rate")
    if a.type in numeric or b_.type in numeric:
        na, nb = to_number(a), to_number(b_)
        if na is not None and nb is not None:
            return (na > nb) - (na < nb)
    if a.type == "Logical" or b_.type == "Logical":
        la, lb = truth(a), truth(b_)
        return (la > lb) - (la < lb)
    sa, sb = display_text(a, None).casefold(), display_text(b_, None).casefold()
    return (sa > sb) - (sa < sb)


# =========================================================================== parsing

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>"[^"]*"|'[^']*')
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<func>\$\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<meth>\$(?:\.\.)*[A-Za-z_][A-Za-z0-9_]*)
  | (?P<var>\#\#[A-Za-z_][A-Za-z0-9_]*)
  | (?P<formula>@@[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|<>|==|[-+*/=<>():,])
  | (?P<word>[^\W\d]\w*|[^\s\w"'()$\#@:,=<>!+*/-]+)
)""", re.X)
KEYWORDS = {"and", "or", "not", "if", "then", "else", "contains"}


def tokenize(src: str) -> list[tuple[str, str]]:
    out, pos, src = [], 0, src.strip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise TdlError(f"Sandbox: cannot read TDL formula near '{src[pos:pos + 20]}'")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(src) and src[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.toks = tokenize(src)
        self.i = 0

    def peek(self, k: int = 0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else (None, None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def word(self, w: str) -> bool:
        kind, val = self.peek()
        return kind == "word" and val.lower() == w

    def expect_word(self, w: str):
        if not self.word(w):
            raise TdlError(f"Sandbox: expected '{w}' in TDL formula {self.src!r}")
        self.take()

    def parse(self):
        node = self.expr()
        if self.i != len(self.toks):
            raise TdlError(f"Sandbox: unsupported TDL formula {self.src!r}")
        return node

    def expr(self):
        if self.word("if"):
            self.take()
            cond = self.expr()
            self.expect_word("then")
            yes = self.expr()
            self.expect_word("else")
            return ("if", cond, yes, self.expr())
        return self.or_()

    def or_(self):
        node = self.and_()
        while self.word("or"):
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self):
        node = self.not_()
        while self.word("and"):
            self.take()
            node = ("and", node, self.not_())
        return node

    def not_(self):
        if self.word("not"):
            self.take()
            return ("not", self.not_())
        return self.cmp()

    def cmp(self):
        node = self.add()
        kind, val = self.peek()
        if kind == "op" and val in ("=", "==", "!=", "<>", "<", ">", "<=", ">="):
            self.take()
            return ("cmp", val, node, self.add())
        if self.word("contains"):
            self.take()
            return ("contains", node, self.add())
        return node

    def add(self):
        node = self.mul()
        while self.peek()[0] == "op" and self.peek()[1] in "+-":
            op = self.take()[1]
            node = ("arith", op, node, self.mul())
        return node

    def mul(self):
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in "*/":
            op = self.take()[1]
            node = ("arith", op, node, self.unary())
        return node

    def unary(self):
        if self.peek() == ("op", "-"):
            self.take()
            return ("neg", self.unary())
        return self.primary()

    def primary(self):
        kind, val = self.take()
        if kind == "num":
            return ("lit", V("Number", Decimal(val)))
        if kind == "str":
            return ("lit", s(val[1:-1]))
        if kind == "op" and val == "(":
            node = self.expr()
            if self.take() != ("op", ")"):
                raise TdlError(f"Sandbox: unbalanced parentheses in TDL formula {self.src!r}")
            return node
        if kind == "var":
            return ("var", val[2:])
        if kind == "formula":
            return ("formula", val[2:])
        if kind == "meth":
            name = val[1:]
            up = 0
            while name.startswith(".."):
                up += 1
                name = name[2:]
            # $Method:Type:NameExpr (another object's method)
            if (self.peek() == ("op", ":") and self.peek(1)[0] == "word"
                    and self.peek(2) == ("op", ":")):
                self.take()
                obj_type = self.take()[1]
                self.take()
                return ("other", name, obj_type, self.unary())
            return ("meth", name, up)
        if kind == "func":
            return self.function(val[2:])
        if kind == "word":
            low = val.lower()
            if low in ("yes", "true"):
                return ("lit", b(True))
            if low in ("no", "false"):
                return ("lit", b(False))
            if low in KEYWORDS:
                raise TdlError(f"Sandbox: unexpected '{val}' in TDL formula {self.src!r}")
            return ("word", val)
        raise TdlError(f"Sandbox: unsupported TDL formula {self.src!r}")

    def function(self, name: str):
        key = name.lower()
        lo, hi = FUNCTION_ARITY.get(key, (None, None))
        if lo is None:
            if key in GROUP_FUNCS:
                lo = hi = 0
            else:
                raise TdlError(f"Sandbox: unsupported TDL function $${name}")
        args = []
        while len(args) < hi and self.peek() == ("op", ":"):
            self.take()
            args.append(self.unary())
        if len(args) < lo:
            raise TdlError(f"Sandbox: $${name} needs {lo} argument(s) in {self.src!r}")
        return ("func", key, args)


_PARSED: dict[str, tuple] = {}


def parse(src: str):
    """The parsed formula (cached)."""
    node = _PARSED.get(src)
    if node is None:
        node = _PARSED[src] = _Parser(src).parse()
    return node


# =========================================================================== evaluation

class Env:
    """What a formula can see: the emulator, the request's company (``None`` when none is
    loaded), its STATICVARIABLES (upper-cased names), its SYSTEM formulas and COLLECTION
    definitions (casefolded names)."""

    def __init__(self, emulator, company: Company | None, sv: dict[str, str],
                 formulas: dict[str, str] | None = None, collections: dict | None = None):
        self.emulator, self.company, self.sv = emulator, company, sv
        self.formulas = formulas or {}
        self.collections = collections or {}

    def period(self) -> tuple[dt.date, dt.date]:
        frm, to = parse_date(self.sv.get("SVFROMDATE", "")), parse_date(self.sv.get("SVTODATE", ""))
        if frm and to:
            return frm, to
        if self.company is None:
            today = dt.date.today()
            return dt.date(today.year, 1, 1), today
        return company_period(self.company)

    def variable(self, name: str) -> V:
        key = name.upper()
        if key == "SVCURRENTCOMPANY":
            return s(self.company.name if self.company else self.sv.get(key, ""))
        if key == "SVFROMDATE":
            return V("Date", self.period()[0])
        if key == "SVTODATE":
            return V("Date", self.period()[1])
        if key in self.sv:
            return s(self.sv[key])
        raise TdlError(f"Sandbox: unknown variable ##{name}")

    def formula(self, name: str) -> str:
        key = name.casefold()
        if key in self.formulas:
            return self.formulas[key]
        if key in BUILTIN_FORMULAS:
            return BUILTIN_FORMULAS[key]
        raise TdlError(f"Sandbox: formula '{name}' is not defined (no SYSTEM Formulae)")


def evaluate(src_or_node, obj: Obj | None, env: Env) -> V:
    node = parse(src_or_node) if isinstance(src_or_node, str) else src_or_node
    return _eval(node, obj, env)


def _eval(node, obj: Obj | None, env: Env) -> V:
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "word":
        return s(node[1])
    if op == "meth":
        target = obj
        for _ in range(node[2]):
            target = target.parent if target is not None else None
        value = target.lookup(node[1]) if target is not None else None
        return value if value is not None else s("")
    if op == "other":
        return _other(node[1], node[2], _eval(node[3], obj, env), env)
    if op == "var":
        return env.variable(node[1])
    if op == "formula":
        return evaluate(env.formula(node[1]), obj, env)
    if op == "func":
        return _call(node[1], node[2], obj, env)
    if op == "if":
        return _eval(node[2] if truth(_eval(node[1], obj, env)) else node[3], obj, env)
    if op == "or":
        return b(truth(_eval(node[1], obj, env)) or truth(_eval(node[2], obj, env)))
    if op == "and":
        return b(truth(_eval(node[1], obj, env)) and truth(_eval(node[2], obj, env)))
    if op == "not":
        return b(not truth(_eval(node[1], obj, env)))
    if op == "cmp":
        c = compare(_eval(node[2], obj, env), _eval(node[3], obj, env))
        return b({"=": c == 0, "==": c == 0, "!=": c != 0, "<>": c != 0, "<": c < 0,
                  ">": c > 0, "<=": c <= 0, ">=": c >= 0}[node[1]])
    if op == "contains":
        hay = display_text(_eval(node[1], obj, env), env.company).casefold()
        return b(display_text(_eval(node[2], obj, env), env.company).casefold() in hay)
    if op == "neg":
        v = _eval(node[1], obj, env)
        num = to_number(v)
        if num is None:
            raise TdlError("Sandbox: minus of a non-number in a TDL formula")
        return V("Amount" if v.type == "Amount" else "Number", -num)
    if op == "arith":
        a, c = _eval(node[2], obj, env), _eval(node[3], obj, env)
        na, nc = to_number(a), to_number(c)
        if na is None or nc is None:
            if node[1] == "+":
                return s(display_text(a, env.company) + display_text(c, env.company))
            raise TdlError("Sandbox: arithmetic on a non-number in a TDL formula")
        result = {"+": na + nc, "-": na - nc, "*": na * nc,
                  "/": (na / nc) if nc else Decimal(0)}[node[1]]
        kind = "Amount" if "Amount" in (a.type, c.type) else "Number"
        return V(kind, result)
    raise TdlError(f"Sandbox: unsupported TDL node {op}")


def _other(method: str, obj_type: str, name: V, env: Env) -> V:
    kind = TYPE_ALIASES.get(canon(obj_type))
    if kind is None or kind in ("voucher", "company") or env.company is None:
        raise TdlError(f"Sandbox: unsupported object reference ${method}:{obj_type}")
    key = display_text(name, env.company).casefold()
    for o in objects_of(env.company, kind, env.emulator):
        if o.data["name"].casefold() == key:
            v = o.method(method)
            return v if v is not None else s("")
    return s("")


def _family(env: Env, name: V, bases) -> bool:
    if env.company is None:
        return False
    base = env.company.base_voucher_type(display_text(name, env.company))
    return base in bases


def _call(name: str, arg_nodes: list, obj: Obj | None, env: Env) -> V:
    if name in GROUP_FUNCS:
        return s(GROUP_FUNCS[name])
    if name == "numitems":
        target = arg_nodes[0]
        method = target[1] if target[0] in ("word", "meth") else None
        lst = obj.lookup(method) if (obj is not None and method) else None
        return n(len(lst.value) if lst is not None and lst.type == "List" else 0)
    args = [_eval(a, obj, env) for a in arg_nodes]
    if name == "isequal":
        return b(compare(args[0], args[1]) == 0)
    if name == "isempty":
        return b(is_empty(args[0]))
    if name == "isnotapplicable":
        return b(display_text(args[0], env.company).strip().lower() in ("not applicable",
                                                                        SYSNAME_MARK + "not applicable"))
    if name == "string":
        return s(display_text(args[0], env.company).strip() if args[0].type != "String"
                 else args[0].value)
    if name == "number":
        return n(to_number(args[0]) or 0)
    if name == "sysname":
        return s(SYSNAME_MARK + display_text(args[0], env.company))
    if name == "stringfindandreplace":
        src, old, new = (display_text(a, env.company) for a in args)
        return s(src.replace(old, new) if old else src)
    if name in ("yearofdate", "monthofdate", "dayofdate"):
        day = args[0].value if args[0].type == "Date" else parse_date(display_text(args[0], None))
        if day is None:
            return n(0)
        return n({"yearofdate": day.year, "monthofdate": day.month, "dayofdate": day.day}[name])
    if name == "pyrlyyyymmddformat":
        day = args[0].value if args[0].type == "Date" else None
        sep = display_text(args[1], None) if len(args) > 1 else "-"
        return s(day.strftime(f"%Y{sep}%m{sep}%d") if day else "")
    if name == "date":
        return V("Date", args[0].value if args[0].type == "Date"
                 else parse_date(display_text(args[0], None)))
    if name == "isdebit":
        return b((to_number(args[0]) or 0) < 0)
    if name == "numvalue":
        return n(abs(to_number(args[0]) or 0))
    if name == "strbycharcode":
        return s(chr(int(to_number(args[0]) or 32)))
    if name == "isinwards":
        flag = obj.lookup("IsDeemedPositive") if obj is not None else None
        return b(truth(flag) if flag is not None else True)
    if name in VCH_FAMILIES:
        return b(_family(env, args[0], (VCH_FAMILIES[name],)))
    if name == "isaccountingvch":
        return b(_family(env, args[0], ACCOUNTING_BASES))
    if name == "isinventoryvch":
        return b(_family(env, args[0], INVENTORY_BASES))
    if name == "isordervch":
        return b(_family(env, args[0], ORDER_BASES))
    if name == "isledofgrp":
        return b(_ledger_in_group(env.company, display_text(args[0], None),
                                  display_text(args[1], None)))
    if name == "initvalue":
        kind = display_text(args[0], None).strip().lower()
        return {"quantity": V("Quantity", (Decimal(0), "")), "amount": V("Amount", Decimal(0)),
                "number": n(0), "logical": b(False)}.get(kind, s(""))
    if name == "systemperiodfrom":
        return V("Date", env.period()[0])
    if name == "systemperiodto":
        return V("Date", env.period()[1])
    if name == "machinedate":
        return V("Date", dt.date.today())
    raise TdlError(f"Sandbox: unsupported TDL function $${name}")


FUNCTION_ARITY = {
    "isequal": (2, 2), "isempty": (1, 1), "isnotapplicable": (1, 1), "string": (1, 2),
    "number": (1, 1), "sysname": (1, 1), "stringfindandreplace": (3, 3), "yearofdate": (1, 1),
    "monthofdate": (1, 1), "dayofdate": (1, 1), "pyrlyyyymmddformat": (1, 2), "date": (1, 1),
    "isdebit": (1, 1), "numvalue": (1, 1), "strbycharcode": (1, 1), "isinwards": (1, 1),
    "isaccountingvch": (1, 1), "isinventoryvch": (1, 1), "isordervch": (1, 1),
    "isledofgrp": (2, 2), "initvalue": (1, 1), "numitems": (1, 1), "systemperiodfrom": (0, 0),
    "systemperiodto": (0, 0), "machinedate": (0, 0),
    **{k: (1, 1) for k in VCH_FAMILIES},
}
FUNCTIONS = sorted(FUNCTION_ARITY) + sorted(GROUP_FUNCS)


def _ledger_in_group(company: Company | None, ledger: str, group: str) -> bool:
    if company is None:
        return False
    led = company.ledgers.get(ledger.casefold())
    if led is None:
        return False
    return _under(company.groups, led["parent"], group)


def _under(table: dict, start: str, ancestor: str) -> bool:
    """``start`` is ``ancestor`` or below it in ``table`` (name → {"parent"})."""
    seen, node = set(), start
    while node and node.casefold() not in seen:
        if node.casefold() == ancestor.casefold():
            return True
        seen.add(node.casefold())
        node = table.get(node.casefold(), {}).get("parent", "")
    return False


# =========================================================================== collections

def _items(el, *tags: str) -> list[str]:
    """Comma-separated entries of every child ``tag`` (any of ``tags``) of ``el``."""
    out = []
    for tag in tags:
        for c in children(el, tag):
            out.extend(p.strip() for p in (c.text or "").split(",") if p.strip())
    return out


def _named(el, tag: str) -> list[tuple[str, str]]:
    """``Name : Expression`` children (COMPUTE, BY, AGGRCOMPUTE) as pairs."""
    out = []
    for c in children(el, tag):
        raw = (c.text or "").strip()
        if ":" not in raw:
            raise TdlError(f"Sandbox: {tag} needs 'Name : Formula', got {raw!r}")
        name, expr = raw.split(":", 1)
        out.append((name.strip(), expr.strip()))
    return out


def definitions(tdl) -> tuple[dict, dict]:
    """``(formulas, collections)`` of a TDLMESSAGE (SYSTEM Formulae; COLLECTION by name)."""
    formulas = {attr(sy, "NAME").casefold(): (sy.text or "").strip()
                for sy in children(tdl, "SYSTEM") if attr(sy, "TYPE").lower() == "formulae"}
    collections = {attr(c, "NAME").casefold(): c for c in children(tdl, "COLLECTION")}
    return formulas, collections


def apply_filters(objs: list[Obj], names: list[str], env: Env) -> list[Obj]:
    if not names:
        return objs
    nodes = [parse(env.formula(nm)) for nm in names]
    return [o for o in objs if all(truth(_eval(nd, o, env)) for nd in nodes)]


def evaluate_collection(coll, env: Env, ctx: Obj | None = None, _depth: int = 0) -> list[Obj]:
    """The objects of a COLLECTION definition (see the module doc)."""
    if _depth > 8:
        raise TdlError("Sandbox: collections nest too deep")
    source = text(coll, "SOURCECOLLECTION")
    if source:
        objs = _aggregate(coll, source, env, ctx, _depth)
    else:
        raw_type = text(coll, "TYPE")
        kind = TYPE_ALIASES.get(canon(raw_type.split(":")[0]))
        if kind is None:
            raise TdlError(f"Sandbox: unsupported collection type {raw_type}")
        if kind != "company" and env.company is None:
            raise TdlError("No company is loaded!")
        objs = objects_of(env.company, kind, env.emulator)
        if kind == "voucher":
            frm = parse_date(env.sv.get("SVFROMDATE", ""))
            to = parse_date(env.sv.get("SVTODATE", ""))
            frm_s, to_s = frm and frm.strftime("%Y%m%d"), to and to.strftime("%Y%m%d")
            objs = [o for o in objs if (not frm_s or o.data["date"] >= frm_s)
                    and (not to_s or o.data["date"] <= to_s)]
        child_of = text(coll, "CHILDOF")
        if child_of:
            parent = display_text(evaluate(child_of, ctx, env), env.company)
            below = text(coll, "BELONGSTO").lower() == "yes"
            table = {"ledger": env.company.groups, "group": env.company.groups,
                     "costcentre": env.company.cost_centres,
                     "stockitem": env.company.stock_groups,
                     "stockgroup": env.company.stock_groups}.get(kind)
            if table is None:
                raise TdlError(f"Sandbox: CHILDOF is not modelled for {raw_type}")
            keep = []
            for o in objs:
                p = o.data.get("parent", "")
                if p.casefold() == parent.casefold() or (below and _under(table, p, parent)):
                    keep.append(o)
            objs = keep
    computes = [(canon(nm), parse(expr)) for nm, expr in _named(coll, "COMPUTE")]
    for o in objs:
        for nm, node in computes:
            o.extra[nm] = _eval(node, o, env)
    return apply_filters(objs, _items(coll, "FILTER", "FILTERS"), env)


def _walk(objs: list[Obj], path: str) -> list[Obj]:
    for step in [p.strip() for p in path.split(".") if p.strip()]:
        nxt = []
        for o in objs:
            lst = o.method(step)
            if lst is None or lst.type != "List":
                raise TdlError(f"Sandbox: cannot WALK '{step}'")
            nxt.extend(i for i in lst.value if isinstance(i, Obj))
        objs = nxt
    return objs


def _aggregate(coll, source: str, env: Env, ctx: Obj | None, depth: int) -> list[Obj]:
    src = env.collections.get(source.casefold())
    if src is None:
        raise TdlError(f"Could not find Collection '{source}'")
    objs = evaluate_collection(src, env, ctx, depth + 1)
    walk = text(coll, "WALK")
    if walk:
        objs = _walk(objs, walk)
    by = [(canon(nm), nm, parse(expr)) for nm, expr in _named(coll, "BY")]
    aggs = []
    for nm, spec in _named(coll, "AGGRCOMPUTE"):
        if ":" not in spec:
            raise TdlError(f"Sandbox: AGGRCOMPUTE needs 'Name : SUM|MAX|MIN|COUNT : Formula'")
        how, expr = spec.split(":", 1)
        how = how.strip().lower()
        if how not in ("sum", "max", "min", "count", "first", "last"):
            raise TdlError(f"Sandbox: unsupported aggregation {how}")
        aggs.append((canon(nm), how, parse(expr)))
    groups: dict[tuple, Obj] = {}
    for o in objs:
        keys = [(_eval(node, o, env)) for _k, _nm, node in by]
        key = tuple(display_text(k, env.company).casefold() for k in keys)
        row = groups.get(key)
        if row is None:
            row = groups[key] = Obj("aggregate", {}, env.company, emulator=env.emulator)
            for (k, _nm, _node), value in zip(by, keys):
                row.extra[k] = value
        for k, how, node in aggs:
            value = _eval(node, o, env)
            cur = row.extra.get(k)
            if how == "count":
                row.extra[k] = n((to_number(cur) if cur else 0) + 1)
            elif cur is None:
                row.extra[k] = value
            elif how == "sum":
                row.extra[k] = V(value.type if value.type in ("Amount", "Number") else "Number",
                                 (to_number(cur) or 0) + (to_number(value) or 0))
            elif how in ("max", "min"):
                c = compare(value, cur)
                if (how == "max" and c > 0) or (how == "min" and c < 0):
                    row.extra[k] = value
            elif how == "last":
                row.extra[k] = value
    return list(groups.values())


# =========================================================================== rendering

def fetch_spec(coll) -> tuple[list[tuple[str, str, list[str] | None]], bool]:
    """``([(tag-key, method, sub-methods or None)], star)`` from FETCH/NATIVEMETHOD in order;
    dotted names (``AllInventoryEntries.StockItemName``) restrict a list's sub-fields."""
    entries: list = []
    star = False
    index: dict[str, int] = {}
    for item in _items(coll, "FETCH", "NATIVEMETHOD"):
        if item == "*":
            star = True
            continue
        head, _, rest = item.partition(".")
        key = canon(head)
        if key not in index:
            index[key] = len(entries)
            entries.append((key, head, [] if rest else None))
        if rest:
            subs = entries[index[key]][2]
            if subs is not None:
                subs.append(rest)
        elif entries[index[key]][2] is not None:  # plain name wins: the whole list
            entries[index[key]] = (key, head, None)
    return entries, star


def field_xml(key: str, v: V, company: Company | None, subfetch: list[str] | None = None) -> str:
    """One method of an exported object (typed leaf, ``X.LIST`` per sub-object, or a
    ``X.LIST TYPE="String"`` list)."""
    if v.type == "List":
        tag = LIST_TAGS.get(key, key.upper())
        out = []
        strings = [i for i in v.value if isinstance(i, str)]
        if strings:
            inner = "".join(f"<{tag}>{x(i)}</{tag}>" for i in strings)
            out.append(f'<{tag}.LIST TYPE="String">{inner}</{tag}.LIST>')
        for item in v.value:
            if isinstance(item, Obj):
                out.append(f"<{tag}.LIST>{object_body(item, subfetch)}</{tag}.LIST>")
        return "".join(out)
    tag = key.upper()
    return f'<{tag} TYPE="{v.type}">{export_text(v, company)}</{tag}>'


def object_body(obj: Obj, fetch: list[str] | None = None) -> str:
    """The children of an exported object: ``fetch`` (method names) or all its methods."""
    names = [canon(f) for f in fetch] if fetch else obj.all_methods()
    out = []
    for key in names:
        value = obj.method(key)
        if value is not None:
            out.append(field_xml(key, value, obj.company))
    return "".join(out)


def object_xml(obj: Obj, entries, star: bool) -> str:
    """An exported collection object: element with its attributes, the fetched methods
    (unknown ones left out), then its COMPUTE/BY/AGGRCOMPUTE values."""
    parts = []
    done = set()
    if star:
        for key in obj.all_methods(star=True):
            value = obj.method(key)
            if value is not None:
                parts.append(field_xml(key, value, obj.company))
                done.add(key)
    if not entries and not star and obj.kind != "aggregate":
        defaults = DEFAULT_FETCH.get(obj.kind, ("name", "parent", "guid", "masterid", "alterid"))
        entries = [(k, k, None) for k in defaults]
    for key, _head, subs in entries:
        if key in done or key in obj.extra:
            continue
        value = obj.method(key)
        if value is not None:
            parts.append(field_xml(key, value, obj.company, subs or None))
            done.add(key)
    for key, value in obj.extra.items():
        parts.append(field_xml(key, value, obj.company))
    attrs = "".join(f' {k}="{x(v_)}"'.replace("\x04", "&#4;") for k, v_ in obj.attrs())
    tag = obj.tag()
    return f"<{tag}{attrs}>{''.join(parts)}</{tag}>"


def collection_rows_xml(coll, objs: list[Obj]) -> str:
    entries, star = fetch_spec(coll)
    return "".join(object_xml(o, entries, star) for o in objs)


# =========================================================================== reports

def _report_defs(tdl, tag: str) -> dict:
    return {attr(el, "NAME").casefold(): el for el in children(tdl, tag)}


def run_report(report_name: str, tdl, env: Env) -> list[list[tuple[str, str]]]:
    """Execute an inline-TDL report; returns its lines, each a list of ``(XML tag, shown
    text)`` fields, in output order."""
    reports = _report_defs(tdl, "REPORT")
    report = reports.get(report_name.casefold())
    if report is None:
        raise TdlError(f"Could not find Report '{report_name}'")
    forms, parts = _report_defs(tdl, "FORM"), _report_defs(tdl, "PART")
    lines, fields = _report_defs(tdl, "LINE"), _report_defs(tdl, "FIELD")
    out: list[list[tuple[str, str]]] = []
    top = None
    if env.company is not None:
        top = Obj("company", env.company, env.company, emulator=env.emulator)

    def get(table, name, what):
        el = table.get(name.casefold())
        if el is None:
            raise TdlError(f"Sandbox: {what} '{name}' is not defined in the request's TDL")
        return el

    def run_line(name: str, obj: Obj | None):
        line = get(lines, name, "Line")
        row = []
        for fname in _items(line, "FIELDS", "FIELD", "LEFTFIELDS", "RIGHTFIELDS"):
            fld = get(fields, fname, "Field")
            expr = text(fld, "SET") or text(fld, "SETAS")
            value = evaluate(expr, obj, env) if expr else s("")
            tag = (text(fld, "XMLTAG") or fname).replace(" ", "").upper()
            row.append((tag, display_text(value, env.company)))
        out.append(row)
        for ex in _items(line, "EXPLODE"):
            pname, _, cond = ex.partition(":")
            if cond.strip() and not truth(evaluate(cond.strip(), obj, env)):
                continue
            run_part(pname.strip(), obj)

    def run_part(name: str, obj: Obj | None):
        part = get(parts, name, "Part")
        repeat = text(part, "REPEAT")
        rep_line, coll_name = "", ""
        if repeat:
            rep_line, _, coll_name = (p.strip() for p in repeat.partition(":"))
        for lname in _items(part, "LINES", "TOPLINES", "LINE"):
            if lname.casefold() != rep_line.casefold():
                run_line(lname, obj)
                continue
            coll = env.collections.get(coll_name.casefold())
            if coll is not None:
                objs = evaluate_collection(coll, env, obj)
            else:  # a sub-collection of the current object (AllLedgerEntries...)
                lst = obj.lookup(coll_name) if obj is not None else None
                if lst is None or lst.type != "List":
                    raise TdlError(f"Could not find Collection '{coll_name}'")
                objs = [i for i in lst.value if isinstance(i, Obj)]
            for o in objs:
                run_line(lname, o)
        for sub in _items(part, "PARTS"):
            run_part(sub, obj)

    form_names = _items(report, "FORMS", "FORM")
    for fname in form_names:
        form = get(forms, fname, "Form")
        for pname in _items(form, "PARTS", "TOPPARTS", "PART"):
            run_part(pname, top)
    return out


def report_xml(rows: list[list[tuple[str, str]]]) -> str:
    """``<ENVELOPE>`` with every field as ``<TAG>text</TAG>`` in order (XML formats)."""
    inner = "".join(f"<{tag}>{x(val)}</{tag}>" for row in rows for tag, val in row)
    return f"<ENVELOPE>{inner}</ENVELOPE>"


def report_ascii(rows: list[list[tuple[str, str]]]) -> str:
    """``ASCII (Comma Delimited)``: per line every field quoted and followed by a comma, then
    CRLF — the form tally-database-loader's ``saveCompanyInfo`` splits (``…,"†",\\r\\n``)."""
    return "".join("".join(f'"{val}",' for _tag, val in row) + "\r\n" for row in rows if row)


__all__ = ["TdlError", "Env", "evaluate", "parse", "evaluate_collection", "definitions",
           "collection_rows_xml", "object_xml", "object_body", "run_report", "report_xml",
           "report_ascii", "export_text", "display_text", "PRIMARY", "FUNCTIONS"]
