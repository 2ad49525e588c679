"""Core mechanics: money, balance checks, signatures, crypto, settings, log redaction, retries."""
import logging
from decimal import Decimal as D

import pytest

from config.logging import RedactingFilter, redact
from config.settings import Settings
from connector_tasks.core.crypto import Vault
from connector_tasks.core.errors import ConfigurationError, MappingError, RateLimitedError, RejectedError
from connector_tasks.core.retry import call_with_retries, countdown
from connector_tasks.core.signatures import hmac_sha256_hex, verify_hex_signature
from connector_tasks.domain.model import JournalEntry, JournalLine, money


def test_money_is_cent_exact_and_refuses_float():
    assert money("130635.89") == D("130635.89")
    assert money(D("3546.72")) == D("3546.72")
    assert money(None) == D("0.00")
    with pytest.raises(TypeError):
        money(0.1)
    with pytest.raises(MappingError):
        money("12,00")


def test_unbalanced_or_two_sided_lines_are_refused():
    import datetime as dt

    entry = JournalEntry("k", dt.date(2021, 1, 1), "n",
                         (JournalLine("A", "x", debit=D("1.00")), JournalLine("B", "y", credit=D("0.99"))), "s")
    with pytest.raises(MappingError, match="difference 0.01"):
        entry.check_balanced()
    two = JournalEntry("k", dt.date(2021, 1, 1), "n", (JournalLine("A", "x", debit=D("1"), credit=D("1")),), "s")
    with pytest.raises(MappingError, match="exactly one positive side"):
        two.check_balanced()


def test_signature_is_lowercase_hex_over_raw_bytes_and_constant_time():
    body = b'{"uuid":"1"}'
    sig = hmac_sha256_hex("tok", body)
    assert sig == sig.lower() and len(sig) == 64
    assert verify_hex_signature("tok", body, sig)
    assert verify_hex_signature("tok", body, sig.upper())  # hex case is not a secret
    assert not verify_hex_signature("tok", body + b" ", sig)
    assert not verify_hex_signature("other", body, sig)
    assert not verify_hex_signature(None, body, sig)
    assert not verify_hex_signature("tok", body, None)


def test_vault_round_trip_and_rotation():
    old, new = Vault.generate_key(), Vault.generate_key()
    token = Vault([old]).encrypt({"refresh_token": "r"})
    both = Vault([new, old])
    assert both.decrypt(token) == {"refresh_token": "r"}
    rotated = both.rotate(token)
    assert Vault([new]).decrypt(rotated) == {"refresh_token": "r"}
    with pytest.raises(ConfigurationError):
        Vault([new]).decrypt(token)
    with pytest.raises(ConfigurationError):
        Vault([])


def test_production_settings_name_the_missing_variable(tmp_path):
    with pytest.raises(ConfigurationError, match="DATABASE_URL must be set in production"):
        Settings.from_env({"ML_CONNECTOR_ENV": "production"})
    with pytest.raises(ConfigurationError, match="ML_CONNECTOR_ENV"):
        Settings.from_env({"ML_CONNECTOR_ENV": "staging"})
    with pytest.raises(ConfigurationError, match="VISIBILITY_TIMEOUT"):
        Settings.from_env({"INSTANCE_PATH": str(tmp_path), "VISIBILITY_TIMEOUT": "10"})
    s = Settings.from_env({"INSTANCE_PATH": str(tmp_path)})
    assert s.database_url.startswith("sqlite:///") and len(s.fernet_keys) == 1
    assert Settings.from_env({"INSTANCE_PATH": str(tmp_path)}).fernet_keys == s.fernet_keys  # kept


def test_redaction_masks_tokens_secrets_and_signatures(caplog):
    text = ('Authorization: Bearer abcdefghijklmnop refresh_token=XYZ123 {"client_secret": "s3cr3t"} '
            'X-Gusto-Signature: ' + "a" * 64 + " /cb?code=C0DE&state=1")
    out = redact(text)
    for secret in ("abcdefghijklmnop", "XYZ123", "s3cr3t", "a" * 64, "C0DE"):
        assert secret not in out
    logger = logging.getLogger("redaction-test")
    handler = logging.Handler()
    seen = []
    handler.emit = lambda record: seen.append(record.getMessage())
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.warning("token=%s", "supersecretvalue")
    assert seen == ["token=[REDACTED]"]


def test_retries_only_retryable_errors_and_honours_retry_after():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RateLimitedError("slow down", retry_after=0.01)
        return "ok"

    assert call_with_retries(flaky, initial=0.001, maximum=0.05) == "ok" and len(calls) == 3
    calls.clear()

    def refused():
        calls.append(1)
        raise RejectedError("no")

    with pytest.raises(RejectedError):
        call_with_retries(refused, initial=0.001)
    assert len(calls) == 1
    assert countdown(0, retry_after=30) >= 30
    assert countdown(20) <= 600 * 1.25
