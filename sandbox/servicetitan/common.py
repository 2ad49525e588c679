"""Wire helpers shared by the ServiceTitan emulator's modules: JSON, dates, numbers, the
``ApiErrorResponse`` body, request-body validation, query parsing and pagination.

Sources are cited per rule: ``OAS <schema or operation id>`` is one of the four ServiceTitan v2
OpenAPI specs (``shared/specs/servicetitan/tenant-*-v2.yml``); "§5" means ServiceTitan's developer
docs (https://developer.servicetitan.io/docs/: get-going-first-api-call, oauth20,
faqs-app-key-client-id-secret; the 60/s profile as published at apis.io/rate-limits/servicetitan) and
"§8.2" the v2 inventory operations newer than the spec snapshot (receipts create/cancel, PO
cancellation, returns) as public generated clients of https://developer.servicetitan.io/apis/ show them. Whatever neither settles is marked ``ASSUMPTION``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from decimal import Decimal, InvalidOperation

from flask import Response, request

UTC = dt.timezone.utc

# ASSUMPTION: the RFC 7231 section URIs ASP.NET Core puts in ``type`` of its problem details.
PROBLEM_TYPES = {
    400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
    401: "https://tools.ietf.org/html/rfc7235#section-3.1",
    403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
    404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
    405: "https://tools.ietf.org/html/rfc7231#section-6.5.5",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    500: "https://tools.ietf.org/html/rfc7231#section-6.6.1",
    502: "https://tools.ietf.org/html/rfc7231#section-6.6.3",
    503: "https://tools.ietf.org/html/rfc7231#section-6.6.4",
    504: "https://tools.ietf.org/html/rfc7231#section-6.6.5",
}


class ApiError(Exception):
    """Raised by handlers; rendered as an ``ApiErrorResponse`` (OAS ``ApiErrorResponse``)."""

    def __init__(self, status: int, title: str, errors: dict | None = None, data: dict | None = None):
        super().__init__(title)
        self.status, self.title, self.errors, self.data = status, title, errors or {}, data or {}


def validation_error(errors: dict) -> ApiError:
    """400 with per-field messages. OAS ``ApiErrorResponse`` ("RFC-7807-like", §5); the title
    is ASP.NET Core's validation title (ASSUMPTION)."""
    return ApiError(400, "One or more validation errors occurred.", errors)


def not_found(what: str, ident) -> ApiError:
    """404 for an unknown id (OAS: every ``GetById``/``Update`` documents ``404`` with an
    ``ApiErrorResponse``). ASSUMPTION: the title wording."""
    return ApiError(404, f"{what} with id {ident} was not found.")


def error_body(status: int, title: str, errors: dict | None = None, data: dict | None = None) -> dict:
    """OAS ``ApiErrorResponse``: required ``type, title, status, traceId, errors, data``;
    ``errors`` maps a field to a list of messages (§5)."""
    return {"type": PROBLEM_TYPES.get(status, "about:blank"), "title": title, "status": status,
            "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",   # ASSUMPTION: W3C form
            "errors": errors or {}, "data": data or {}}


def _default(o):
    if isinstance(o, Decimal):
        return int(o) if o == o.to_integral_value() and abs(o) < 2 ** 53 else float(o)
    if isinstance(o, dt.datetime):
        return iso(o)
    raise TypeError(type(o).__name__)


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON answer (``application/json; charset=utf-8``); Decimals become JSON numbers."""
    resp = Response(json.dumps(body, default=_default), status=status,
                    mimetype="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = str(v)
    return resp


def error_response(err: ApiError, headers: dict | None = None) -> Response:
    return json_response(error_body(err.status, err.title, err.errors, err.data), err.status, headers)


# ---------------------------------------------------------------------------------- dates
def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def iso(value: dt.datetime | None) -> str | None:
    """OAS ``format: date-time`` (RFC 3339) in UTC with a ``Z`` and milliseconds.
    ASSUMPTION: the precision (the real API's fraction digits vary)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_datetime(text) -> dt.datetime:
    """An RFC 3339 date-time (OAS ``format: date-time``). ASSUMPTION: like ASP.NET's binder the
    emulator also takes a bare ``YYYY-MM-DD`` and a time without offset, both read as UTC.
    Raises ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("not a date-time")
    s = text.strip()
    if _DATE_ONLY.match(s):
        s += "T00:00:00"
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(s)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def money(value) -> Decimal:
    """Two-decimal rounding of an amount. ASSUMPTION: amounts are kept to the cent."""
    return Decimal(value).quantize(Decimal("0.01"))


# ---------------------------------------------------------------------------------- request bodies
def json_body() -> dict:
    """The request's JSON object. ASSUMPTION: ASP.NET-style 400s for an empty, malformed or
    non-object body (key ``""``). Numbers are parsed as Decimal."""
    raw = request.get_data(cache=True)
    if not raw or not raw.strip():
        raise validation_error({"": ["A non-empty request body is required."]})
    try:
        body = json.loads(raw, parse_float=Decimal)
    except ValueError as exc:
        raise validation_error({"$": [f"The JSON value could not be converted: {exc.msg}."]}) from None
    if not isinstance(body, dict):
        raise validation_error({"$": ["The JSON value could not be converted to an object."]})
    return body


# A field rule: (kind, required, extra). kind ∈ int, num, str, bool, datetime, enum, obj, list.
# For "enum" extra is the allowed values; for "obj" a nested rule dict; for "list" a rule dict
# for object items. ``nullable`` follows the spec: a required field may never be null.
def check(body: dict, rules: dict, errors: dict, prefix: str = "") -> dict:
    """Validate ``body`` against ``rules`` (transcribed from the spec's request schema named at
    each call site); messages go into ``errors`` keyed by JSON path (``items[0].skuId``).
    Returns the normalised values (Decimal numbers, aware datetimes, nested dicts/lists).
    Unknown properties are ignored (ASSUMPTION: ASP.NET's default binder ignores them although
    the schemas say ``additionalProperties: false``).
    ASSUMPTION: messages follow ASP.NET's wording ("The X field is required.")."""
    out: dict = {}
    for name, (kind, required, extra) in rules.items():
        path = f"{prefix}{name}"
        present = name in body and body[name] is not None
        if not present:
            if required:
                errors.setdefault(path, []).append(f"The {name} field is required.")
            continue
        value = body[name]
        try:
            out[name] = _coerce(kind, value, extra, errors, path)
        except ValueError:
            errors.setdefault(path, []).append(_type_message(kind, value, extra))
    return out


def _type_message(kind: str, value, extra) -> str:
    if kind == "enum":
        return f"The value '{value}' is not valid. Allowed: {', '.join(extra)}."
    names = {"int": "an integer (int64)", "num": "a number", "str": "a string", "bool": "a boolean",
             "datetime": "a date-time", "obj": "an object", "list": "an array"}
    return f"The JSON value could not be converted to {names.get(kind, kind)}."


def _coerce(kind: str, value, extra, errors: dict, path: str):
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not -2 ** 63 <= value < 2 ** 63:
            raise ValueError
        return value
    if kind == "num":
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise ValueError
        return Decimal(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError
        return value
    if kind == "datetime":
        return parse_datetime(value)
    if kind == "enum":
        if value not in extra:
            raise ValueError
        return value
    if kind == "obj":
        if not isinstance(value, dict):
            raise ValueError
        return check(value, extra, errors, f"{path}.")
    if kind == "list":
        if not isinstance(value, list):
            raise ValueError
        items = []
        for i, item in enumerate(value):
            if extra is None:
                items.append(item)
            elif not isinstance(item, dict):
                errors.setdefault(f"{path}[{i}]", []).append(_type_message("obj", item, None))
            else:
                items.append(check(item, extra, errors, f"{path}[{i}]."))
        return items
    raise ValueError


# ---------------------------------------------------------------------------------- query strings
class Query:
    """Typed access to the query string; a malformed value is a 400 (ASSUMPTION: ASP.NET's
    "The value 'x' is not valid." wording). Parameter names are matched case-insensitively
    (ASP.NET model binding), which the spec's camelCase names need not rely on."""

    def __init__(self, args):
        self.args = {k.lower(): v for k, v in args.items()}
        self.errors: dict = {}

    def raw(self, name: str) -> str | None:
        v = self.args.get(name.lower())
        return v if v not in (None, "") else None

    def int(self, name: str) -> int | None:
        v = self.raw(name)
        if v is None:
            return None
        try:
            return int(v)
        except ValueError:
            self.errors.setdefault(name, []).append(f"The value '{v}' is not valid.")
            return None

    def num(self, name: str) -> Decimal | None:
        v = self.raw(name)
        if v is None:
            return None
        try:
            return Decimal(v)
        except InvalidOperation:
            self.errors.setdefault(name, []).append(f"The value '{v}' is not valid.")
            return None

    def bool(self, name: str) -> bool | None:
        v = self.raw(name)
        if v is None:
            return None
        if v.lower() in ("true", "false"):
            return v.lower() == "true"
        self.errors.setdefault(name, []).append(f"The value '{v}' is not valid.")
        return None

    def datetime(self, name: str) -> dt.datetime | None:
        v = self.raw(name)
        if v is None:
            return None
        try:
            return parse_datetime(v)
        except ValueError:
            self.errors.setdefault(name, []).append(f"The value '{v}' is not valid.")
            return None

    def ids(self, name: str = "ids", limit: int | None = 50) -> set[int] | None:
        """A comma-separated id list. OAS: ``ids`` "Perform lookup by multiple IDs (maximum 50)";
        ASSUMPTION: more than 50 is a 400, and other ``…Ids`` collections are comma-separated
        too (the spec types them ``string``)."""
        v = self.raw(name)
        if v is None:
            return None
        try:
            out = {int(p) for p in v.split(",") if p.strip()}
        except ValueError:
            self.errors.setdefault(name, []).append(f"The value '{v}' is not valid.")
            return None
        if limit is not None and len(out) > limit:
            self.errors.setdefault(name, []).append(f"Maximum {limit} ids are allowed.")
        return out

    def strings(self, name: str) -> set[str] | None:
        """A comma-separated list of words, lower-cased (statuses, types)."""
        vals = request.args.getlist(name) or ([self.raw(name)] if self.raw(name) else [])
        if not vals:
            return None
        return {p.strip().lower() for v in vals for p in v.split(",") if p.strip()}

    def active(self) -> str:
        """OAS ``ActiveQueryFilter``: ``True`` (default: "only active items will be returned by
        default"), ``Any`` or ``False``. ASSUMPTION: matched case-insensitively."""
        v = (self.raw("active") or "True").lower()
        if v not in ("true", "any", "false"):
            self.errors.setdefault("active", []).append(f"The value '{self.raw('active')}' is not valid.")
            return "true"
        return v

    def done(self) -> None:
        if self.errors:
            raise validation_error(self.errors)


def active_match(mode: str, active: bool) -> bool:
    return mode == "any" or (mode == "true") == bool(active)


def date_window(q: Query, rows: list, field: str, after: str, before: str) -> list:
    """``<x>OnOrAfter`` (inclusive) / ``<x>Before`` (exclusive) on ``field`` (OAS parameter
    descriptions: "on or after", "before")."""
    lo, hi = q.datetime(after), q.datetime(before)
    if lo is not None:
        rows = [r for r in rows if r.get(field) is not None and r[field] >= lo]
    if hi is not None:
        rows = [r for r in rows if r.get(field) is not None and r[field] < hi]
    return rows


def created_modified(q: Query, rows: list) -> list:
    """The spec's common ``createdOnOrAfter/createdBefore/modifiedOnOrAfter/modifiedBefore``."""
    rows = date_window(q, rows, "createdOn", "createdOnOrAfter", "createdBefore")
    return date_window(q, rows, "modifiedOn", "modifiedOnOrAfter", "modifiedBefore")


def page_params(q: Query) -> tuple[int, int, bool]:
    """OAS list parameters ``page`` ("starting from 1"), ``pageSize`` ("50 by default"),
    ``includeTotal``. §5: pageSize 1–5000. ASSUMPTION: out-of-range values are a 400."""
    page, size, total = q.int("page"), q.int("pageSize"), q.bool("includeTotal")
    page = 1 if page is None else page
    size = 50 if size is None else size
    if page < 1:
        q.errors.setdefault("page", []).append("The field Page must be between 1 and 2147483647.")
    if not 1 <= size <= 5000:
        q.errors.setdefault("pageSize", []).append("The field PageSize must be between 1 and 5000.")
    return page, size, bool(total)


def paginate(q: Query, rows: list, render) -> dict:
    """OAS ``PaginatedResponse_Of_…``: ``{page, pageSize, hasMore, totalCount, data}``;
    ``totalCount`` only when ``includeTotal=true`` (else null: "can optionally be populated").
    ASSUMPTION: rows are ordered by id ascending unless a handler sorted them."""
    page, size, with_total = page_params(q)
    q.done()
    start = (page - 1) * size
    chunk = rows[start:start + size]
    return {"page": page, "pageSize": size, "hasMore": len(rows) > start + size,
            "totalCount": len(rows) if with_total else None,
            "data": [render(r) for r in chunk]}


def address_out(addr: dict | None) -> dict:
    """OAS ``Inventory.V2.AddressResponse`` (all six fields, nullable strings)."""
    addr = addr or {}
    return {k: addr.get(k) for k in ("street", "unit", "city", "state", "zip", "country")}


ADDRESS_RULES = {  # OAS Inventory.V2.AddressRequest: all six required
    "street": ("str", True, None), "unit": ("str", True, None), "city": ("str", True, None),
    "state": ("str", True, None), "zip": ("str", True, None), "country": ("str", True, None),
}
