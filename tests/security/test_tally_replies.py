"""Attacks by (or through) the Tally gateway on the client: a 300 MB reply and one that drips a
byte a second. Before: 1.2 GB RSS, and a reply held for 120 s. Now both end with a typed error
naming the cap or the deadline, inside the deadline, with memory bounded by the cap — for plain
requests and streamed exports alike. The server is a real HTTP server in its own process."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector_tasks.connectors.tallyprime import exports
from connector_tasks.connectors.tallyprime.client import ReplyDeadlineError, ReplyTooLargeError, TallyClient
from sandbox.demo import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CAP = 4 * 1024 * 1024
DEADLINE = 3.0


@contextlib.contextmanager
def hostile(mode: str, tmp_path: Path):
    """A hostile Tally in ``mode`` (see hostile_tally.py); yields ``(url, log path)``."""
    import socket

    port = free_port()
    log = tmp_path / f"{mode}.log"
    proc = subprocess.Popen([sys.executable, "-m", "tests.security.hostile_tally", str(port), mode, str(log)],
                            cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "hostile Tally did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", log
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _sent(log: Path, timeout: float = 10.0) -> int:
    """Bytes the server managed to send on its last connection (logged when the client hung up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().strip():
            return int(re.findall(r"sent=(\d+)", log.read_text())[-1])
        time.sleep(0.1)
    raise AssertionError("the client never hung up")


def _client(url: str) -> TallyClient:
    return TallyClient(url, "ACME", timeout=(5, 60), max_reply_bytes=CAP, deadline=DEADLINE)


def _export(client: TallyClient):
    return list(exports.iter_changed_vouchers(client, since_alter_id=0, from_date="20240101", to_date="20240131",
                                              check_company=False))


@pytest.mark.parametrize("mode", ["huge", "huge-chunked"])
@pytest.mark.parametrize("how", ["post", "stream"])
def test_an_oversized_reply_ends_at_the_cap_with_a_clear_error(tmp_path, mode, how):
    with hostile(mode, tmp_path) as (url, log):
        client = _client(url)
        with pytest.raises(ReplyTooLargeError) as exc:
            client.post("<ENVELOPE/>") if how == "post" else _export(client)
        assert exc.value.cap == CAP and "TALLY_MAX_REPLY_BYTES" in str(exc.value) and str(CAP) in str(exc.value)
        assert not exc.value.retryable
        # the client hung up near the cap: the server got nowhere near its 300 MB out
        assert _sent(log) < 64 * 1024 * 1024
        assert not client._lock.locked()


@pytest.mark.parametrize("how", ["post", "stream"])
def test_a_dripping_reply_ends_at_the_deadline_with_a_clear_error(tmp_path, how):
    with hostile("drip", tmp_path) as (url, log):
        client = _client(url)
        started = time.monotonic()
        with pytest.raises(ReplyDeadlineError) as exc:
            client.post("<ENVELOPE/>") if how == "post" else _export(client)
        took = time.monotonic() - started
        assert "TALLY_REPLY_DEADLINE" in str(exc.value) and exc.value.deadline == DEADLINE
        assert exc.value.retryable and 0 < exc.value.received < 10
        assert took < DEADLINE + 1.0, took   # ends inside the deadline (plus scheduling), not after 120 s
        assert _sent(log) < 10
        assert not client._lock.locked()


MEMORY_PROBE = """
import json, resource, sys
from connector_tasks.connectors.tallyprime.client import ReplyTooLargeError, TallyClient
cap = int(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    TallyClient(sys.argv[1], "ACME", max_reply_bytes=cap, deadline=120).post("<ENVELOPE/>")
    outcome = "read"
except ReplyTooLargeError as exc:
    outcome = type(exc).__name__
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "grew_kib": after - before}))
"""


def test_memory_stays_bounded_by_the_cap_on_a_300_mb_reply(tmp_path):
    """Before: a 300 MB reply took the client to 1.2 GB RSS. The peak growth of a fresh process
    reading it is now bounded by a few times the cap (8 MiB here), nowhere near the reply."""
    cap = 8 * 1024 * 1024
    with hostile("huge", tmp_path) as (url, _log):
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, url, str(cap)], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "ReplyTooLargeError"
    assert result["grew_kib"] * 1024 < 6 * cap, result  # 300 MB reply, < 48 MiB of growth


def test_the_agent_reads_the_cap_and_deadline_from_its_environment(tmp_path):
    from config.settings import Settings
    from connector_tasks.connectors.tallyprime.settings import TallyAppSettings
    from connector_tasks.core.errors import ConfigurationError

    env = {"ML_CONNECTOR_ENV": "test", "INSTANCE_PATH": str(tmp_path)}
    s = Settings.from_env({**env, "TALLY_MAX_REPLY_BYTES": "1048576", "TALLY_REPLY_DEADLINE": "12.5"})
    app = TallyAppSettings.from_settings(s)
    assert (app.max_reply_bytes, app.reply_deadline) == (1048576, 12.5)
    defaults = TallyAppSettings.from_settings(Settings.from_env(env))
    assert (defaults.max_reply_bytes, defaults.reply_deadline) == (32 * 1024 * 1024, 300.0)
    with pytest.raises(ConfigurationError, match="TALLY_REPLY_DEADLINE"):
        TallyAppSettings.from_settings(Settings.from_env({**env, "TALLY_REPLY_DEADLINE": "0"}))
