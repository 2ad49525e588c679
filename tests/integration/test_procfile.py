"""The Procfile is the deployment: its processes, started exactly as it says (by honcho, a
Procfile runner, as a Heroku-style platform would), serve every queue the registry declares.
A payroll posted in the Gusto emulator lands in every target — TallyPrime through its agent
(run beside the books, as on a customer's LAN; not a Procfile process) and Acumatica through
the cloud worker's ``acumatica`` queue, which nothing consumed before the worker served every
registry queue."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from config.settings import Settings, child_environment, set_settings
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncJob
from sandbox.acumatica.kit import AcumaticaKit
from sandbox.demo import enrol_agent, free_port, setup_connections, wait_http
from tests.harness import DEMO_PAYROLL, GustoKit, TallyKit, fresh_postgres_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"


def _honcho(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("honcho")), "-f", str(PROCFILE), *args]


def _procfile_names() -> list[str]:
    return [line.split(":", 1)[0] for line in PROCFILE.read_text().splitlines() if ":" in line]


@pytest.fixture(scope="module")
def platform(tmp_path_factory, redis_server, postgres_admin_url):
    folder = tmp_path_factory.mktemp("procfile")
    url, drop = fresh_postgres_database(postgres_admin_url)
    kits = [GustoKit(), TallyKit(), AcumaticaKit()]
    procs: list[subprocess.Popen] = []
    try:
        env_vars: dict[str, str] = {}
        for kit in kits:
            kit.start()
            env_vars.update(kit.environ())
        port = free_port()
        web = f"http://127.0.0.1:{port}"
        settings = Settings.from_env({"INSTANCE_PATH": str(folder), "ML_CONNECTOR_ENV": "test"}).with_overrides(
            database_url=url, redis_url=redis_server.url, public_base_url=web).with_env(**env_vars)
        set_settings(settings)
        env = child_environment(settings, PORT=str(port), FLOWER_PORT=str(free_port()),
                                BEAT_SCHEDULE=str(folder / "celerybeat-schedule"), WEB_CONCURRENCY="2",
                                FLOWER_BASIC_AUTH="ops:procfile-test-password",
                                PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        logs = open(folder / "honcho.log", "ab")
        # the release phase first, then every process of the formation but the one-off release
        subprocess.run(_honcho("start", "release"), env=env, cwd=folder, check=True, stdout=logs,
                       stderr=subprocess.STDOUT, timeout=120)
        gusto, tally, acu = kits
        setup_connections(settings, [gusto], [tally, acu])
        formation = [n for n in _procfile_names() if n != "release"]
        procs.append(subprocess.Popen(_honcho("start", *formation), env=env, cwd=folder, stdout=logs,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        wait_http(f"{web}/healthz", timeout=90)
        # the agent: enrolled, registered with its one-time code, run with its own environment
        agent_argv, agent_env = enrol_agent(settings, tally, web, folder / "agent")
        procs.append(subprocess.Popen(agent_argv, env=agent_env, cwd=folder,
                                      stdout=open(folder / "agent.log", "ab"), stderr=subprocess.STDOUT,
                                      start_new_session=True))
        gusto.connect(web)
        yield settings, kits, formation, folder
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for kit in kits:
            kit.stop()
        drop()


def test_the_procfile_runs_every_process_and_posts_a_payroll_to_every_target(platform):
    settings, (gusto, tally, acu), formation, folder = platform
    assert set(formation) >= {"web", "worker", "beat", "relay", "flower"}
    assert gusto.fire() == DEMO_PAYROLL
    deadline = time.monotonic() + 120
    while True:
        with session_scope(settings.database_url) as s:
            jobs = s.execute(select(Connection.name, SyncJob.status, SyncJob.last_error)
                             .join(Connection, Connection.id == SyncJob.target_id)
                             .where(SyncJob.source_id == DEMO_PAYROLL, SyncJob.flow == "payroll_to_journal")).all()
        if len(jobs) == 2 and all(status in ("done", "failed") for _, status, _ in jobs):
            break
        assert time.monotonic() < deadline, f"jobs did not finish: {jobs}; see {folder}/honcho.log"
        time.sleep(0.5)
    assert sorted((name, status) for name, status, _ in jobs) == [("demo-acumatica", "done"),
                                                                 ("demo-tally", "done")], jobs
    key = f"gusto-payroll-{DEMO_PAYROLL}"
    assert [v["remote_id"] for v in tally.vouchers()].count(key) == 1
    assert sum(1 for b in acu.state()["journal_transactions"] if f"[{key}]" in b["Description"]) == 1


def test_the_procfile_worker_serves_every_queue_the_registry_declares(platform):
    """Asked over the broker (Celery's inspect), the Procfile's worker consumes ``default`` and
    every cloud queue of every registered system."""
    from connector_tasks.celery_app import app
    from connector_tasks.cli import cloud_queues

    deadline = time.monotonic() + 30
    while True:
        replies = app.control.inspect(timeout=2).active_queues() or {}
        served = {q["name"] for queues in replies.values() for q in queues}
        if served:
            break
        assert time.monotonic() < deadline, "no worker answered"
    assert served >= set(cloud_queues()) >= {"default", "gusto", "acumatica"}
    assert requests.get(f"{settings_url(platform)}/healthz", timeout=10).json()["ok"] is True


def settings_url(platform) -> str:
    return platform[0].public_base_url
