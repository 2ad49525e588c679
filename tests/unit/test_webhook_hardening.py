"""Strict JSON and signature-header shape checks (the pieces the webhook receiver relies on)."""
from __future__ import annotations

import pytest

from connector_tasks.core.safe_json import MAX_DEPTH, loads_strict
from connector_tasks.core.signatures import hmac_sha256_hex, verify_hex_signature, well_formed_hex_signature


def test_loads_strict_takes_ordinary_events():
    assert loads_strict(b'{"uuid":"u","timestamp":1671058841,"amount":"12.50","n":1.5}') == {
        "uuid": "u", "timestamp": 1671058841, "amount": "12.50", "n": 1.5}
    assert loads_strict("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


@pytest.mark.parametrize("body, reason", [
    (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested"),
    (b"[" * 200_000 + b"]" * 200_000, "nested"),
    (b'{"a": NaN}', "non-finite"), (b'{"a": Infinity}', "non-finite"), (b"[-Infinity]", "non-finite"),
    (b"[1e400]", "non-finite"), (b"[" + b"1" * 41 + b"]", "longer"), (b"\xff{}", "UTF-8"),
])
def test_loads_strict_refuses_pathological_json(body, reason):
    with pytest.raises(ValueError, match=reason):
        loads_strict(body)


def test_malformed_signature_headers_are_false_not_exceptions():
    body = b"{}"
    good = hmac_sha256_hex("tok", body)
    assert well_formed_hex_signature(good) and verify_hex_signature("tok", body, f" {good.upper()} ")
    for bad in ("é" * 64, good[:-1], good + "0", "g" * 64, "sha256=" + good, "", None, b"ab" * 32, 42):
        assert not well_formed_hex_signature(bad)
        assert verify_hex_signature("tok", body, bad) is False
