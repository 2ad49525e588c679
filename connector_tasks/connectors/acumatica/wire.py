"""Acumatica's wire format: value-wrapped fields, JSON with exact decimals, error bodies.

Every field travels as ``{"Field": {"value": ...}}`` both ways, with entity metadata (``id``,
``rowNumber``, ``note``, ``custom``, ``files``, ``_links``, ``error``, ``delete``) beside the
fields; a failed PUT echoes the entity with per-field ``"error"`` strings (per line in
``Details[i]``), any other failure answers ``{"message", "exceptionMessage", "exceptionType",
"stackTrace", "innerException"}``. Source: Acumatica's official REST client,
https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp (``Model/EntityBase/Entity.cs``,
``ApiClientExtensions.cs`` ``CollectErrorsFromEntity``, ``ErrorMessage.cs``).
Money stays :class:`~decimal.Decimal`: :func:`dumps` writes it as a JSON number digit for
digit, :func:`loads` reads every number with a fraction back as ``Decimal``.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from connector_tasks.core.client import parse_json

#: Entity metadata (``Entity.cs``): passed through as is by :func:`wrap`/:func:`unwrap`.
METADATA = ("id", "rowNumber", "note", "custom", "files", "_links", "error", "delete")


def wrap(fields: dict) -> dict:
    """``{"Account": "60000", "Details": [{...}]}`` → ``{"Account": {"value": "60000"},
    "Details": [{... wrapped ...}]}``.

    Scalars (str, int, bool, ``Decimal``, ``None``) are wrapped; lists of dicts become detail
    lists of wrapped entities; dicts become wrapped linked entities (``ContactInfo``).
    Metadata keys (``id``, ``rowNumber``, ``delete``, ...) are passed through unwrapped.
    Raises ``TypeError`` for a ``float`` (money must be ``Decimal``).
    """
    out: dict = {}
    for key, value in fields.items():
        if key in METADATA:
            out[key] = value
        elif isinstance(value, list):
            out[key] = [wrap(v) for v in value]
        elif isinstance(value, dict):
            out[key] = wrap(value)
        elif isinstance(value, float):
            raise TypeError(f"{key}: float {value!r} refused; use Decimal")
        else:
            out[key] = {"value": value}
    return out


def unwrap(entity: dict) -> dict:
    """Inverse of :func:`wrap` for a reply: ``{"Field": {"value": v}}`` → ``{"Field": v}``.

    Keeps ``id`` and ``rowNumber``; drops ``_links``, ``custom``, ``files``, ``error`` (read
    errors with :func:`entity_errors`); ``note`` becomes its text. Linked entities and detail
    lists are unwrapped recursively; an empty wrapper ``{}`` becomes ``None``.
    """
    out: dict = {}
    for key, value in (entity or {}).items():
        if key in ("id", "rowNumber"):
            out[key] = value
        elif key == "note":
            out[key] = value.get("value") if isinstance(value, dict) else value
        elif key in METADATA:
            continue
        elif isinstance(value, list):
            out[key] = [unwrap(v) for v in value if isinstance(v, dict)]
        elif isinstance(value, dict) and ("value" in value or not value):
            out[key] = value.get("value")
        elif isinstance(value, dict):
            out[key] = unwrap(value)
        else:
            out[key] = value
    return out


def _encode(obj: Any) -> str:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"non-finite amount {obj!r}")
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in obj) + "]"
    if isinstance(obj, float):
        raise TypeError(f"float {obj!r} refused; use Decimal")
    return json.dumps(obj)


def dumps(body: Any) -> str:
    """JSON text of ``body`` with each ``Decimal`` written as a plain JSON number
    (``Decimal("2791.25")`` → ``2791.25``, never via float). Raises ``TypeError`` on a float
    and ``ValueError`` on a non-finite Decimal."""
    return _encode(body)


def loads(text: str) -> Any:
    """Parse a reply body, numbers with a fraction as ``Decimal``
    (:func:`connector_tasks.core.client.parse_json`). Raises ``ValueError``."""
    return parse_json(text)


def entity_errors(entity: Any, prefix: str = "") -> list[str]:
    """Every error string of a failed PUT's entity echo (``CollectErrorsFromEntity``), in
    document order: the entity's own ``error``, each field's ``{"value", "error"}`` as
    ``"Field 'value': error"``, linked entities as ``"ContactInfo.Email ..."`` and detail lines
    as ``"Details line 2: Account '99999': error"`` (lines counted from 1)."""
    out: list[str] = []
    if not isinstance(entity, dict):
        return out
    if isinstance(entity.get("error"), str) and entity["error"]:
        out.append(f"{prefix}{entity['error']}")
    for key, value in entity.items():
        if key in METADATA:
            continue
        if isinstance(value, dict) and "value" in value:
            if value.get("error"):
                out.append(f"{prefix}{key} {value.get('value')!r}: {value['error']}")
        elif isinstance(value, dict):
            out.extend(entity_errors(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            for i, item in enumerate(value, 1):
                out.extend(entity_errors(item, f"{prefix}{key} line {i}: "))
    return out


def error_messages(text: str | None) -> list[str]:
    """The human messages of an error reply body (``ErrorMessage.cs``): per-field and per-line
    errors of an entity echo (see :func:`entity_errors`), else ``exceptionMessage`` (or
    ``message``) and those of each ``innerException``, else the plain text itself (e.g. the
    "API Login Limit" page, ``AuthApi.cs`` ``VerifyResponseAsync``). Empty list for an empty
    body."""
    if not text or not text.strip():
        return []
    try:
        body = loads(text)
    except ValueError:
        return [text.strip()[:500]]
    if isinstance(body, list):
        return [m for item in body for m in entity_errors(item)]
    if not isinstance(body, dict):
        return [str(body)]
    found = entity_errors(body)
    if found:
        return found
    out: list[str] = []
    node, depth = body, 0
    while isinstance(node, dict) and depth < 10:
        msg = node.get("exceptionMessage") or node.get("message")
        if msg and msg not in out and msg != "An error has occurred.":
            out.append(str(msg))
        node, depth = node.get("innerException"), depth + 1
    if not out and body.get("message"):
        out.append(str(body["message"]))
    if not out and body.get("error"):
        out.append(str(body.get("error_description") or body["error"]))
    return out
