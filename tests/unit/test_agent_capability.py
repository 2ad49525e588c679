"""Per-command capabilities and the agent's ACL rules, without a broker (the real broker is in
tests/security/test_agent_boundary.py)."""
from __future__ import annotations

import pytest

from config.settings import Settings, set_settings
from connector_tasks.agents import acl, capability


@pytest.fixture(autouse=True)
def _settings(tmp_path, monkeypatch):
    import config.settings

    monkeypatch.setattr(config.settings, "_current", config.settings._current)  # restored afterwards
    set_settings(Settings.from_env({"INSTANCE_PATH": str(tmp_path), "ML_CONNECTOR_ENV": "test",
                                    "SECRET_KEY": "k1", "REDIS_URL": "redis://127.0.0.1:1/0"}))


def test_a_capability_binds_agent_subject_and_command():
    cap = capability.issue(3, capability.job_subject(42), "tally.post_journal")
    assert len(cap) == 64 and capability.verify(3, "job:42", "tally.post_journal", cap)
    assert not capability.verify(4, "job:42", "tally.post_journal", cap)      # another agent
    assert not capability.verify(3, "job:43", "tally.post_journal", cap)      # another job
    assert not capability.verify(3, "job:42", "tally.sync_employee", cap)     # another command
    assert not capability.verify(3, "job:42", "tally.post_journal", cap.upper())
    for junk in (None, 7, "", "é" * 64, ["x"]):
        assert capability.verify(3, "job:42", "tally.post_journal", junk) is False
    assert capability.request_subject("c", "r1") == "request:c:r1"


def test_the_server_key_decides_and_an_explicit_key_wins(tmp_path):
    cap = capability.issue(1, "job:1", "t")
    set_settings(Settings.from_env({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k2",
                                    "REDIS_URL": "redis://127.0.0.1:1/0"}))
    assert not capability.verify(1, "job:1", "t", cap)
    set_settings(Settings.from_env({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k2",
                                    "AGENT_CAPABILITY_KEY": "explicit", "REDIS_URL": "redis://127.0.0.1:1/0"}))
    explicit = capability.issue(1, "job:1", "t")
    set_settings(Settings.from_env({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "other",
                                    "AGENT_CAPABILITY_KEY": "explicit", "REDIS_URL": "redis://127.0.0.1:1/0"}))
    assert capability.verify(1, "job:1", "t", explicit)


def test_agent_rules_confine_keys_channels_and_commands():
    rules = acl.rules(9, "ab" * 32)
    assert rules[:2] == ["reset", "on"] and f"#{'ab' * 32}" in rules
    assert "~agent:9:*" in rules and [r for r in rules if r.startswith("~")] == ["~agent:9:*"]
    assert "resetchannels" in rules and not [r for r in rules if r.startswith("&")]
    assert "-@all" in rules and not [r for r in rules if r.startswith("+@")]
    granted = {r[1:] for r in rules if r.startswith("+")}
    for forbidden in ("keys", "scan", "config", "flushall", "flushdb", "acl", "publish", "subscribe",
                      "psubscribe", "client", "client|kill", "client|list", "debug", "monitor", "script",
                      "script|flush", "info", "migrate", "shutdown", "select|*"):
        assert forbidden not in granted, forbidden
    assert {"brpop", "lpush", "evalsha"} <= granted


def test_agent_url_carries_its_user_and_quoted_password():
    url = acl.agent_url("rediss://broker.example.com:6380/0", 5, "p@ss/w:rd")
    assert url == "rediss://agent-5:p%40ss%2Fw%3Ard@broker.example.com:6380/0"
    assert acl.agent_url("redis://default:cloudpw@127.0.0.1:6399/0", 2, "x") == "redis://agent-2:x@127.0.0.1:6399/0"
    assert acl.outbox_key(5) == "agent:5:outbox" and acl.user_name(5) == "agent-5"
