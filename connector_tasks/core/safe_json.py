"""Strict JSON for bodies a stranger sends (webhook deliveries): limits on nesting depth, on
the length of a number, and no non-finite numbers.

The standard library's :func:`json.loads` accepts ``NaN``/``Infinity`` (not JSON, RFC 8259
§6, https://www.rfc-editor.org/rfc/rfc8259#section-6), turns ``1e999`` into ``inf``, and
recurses once per nesting level (a body of 100 000 ``[`` raises :class:`RecursionError`, which
a web tier answers 500). :func:`loads_strict` refuses each of these with :class:`ValueError`,
which the receivers answer 400.
"""
from __future__ import annotations

import json
import math

#: deepest nesting a webhook body may have (vendor events are 1–3 levels deep)
MAX_DEPTH = 32
#: longest number literal (digits, sign, exponent) accepted: 64-bit ids have 20 digits
MAX_NUMBER_CHARS = 40


def _refuse_constant(name: str):
    raise ValueError(f"non-finite number {name} is not JSON")


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"number with {len(text)} digits is longer than {MAX_NUMBER_CHARS}")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"number of {len(text)} characters is longer than {MAX_NUMBER_CHARS}")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} overflows to a non-finite value")
    return value


def depth(value, limit: int) -> int:
    """Nesting depth of a parsed JSON ``value`` (a scalar is 0), counting no further than
    ``limit + 1`` (so a wide document costs one pass, never more)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level) for child in item)
    return deepest


def loads_strict(body: bytes | str, *, max_depth: int = MAX_DEPTH):
    """Parse ``body`` (UTF-8 bytes or text) as JSON. Raises :class:`ValueError` with the
    reason for: invalid UTF-8 or JSON, ``NaN``/``Infinity``/``-Infinity``, a number literal
    over :data:`MAX_NUMBER_CHARS` characters or one that overflows to infinity, nesting deeper
    than ``max_depth`` (also when the parser's own recursion gives out first)."""
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not UTF-8: {exc}") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_int=_int, parse_float=_float)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from None
    if depth(value, max_depth) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return value
