"""``./run demo`` (``ml-sandbox demo``): every integration of the registry runs end to end and
ends with its one summary line, ``demo: <source> -> <target> ok <what was posted>``."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from connector_tasks.connectors import registry
from connector_tasks.domain.ports import Role

pytestmark = pytest.mark.integration


def test_the_demo_runs_every_integration_and_each_ends_ok(tmp_path, redis_server):
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "REDIS_URL": redis_server.url, "ML_CONNECTOR_ENV": "development"}
    done = subprocess.run([sys.executable, "-m", "sandbox.cli", "demo", "--timeout", "120"], env=env,
                          capture_output=True, text=True, timeout=600)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    kits = [s for s in registry.BUILTIN if s.sandbox]
    pairs = [(a.name, b.name) for a in kits if a.plays(Role.PAYROLL_SOURCE)
             for b in kits if b.plays(Role.LEDGER_TARGET)]
    assert pairs, "no integration to show"
    for source, target in pairs:
        [line] = [l for l in out.splitlines() if l.startswith(f"demo: {source} -> {target} ")]
        assert re.fullmatch(rf"demo: {source} -> {target} ok .+ balanced 137,553\.08", line), line
    purchases = [(a.name, b.name) for a in kits if a.plays(Role.PURCHASE_SOURCE)
                 for b in kits if b.plays(Role.INVENTORY_TARGET)]
    for source, target in purchases:
        lines = [l for l in out.splitlines() if l.startswith(f"demo: {source} -> {target} ")]
        assert len(lines) == 2, lines
        assert re.fullmatch(rf"demo: {source} -> {target} ok po \d+ received [\d,]+\.\d\d", lines[0]), lines
        assert re.fullmatch(rf"demo: {source} -> {target} ok parked unmatched \S+", lines[1]), lines
    assert "FAILED" not in out
