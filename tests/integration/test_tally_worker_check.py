"""``tally-worker check`` against the TallyPrime emulator, as an operator runs it."""
import json
import subprocess
import sys

import pytest

from sandbox.tallyprime.server import serve

pytestmark = pytest.mark.integration


def _check(url: str, company: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "tally_worker.cli", "check", "--company", company, "--url", url],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, json.loads(proc.stdout)


def test_check_reports_company_loaded_unloaded_and_tally_down():
    server, _thread, port = serve("127.0.0.1", 0, None, env="test")
    url = f"http://127.0.0.1:{port}"
    try:
        code, report = _check(url, "Demo Trading Co")
        assert code == 0 and report["reachable"] and report["company_loaded"]
        code, report = _check(url, "Some Other Co")
        assert code == 1 and report["reachable"] and not report["company_loaded"]
    finally:
        server.shutdown()
        server.server_close()
    code, report = _check(url, "Demo Trading Co")
    assert code == 1 and not report["reachable"]
