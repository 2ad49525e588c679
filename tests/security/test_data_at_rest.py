"""Data at rest: the SQLite store (payroll payloads, encrypted credentials) and the instance
folder are created owner-only, even by a process whose umask would let everyone read them
(before: the store file was world-readable)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _run_with_umask(argv: list[str], env: dict, umask: int = 0o022) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(umask))


def test_a_new_sqlite_store_and_its_folders_are_owner_only(tmp_path):
    instance = tmp_path / "deploy" / "instance"
    store = tmp_path / "deploy" / "data" / "store" / "ml-connector.db"
    env = {**os.environ, "ML_CONNECTOR_ENV": "development", "INSTANCE_PATH": str(instance),
           "DATABASE_URL": f"sqlite:///{store}", "REDIS_URL": "redis://127.0.0.1:1/0"}
    env.pop("FERNET_KEYS", None)
    out = _run_with_umask([sys.executable, "-m", "connector_tasks.cli", "db", "upgrade"], env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert _mode(store) == 0o600
    for folder in (store.parent, store.parent.parent):            # the folders we created
        assert _mode(folder) == 0o700, folder
    assert _mode(instance) == 0o700 and _mode(instance / "fernet.key") == 0o600
    # a write through the webhook hot path: the WAL and shared-memory files SQLite makes beside
    # the store while a connection is open are owner-only too (looked at from inside that process)
    probe = ("import json, os, stat\n"
             "from connector_tasks.store import repo\n"
             f"url = 'sqlite:///{store}'\n"
             "repo.ingest_event(url, system='gusto', connection_id=None, payload={}, event_uuid='e1', "
             "event_type='payroll.processed', entity_type=None, entity_id=None)\n"
             f"paths = [{str(store)!r} + s for s in ('-wal', '-shm', '-hotlock')]\n"
             "print(json.dumps({p: stat.S_IMODE(os.stat(p).st_mode) for p in paths if os.path.exists(p)}))\n")
    out = _run_with_umask([sys.executable, "-c", probe], env)
    assert out.returncode == 0, out.stderr[-2000:]
    modes = json.loads(out.stdout.strip().splitlines()[-1])
    assert str(store) + "-wal" in modes, modes
    assert all(mode & 0o077 == 0 for mode in modes.values()), {p: oct(m) for p, m in modes.items()}


def test_an_existing_world_readable_store_is_narrowed(tmp_path):
    store = tmp_path / "old.db"
    store.write_bytes(b"")
    os.chmod(store, 0o644)
    env = {**os.environ, "ML_CONNECTOR_ENV": "development", "INSTANCE_PATH": str(tmp_path / "instance"),
           "DATABASE_URL": f"sqlite:///{store}", "REDIS_URL": "redis://127.0.0.1:1/0"}
    out = _run_with_umask([sys.executable, "-m", "connector_tasks.cli", "db", "upgrade"], env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert _mode(store) == 0o600
