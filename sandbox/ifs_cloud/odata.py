"""OData v4 machinery shared by every projection of the IFS Cloud emulator.

* the projection model (:class:`Prop`, :class:`EntityType`, :class:`Projection`) from which the
  routes, the JSON and the ``$metadata`` CSDL are all derived;
* IFS OData error bodies (:class:`ODataError`);
* ETags ``W/"<base64 of objid:objversion>"`` (:func:`etag_of`, :func:`if_match_ok`);
* ``$filter`` (a small recursive-descent parser with type checks), ``$select``, ``$orderby``,
  ``$top``, ``$skip``, ``$count`` (:func:`query_collection`);
* key predicates and request bodies (:func:`parse_key`, :func:`parse_body`);
* the ``$metadata`` document (:func:`metadata_xml`).

Sources: see :mod:`sandbox.ifs_cloud.sources` (``ODP_SUPPORTED``, ``KNAKIT_ODATA``,
``NOVACURA_ERRORS``, ``CONVENTIONS``).
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from xml.sax.saxutils import escape, quoteattr

from flask import Response

# ---------------------------------------------------------------------------------------- errors
# Error codes. Confirmed ones cite NOVACURA_ERRORS / MI_MODIFIED_*; the rest are ASSUMPTION (IFS
# documents the status families, not these codes): clients should branch on the HTTP status and
# treat the code as a hint.
DESERIALIZATION = "ODP_DESERIALIZATION_ERROR"   # confirmed (Novacura)
MISSING_PRECONDITION = "ODP_MISSING_PRECONDITION"  # confirmed (Novacura)
NOT_FOUND = "ODP_RESOURCE_NOTFOUND"               # confirmed (Novacura)
MI_MODIFIED = "MI_MODIFIED_ERROR"                 # confirmed (docs.ifs.com 21r2 / 23r2)
URI_ERROR = "ODP_URI_PARSE_ERROR"                 # ASSUMPTION: bad $filter/$select/key/segment
METHOD_NOT_ALLOWED = "ODP_METHOD_NOT_ALLOWED"     # ASSUMPTION: 405 body code
PRECONDITION_FAILED = "ODP_PRECONDITION_FAILED"   # ASSUMPTION: 412 body code
NOT_UPDATABLE = "ODP_ATTRIBUTE_NOT_UPDATABLE"     # ASSUMPTION
BUSINESS = "DATABASE_ERROR"                       # ASSUMPTION: PL/SQL business-rule errors


class ODataError(Exception):
    """An IFS OData error: ``{"error": {"code", "message"[, "details"]}}`` with an HTTP status.

    Shape from NOVACURA_ERRORS / MI_MODIFIED_21R2. ``details`` (a list of ``{code, message}``) is
    ASSUMPTION: the emulator puts the specific reason there (e.g. the business-rule TAG)."""

    def __init__(self, status: int, code: str, message: str, details: list | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers or {}

    def body(self) -> dict:
        err: dict = {"code": self.code, "message": self.message}
        if self.details:
            err["details"] = self.details
        return {"error": err}

    def response(self) -> Response:
        return json_response(self.body(), self.status, self.headers)


def business_error(entity: str, tag: str, message: str, status: int = 400,
                   ora: int = 20110) -> ODataError:
    """A business-rule refusal worded like IFS (``ORA-20110: Entity.TAG: text``, ORA_20110;
    ORA-20111 for "record does not exist", ASSUMPTION). ASSUMPTION: HTTP 400 and code
    ``DATABASE_ERROR``; ``details[0].code`` is the TAG so clients and tests can tell a closed
    period from a missing account without parsing prose."""
    text = f"ORA-{ora}: {entity}.{tag}: {message}"
    return ODataError(status, BUSINESS, text, [{"code": tag, "message": message}])


def bad_uri(message: str) -> ODataError:
    return ODataError(400, URI_ERROR, message)


def not_found(message: str = "The requested resource was not found.") -> ODataError:
    return ODataError(404, NOT_FOUND, message)


def deserialization_error(detail: str) -> ODataError:
    """NOVACURA_ERRORS: the message is always this sentence; the reason goes to ``details``."""
    return ODataError(400, DESERIALIZATION, "Error while de-serializing contents.",
                      [{"code": DESERIALIZATION, "message": detail}])


def _default(o):
    if isinstance(o, Decimal):
        # JSON numbers, exact for the 2-decimal amounts here (the client parses with Decimal).
        return int(o) if o == o.to_integral_value() and abs(o) < 10 ** 15 else float(o)
    if isinstance(o, (dt.date, dt.datetime)):
        return o.isoformat()
    raise TypeError(type(o).__name__)


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    resp = Response(json.dumps(body, default=_default), status=status,
                    mimetype="application/json")
    if status < 300:
        resp.headers["OData-Version"] = "4.0"
    for k, v in (headers or {}).items():
        resp.headers[k] = str(v)
    return resp


# ---------------------------------------------------------------------------------------- model
TEXT, NUMBER, DATE, BOOLEAN, TIMESTAMP, ENUM = "text", "number", "date", "boolean", "timestamp", "enum"

#: ASSUMPTION: IFS ``Number`` attributes appear as ``Edm.Double`` in $metadata (remembered from
#: real IFS metadata, not confirmed by a public source); amounts are JSON numbers either way.
EDM = {TEXT: "Edm.String", NUMBER: "Edm.Double", DATE: "Edm.Date", BOOLEAN: "Edm.Boolean",
       TIMESTAMP: "Edm.DateTimeOffset"}


@dataclass
class Prop:
    """One attribute. ``kind`` is a TEXT/NUMBER/... constant or ENUM with ``enum`` naming the
    enumeration of the same projection."""

    name: str
    kind: str = TEXT
    enum: str | None = None
    key: bool = False
    max_length: int | None = None
    insertable: bool = True
    updatable: bool = True
    required: bool = False
    uppercase: bool = False


@dataclass
class Array:
    """``array Name(parent attrs) to Child(child attrs)`` of a projection model file."""

    name: str
    target: str
    link: tuple[tuple[str, str], ...]


@dataclass
class Action:
    """A bound action ``IfsApp.<Projection>.<EntityType>_<Name>``. ``handler(ctx, record, params)``
    returns the action's value (``None`` for a void action -> 204)."""

    name: str
    handler: Callable
    returns: str | None = None
    params: tuple[Prop, ...] = ()
    etag_required: bool = False


@dataclass
class EntityType:
    """An entity (or virtual) of a projection and how the emulator stores and changes it."""

    name: str
    props: list[Prop]
    table: str
    luname: str
    crud: frozenset = frozenset({"Create", "Read", "Update", "Delete"})
    arrays: dict[str, Array] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    #: ``create(ctx, values, parent) -> record`` (values already type-checked)
    create: Callable | None = None
    #: ``update(ctx, record, values) -> None`` (values already type-checked and updatable)
    update: Callable | None = None
    #: ``delete(ctx, record) -> None``
    delete: Callable | None = None
    #: the projection's ``where`` clause: which stored records this set shows
    where: Callable | None = None

    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.props if p.name == name), None)

    @property
    def keys(self) -> list[Prop]:
        return [p for p in self.props if p.key]

    def key_of(self, rec: dict) -> tuple:
        return tuple(rec.get(p.name) for p in self.keys)


@dataclass
class Projection:
    """A projection (``<Name>.svc``): entity sets, entity types and enumerations."""

    name: str
    sets: dict[str, str]
    types: dict[str, EntityType]
    enums: dict[str, list[str]] = field(default_factory=dict)
    source: str = ""

    @property
    def namespace(self) -> str:
        """The schema namespace (enum literals are ``<namespace>.<EnumType>'Value'``, KNAKIT_ODATA)."""
        return f"IfsApp.{self.name}"


# ---------------------------------------------------------------------------------------- ETags
def etag_of(rec: dict) -> str:
    """NOVACURA_ERRORS (update page) / CONVENTIONS: ``W/"<base64(objid:objversion)>"``."""
    raw = f"{rec['_objid']}:{rec['_objversion']}".encode()
    return 'W/"' + base64.b64encode(raw).decode() + '"'


def _strip_weak(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def if_match_ok(header: str, rec: dict) -> bool:
    """``If-Match: *`` always matches (UPSERTS); otherwise one of the listed tags must equal the
    current one (weak prefix ignored: IFS hands out weak tags and expects them back)."""
    if header.strip() == "*":
        return True
    current = _strip_weak(etag_of(rec))
    return any(_strip_weak(t) == current for t in header.split(","))


# ---------------------------------------------------------------------------------------- values
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def coerce(prop: Prop, value: Any, projection: Projection) -> Any:
    """A JSON body value as stored (Decimal, date, bool, str, enum member name). Raises
    ValueError with the reason (-> ODP_DESERIALIZATION_ERROR)."""
    if value is None:
        return None
    if prop.kind == TEXT:
        if not isinstance(value, str):
            raise ValueError(f"{prop.name} must be a string")
        if prop.max_length and len(value) > prop.max_length:
            raise ValueError(f"{prop.name} is longer than {prop.max_length} characters")
        return value.upper() if prop.uppercase else value
    if prop.kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise ValueError(f"{prop.name} must be a number")
        return Decimal(str(value))
    if prop.kind == DATE:
        if not isinstance(value, str) or not _DATE.match(value):
            raise ValueError(f"{prop.name} must be a date YYYY-MM-DD")
        return dt.date.fromisoformat(value)
    if prop.kind == BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(f"{prop.name} must be true or false")
        return value
    if prop.kind == ENUM:
        members = projection.enums.get(prop.enum or "", [])
        if not isinstance(value, str) or value not in members:
            raise ValueError(f"{prop.name} must be one of {members} (IfsApp.{projection.name}.{prop.enum})")
        return value
    if prop.kind == TIMESTAMP:
        if not isinstance(value, str):
            raise ValueError(f"{prop.name} must be a date-time")
        return value
    raise ValueError(f"unsupported type for {prop.name}")


def parse_body(raw: bytes, content_type: str | None) -> dict:
    """NOVACURA_ERRORS: a body that is not JSON, or sent without a JSON content type, is an
    ODP_DESERIALIZATION_ERROR."""
    if not content_type or "json" not in content_type.lower():
        raise deserialization_error("Content-Type must be application/json")
    try:
        body = json.loads(raw or b"{}", parse_float=Decimal)
    except ValueError as exc:
        raise deserialization_error(f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise deserialization_error("the body must be a JSON object")
    return body


def typed_values(etype: EntityType, body: dict, projection: Projection) -> dict:
    """Body properties converted by :func:`coerce`; ``@odata.*`` annotations are ignored, an
    unknown property is a deserialization error (Olingo refuses properties the type lacks)."""
    out = {}
    for name, value in body.items():
        if name.startswith("@") or "@odata." in name:
            continue
        prop = etype.prop(name)
        if prop is None:
            raise deserialization_error(f"property '{name}' does not exist in type "
                                        f"'{projection.namespace}.{etype.name}'")
        try:
            out[name] = coerce(prop, value, projection)
        except ValueError as exc:
            raise deserialization_error(str(exc)) from None
    return out


def render_value(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


# ---------------------------------------------------------------------------------------- keys & paths
def split_path(path: str) -> list[str]:
    """Split a resource path on ``/`` outside quoted literals."""
    parts, cur, quoted = [], [], False
    for ch in path:
        if ch == "'":
            quoted = not quoted
        if ch == "/" and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_$][\w.$]*)(?:\((?P<keys>.*)\))?$", re.S)


def parse_segment(seg: str) -> tuple[str, str | None]:
    m = _SEGMENT.match(seg)
    if not m:
        raise bad_uri(f"Invalid URI segment '{seg}'.")
    return m.group("name"), m.group("keys")


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, cur, quoted, depth = [], [], False, 0
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == sep and not quoted and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _key_literal(prop: Prop, text: str) -> Any:
    text = text.strip()
    if prop.kind in (TEXT, ENUM):
        if len(text) < 2 or not (text.startswith("'") and text.endswith("'")):
            raise bad_uri(f"Key {prop.name} must be a quoted string literal, got {text}.")
        return text[1:-1].replace("''", "'")
    if prop.kind == NUMBER:
        try:
            return Decimal(text)
        except InvalidOperation:
            raise bad_uri(f"Key {prop.name} must be a number, got {text}.") from None
    if prop.kind == DATE:
        if not _DATE.match(text):
            raise bad_uri(f"Key {prop.name} must be a date literal, got {text}.")
        return dt.date.fromisoformat(text)
    raise bad_uri(f"Unsupported key type for {prop.name}.")


def parse_key(etype: EntityType, text: str, fixed: dict | None = None) -> dict:
    """``Company='10',VoucherNo=1`` (or ``'x'`` for a single key) -> ``{prop: value}``.
    ``fixed`` holds key values implied by the parent of a navigation; they may be left out."""
    fixed = fixed or {}
    keys = etype.keys
    parts = [p for p in _split_top(text) if p]
    out: dict = {}
    if len(parts) == 1 and "=" not in parts[0].split("'")[0]:
        missing = [p for p in keys if p.name not in fixed]
        if len(missing) != 1:
            raise bad_uri(f"{etype.name} needs named keys {[p.name for p in keys]}.")
        out[missing[0].name] = _key_literal(missing[0], parts[0])
    else:
        for part in parts:
            name, _, lit = part.partition("=")
            prop = etype.prop(name.strip())
            if prop is None or not prop.key:
                raise bad_uri(f"'{name.strip()}' is not a key of {etype.name}.")
            out[prop.name] = _key_literal(prop, lit)
    for name, value in fixed.items():
        if name in out and out[name] != value:
            raise not_found()
        out[name] = value
    missing = [p.name for p in keys if p.name not in out]
    if missing:
        raise bad_uri(f"Key properties {missing} of {etype.name} are missing.")
    return out


def keys_text(etype: EntityType, rec: dict) -> str:
    """The canonical key predicate of a record (for @odata.context and Location)."""
    parts = []
    for p in etype.keys:
        v = rec.get(p.name)
        if p.kind == NUMBER:
            parts.append(f"{p.name}={_default(v) if isinstance(v, Decimal) else v}")
        elif isinstance(v, dt.date):
            parts.append(f"{p.name}={v.isoformat()}")
        else:
            parts.append(f"{p.name}='{str(v).replace(chr(39), chr(39) * 2)}'")
    return ",".join(parts)


def keyref(etype: EntityType, rec: dict) -> str:
    """IFS ``keyref`` (CONVENTIONS): ``COLUMN=value^`` per key. ASSUMPTION on the column names
    (upper-cased, underscores before capitals)."""
    out = []
    for p in etype.keys:
        col = re.sub(r"(?<!^)(?=[A-Z])", "_", p.name).upper()
        v = rec.get(p.name)
        out.append(f"{col}={_default(v) if isinstance(v, Decimal) else render_value(v)}^")
    return "".join(out)


# ---------------------------------------------------------------------------------------- $filter
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<enum>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+'(?:[^']|'')*')
  | (?P<str>'(?:[^']|'')*')
  | (?P<dto>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_$][\w]*)
  | (?P<punct>[(),:/])
""", re.X)

_CMP = {"eq", "ne", "gt", "ge", "lt", "le"}
_STRING_FUNCS = {"contains": 2, "startswith": 2, "endswith": 2, "tolower": 1, "toupper": 1,
                 "trim": 1, "length": 1, "indexof": 2, "substring": 2, "concat": 2}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise bad_uri(f"Invalid $filter near '{text[pos:pos + 20]}'.")
        pos = m.end()
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group()))
    return out


@dataclass
class _Node:
    kind: str                 # prop | lit | func | cmp | and | or | not | lambda
    typ: str = ""             # string | number | date | boolean | null | enum:<fq> | datetime
    value: Any = None
    args: tuple = ()


class FilterParser:
    """``$filter`` per ODP_SUPPORTED: comparisons (eq ne gt ge lt le), and/or/not, parentheses
    (IFS tools write ``((...))``, KNAKIT_ODATA), string functions, qualified enum literals and
    ``Array/any(x:x/Prop eq ...)`` over a record's arrays.

    Type rules follow OData/Olingo: an enum property compares only with a literal of *its*
    qualified enum type (``IfsApp.<Projection>.<EnumType>'Value'``); a plain string against an
    enum is refused (KNAKIT_ODATA: "this will return an error"); dates take unquoted date
    literals. ASSUMPTION: ``any``/``all`` over arrays — IFS says collection *functions* are not
    supported; whether lambda operators over arrays work in IFS is unconfirmed.
    """

    def __init__(self, projection: Projection, etype: EntityType):
        self.projection, self.root = projection, etype

    def parse(self, text: str) -> _Node:
        self.toks, self.i, self.scopes = _tokens(text), 0, {}
        node = self._or()
        if self.i != len(self.toks):
            raise bad_uri(f"Unexpected '{self.toks[self.i][1]}' in $filter.")
        if node.typ not in ("boolean",):
            raise bad_uri("$filter must be a boolean expression.")
        return node

    # -- token helpers
    def _peek(self, ahead: int = 0):
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else (None, None)

    def _take(self, value: str | None = None):
        tok = self._peek()
        if tok[0] is None or (value is not None and tok[1] != value):
            raise bad_uri(f"Expected '{value}' in $filter.")
        self.i += 1
        return tok

    def _kw(self, word: str) -> bool:
        kind, val = self._peek()
        if kind == "ident" and val == word:
            self.i += 1
            return True
        return False

    # -- grammar
    def _or(self) -> _Node:
        node = self._and()
        while self._kw("or"):
            node = _Node("or", "boolean", args=(self._bool(node), self._bool(self._and())))
        return node

    def _and(self) -> _Node:
        node = self._not()
        while self._kw("and"):
            node = _Node("and", "boolean", args=(self._bool(node), self._bool(self._not())))
        return node

    def _not(self) -> _Node:
        if self._kw("not"):
            return _Node("not", "boolean", args=(self._bool(self._not()),))
        return self._cmp()

    @staticmethod
    def _bool(node: _Node) -> _Node:
        if node.typ != "boolean":
            raise bad_uri("Operands of and/or/not must be boolean.")
        return node

    def _cmp(self) -> _Node:
        left = self._value()
        kind, val = self._peek()
        if kind == "ident" and val in _CMP:
            self.i += 1
            right = self._value()
            self._check_comparable(left, right, val)
            return _Node("cmp", "boolean", val, (left, right))
        if kind == "ident" and val == "has":
            raise bad_uri("The 'has' operator is not supported.")   # ODP_SUPPORTED
        return left

    def _check_comparable(self, a: _Node, b: _Node, op: str) -> None:
        ta, tb = a.typ, b.typ
        if "null" in (ta, tb):
            if op not in ("eq", "ne"):
                raise bad_uri("null can only be compared with eq/ne.")
            return
        if ta.startswith("enum:") or tb.startswith("enum:"):
            if ta != tb:
                enum_side = ta if ta.startswith("enum:") else tb
                other = tb if enum_side == ta else ta
                raise bad_uri(
                    f"The types '{enum_side[5:]}' and '{_edm_name(other)}' are not compatible. "
                    f"Enumeration values must be written as fully qualified literals "
                    f"{enum_side[5:]}'<Value>'.")
            return
        if ta != tb:
            raise bad_uri(f"The types '{_edm_name(ta)}' and '{_edm_name(tb)}' are not compatible.")

    def _value(self) -> _Node:
        kind, val = self._peek()
        if kind is None:
            raise bad_uri("Unexpected end of $filter.")
        if kind == "punct" and val == "(":
            self.i += 1
            node = self._or()
            self._take(")")
            return node
        if kind == "str":
            self.i += 1
            return _Node("lit", "string", val[1:-1].replace("''", "'"))
        if kind == "num":
            self.i += 1
            return _Node("lit", "number", Decimal(val))
        if kind == "date":
            self.i += 1
            return _Node("lit", "date", dt.date.fromisoformat(val))
        if kind == "dto":
            self.i += 1
            return _Node("lit", "datetime", val)
        if kind == "enum":
            self.i += 1
            return self._enum_literal(val)
        if kind == "ident":
            if val in ("true", "false"):
                self.i += 1
                return _Node("lit", "boolean", val == "true")
            if val == "null":
                self.i += 1
                return _Node("lit", "null", None)
            if self._peek(1) == ("punct", "("):
                return self._function()
            return self._path()
        raise bad_uri(f"Unexpected '{val}' in $filter.")

    def _enum_literal(self, text: str) -> _Node:
        qualified, _, rest = text.partition("'")
        member = rest[:-1].replace("''", "'")
        ns, _, enum_name = qualified.rpartition(".")
        if ns != self.projection.namespace or enum_name not in self.projection.enums:
            raise bad_uri(f"Unknown enumeration type '{qualified}' (this projection's enumerations "
                          f"are {self.projection.namespace}."
                          f"{{{','.join(sorted(self.projection.enums))}}}).")
        if member not in self.projection.enums[enum_name]:
            raise bad_uri(f"'{member}' is not a member of {qualified}.")
        return _Node("lit", f"enum:{qualified}", member)

    def _function(self) -> _Node:
        _, name = self._take()
        if name not in _STRING_FUNCS:
            raise bad_uri(f"Function '{name}' is not supported.")
        self._take("(")
        args = [self._value()]
        while self._peek() == ("punct", ","):
            self.i += 1
            args.append(self._value())
        self._take(")")
        if len(args) != _STRING_FUNCS[name]:
            raise bad_uri(f"{name} takes {_STRING_FUNCS[name]} argument(s).")
        if name in ("contains", "startswith", "endswith", "tolower", "toupper", "trim", "length",
                    "indexof", "concat"):
            for a in args[:2] if name != "substring" else args[:1]:
                if a.typ not in ("string", "null"):
                    raise bad_uri(f"{name} expects string arguments, got '{_edm_name(a.typ)}'.")
        typ = {"contains": "boolean", "startswith": "boolean", "endswith": "boolean",
               "length": "number", "indexof": "number"}.get(name, "string")
        return _Node("func", typ, name, tuple(args))

    def _path(self) -> _Node:
        _, first = self._take()
        etype, var = self.root, None
        if first in self.scopes:                      # lambda variable: x/Prop
            var, etype = first, self.scopes[first]
            self._take("/")
            _, first = self._take()
        prop = etype.prop(first)
        if prop is not None:
            return _Node("prop", self._prop_type(prop), (var, prop.name))
        array = etype.arrays.get(first)
        if array is not None and self._peek() == ("punct", "/"):
            self.i += 1
            _, op = self._take()
            if op not in ("any", "all"):
                raise bad_uri(f"Only any/all may follow the array {first}.")
            self._take("(")
            _, name = self._take()
            self._take(":")
            child = self.projection.types[array.target]
            self.scopes[name] = child
            body = self._bool(self._or())
            del self.scopes[name]
            self._take(")")
            return _Node("lambda", "boolean", (var, array, op, name), (body,))
        raise bad_uri(f"Could not find a property named '{first}' on type "
                      f"'{self.projection.namespace}.{etype.name}'.")

    def _prop_type(self, prop: Prop) -> str:
        if prop.kind == ENUM:
            return f"enum:{self.projection.namespace}.{prop.enum}"
        return {TEXT: "string", NUMBER: "number", DATE: "date", BOOLEAN: "boolean",
                TIMESTAMP: "datetime"}[prop.kind]


def _edm_name(typ: str) -> str:
    return {"string": "Edm.String", "number": "Edm.Double", "date": "Edm.Date",
            "boolean": "Edm.Boolean", "datetime": "Edm.DateTimeOffset", "null": "null"}.get(
        typ, typ[5:] if typ.startswith("enum:") else typ)


def evaluate(node: _Node, rec: dict, env: dict, children: Callable) -> Any:
    """Evaluate a parsed filter on ``rec``; ``children(rec, array)`` lists a record's array rows."""
    k = node.kind
    if k == "lit":
        return node.value
    if k == "prop":
        var, name = node.value
        return (env[var] if var else rec).get(name)
    if k == "and":
        return all(evaluate(a, rec, env, children) for a in node.args)
    if k == "or":
        return any(evaluate(a, rec, env, children) for a in node.args)
    if k == "not":
        return not evaluate(node.args[0], rec, env, children)
    if k == "cmp":
        a = evaluate(node.args[0], rec, env, children)
        b = evaluate(node.args[1], rec, env, children)
        if node.value == "eq":
            return a == b
        if node.value == "ne":
            return a != b
        if a is None or b is None:
            return False
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[node.value]
    if k == "func":
        vals = [evaluate(a, rec, env, children) for a in node.args]
        name = node.value
        if name in ("contains", "startswith", "endswith"):
            if vals[0] is None or vals[1] is None:
                return False
            return {"contains": vals[1] in vals[0], "startswith": vals[0].startswith(vals[1]),
                    "endswith": vals[0].endswith(vals[1])}[name]
        s = vals[0]
        if s is None:
            return None
        if name == "tolower":
            return s.lower()
        if name == "toupper":
            return s.upper()
        if name == "trim":
            return s.strip()
        if name == "length":
            return Decimal(len(s))
        if name == "indexof":
            return Decimal(s.find(vals[1] or ""))
        if name == "concat":
            return s + (vals[1] or "")
        if name == "substring":
            return s[int(vals[1] or 0):]
    if k == "lambda":
        var, array, op, name = node.value
        owner = env[var] if var else rec
        rows = children(owner, array)
        test = (lambda r: evaluate(node.args[0], rec, {**env, name: r}, children))
        return any(test(r) for r in rows) if op == "any" else all(test(r) for r in rows)
    raise bad_uri("Unsupported $filter expression.")


# ---------------------------------------------------------------------------------------- query options
def _sort_key(value):
    return (value is None, value if value is not None else 0)


def query_collection(projection: Projection, etype: EntityType, records: list[dict], args,
                     children: Callable) -> tuple[list[dict], int, list[str] | None]:
    """Apply ``$filter``, ``$orderby``, ``$skip``, ``$top`` (ODP_SUPPORTED). Returns
    ``(page, total before paging, selected property names or None)``."""
    text = args.get("$filter")
    if text:
        node = FilterParser(projection, etype).parse(text)
        records = [r for r in records if evaluate(node, r, {}, children)]
    order = args.get("$orderby")
    if order:
        for clause in reversed(_split_top(order)):
            parts = clause.split()
            if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("asc", "desc")):
                raise bad_uri(f"Invalid $orderby clause '{clause}'.")
            if etype.prop(parts[0]) is None:
                raise bad_uri(f"Could not find a property named '{parts[0]}' to order by.")
            records = sorted(records, key=lambda r, n=parts[0]: _sort_key(r.get(n)),
                             reverse=len(parts) == 2 and parts[1] == "desc")
    total = len(records)
    skip, top = _int_option(args, "$skip"), _int_option(args, "$top")
    if skip:
        records = records[skip:]
    if top is not None:
        records = records[:top]
    return records, total, select_option(etype, args)


def _int_option(args, name: str) -> int | None:
    raw = args.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise bad_uri(f"{name} must be a non-negative integer.")
    return int(raw)


def select_option(etype: EntityType, args) -> list[str] | None:
    raw = args.get("$select")
    if not raw:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for n in names:
        if n != "*" and etype.prop(n) is None:
            raise bad_uri(f"Could not find a property named '{n}' on type '{etype.name}'.")
    return None if "*" in names else names


def count_wanted(args) -> bool:
    raw = (args.get("$count") or "").lower()
    if raw not in ("", "true", "false"):
        raise bad_uri("$count must be true or false.")
    return raw == "true"


def render(etype: EntityType, rec: dict, select: list[str] | None = None) -> dict:
    """An entity as IFS returns it: ``@odata.etag`` first, then the properties (keys always),
    then ``luname``/``keyref`` (CONVENTIONS)."""
    out: dict = {"@odata.etag": etag_of(rec)}
    for p in etype.props:
        if select is None or p.name in select or p.key:
            out[p.name] = render_value(rec.get(p.name))
    out["luname"] = etype.luname
    out["keyref"] = keyref(etype, rec)
    return out


# ---------------------------------------------------------------------------------------- $metadata
def metadata_xml(projection: Projection) -> str:
    """CSDL 4.0 for the projection: enum types, entity types (keys, properties with Edm types and
    MaxLength, contained navigation properties for arrays), bound actions, and the container.
    ASSUMPTION on details IFS adds (annotations, Objgrants, ...): left out."""
    ns = projection.namespace
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">',
           "<edmx:DataServices>",
           f'<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace={quoteattr(ns)}>']
    for name, members in sorted(projection.enums.items()):
        out.append(f"<EnumType Name={quoteattr(name)}>")
        for i, m in enumerate(members):
            out.append(f"<Member Name={quoteattr(m)} Value=\"{i}\"/>")
        out.append("</EnumType>")
    for etype in projection.types.values():
        out.append(f"<EntityType Name={quoteattr(etype.name)}>")
        out.append("<Key>" + "".join(f"<PropertyRef Name={quoteattr(p.name)}/>" for p in etype.keys)
                   + "</Key>")
        for p in etype.props:
            typ = f"{ns}.{p.enum}" if p.kind == ENUM else EDM[p.kind]
            attrs = f"Name={quoteattr(p.name)} Type={quoteattr(typ)}"
            if p.key or p.required:
                attrs += ' Nullable="false"'
            if p.max_length:
                attrs += f' MaxLength="{p.max_length}"'
            out.append(f"<Property {attrs}/>")
        out.append('<Property Name="luname" Type="Edm.String"/><Property Name="keyref" Type="Edm.String"/>')
        for arr in etype.arrays.values():
            out.append(f"<NavigationProperty Name={quoteattr(arr.name)} "
                       f"Type={quoteattr(f'Collection({ns}.{arr.target})')} ContainsTarget=\"true\"/>")
        out.append("</EntityType>")
    for etype in projection.types.values():
        for act in etype.actions.values():
            out.append(f"<Action Name={quoteattr(f'{etype.name}_{act.name}')} IsBound=\"true\">")
            out.append(f"<Parameter Name=\"it\" Type={quoteattr(f'{ns}.{etype.name}')} Nullable=\"false\"/>")
            for p in act.params:
                typ = f"{ns}.{p.enum}" if p.kind == ENUM else EDM[p.kind]
                out.append(f"<Parameter Name={quoteattr(p.name)} Type={quoteattr(typ)}/>")
            if act.returns:
                out.append(f"<ReturnType Type={quoteattr(EDM[act.returns])}/>")
            out.append("</Action>")
    out.append('<EntityContainer Name="Main">')
    for set_name, type_name in projection.sets.items():
        out.append(f"<EntitySet Name={quoteattr(set_name)} EntityType={quoteattr(f'{ns}.{type_name}')}/>")
    out.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return "\n".join(out)


def xml_text(text: str) -> str:
    return escape(text)
