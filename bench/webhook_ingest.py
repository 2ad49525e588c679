"""Webhook ingest under gunicorn: our endpoint beside naive ones, in the same run.

Endpoints (each served by the same gunicorn command, worker class and worker count, one after
the other, under the same load):
  verify           verify the HMAC, answer                       (no durability)
  verify+enqueue   verify, publish a Celery task, answer         (a crash loses the event)
  ours inline      verify, store + commit, publish, answer       (WEBHOOK_ENQUEUE=inline)
  ours relay       verify, store + commit, answer; the relay process publishes in batches
                   (WEBHOOK_ENQUEUE=relay; the relay runs beside gunicorn on the same CPUs)
  relay NORMAL     (--sqlite-normal) ours relay with SQLITE_SYNCHRONOUS=NORMAL

Load: C client processes on this machine, each sending unique, correctly signed events back to
back for D seconds. For each endpoint: requests/s, p50 and p99 latency, the server side's CPU
per request (gunicorn master + workers, plus the relay for ``ours relay``, measured from
/proc; ``+servers``: what the broker's redis-server and the PostgreSQL server spent per request
on top), and for relay mode the backlog left when the load stops and how long the relay took to
publish it (its CPU for that is counted too). With ``--rounds N`` the endpoints run N times
interleaved and the median of each figure is printed, which damps noise from other load; the
ratio is the median of each round's ratio to verify+enqueue run just before it, so a slow drift
in the machine's speed cancels out.
Usage: ``python bench/webhook_ingest.py [--seconds 8] [--clients 4] [--workers 4]
[--worker-class sync] [--rounds 1] [--database URL]``. Starts its own redis-server and, by
default, a fresh SQLite store.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-verification-token"
COMPANY = "6bf7807c-a5a0-4f4d-b2e7-3fbb4b2299fb"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(port: int, seconds: float, out: mp.Queue) -> None:
    from connector_tasks.core.signatures import hmac_sha256_hex

    lat = []
    errors = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        body = json.dumps({"uuid": str(uuid.uuid4()), "event_type": "payroll.processed", "resource_type": "Company",
                           "resource_uuid": COMPANY, "entity_type": "Payroll",
                           "entity_uuid": str(uuid.uuid4()), "timestamp": int(time.time())}).encode()
        headers = {"Content-Type": "application/json", "X-Gusto-Signature": hmac_sha256_hex(TOKEN, body)}
        t0 = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/webhooks/gusto/bench", body=body, headers=headers)
            status = conn.getresponse().status
            conn.close()
        except OSError:
            status = 0
        lat.append(time.perf_counter() - t0)
        if status != 200:
            errors += 1
    out.put((lat, errors))


def load(port: int, seconds: float, clients: int) -> dict:
    q: mp.Queue = mp.Queue()
    procs = [mp.Process(target=client, args=(port, seconds, q)) for _ in range(clients)]
    for p in procs:
        p.start()
    lat, errors = [], 0
    for _ in procs:
        l, e = q.get()
        lat += l
        errors += e
    for p in procs:
        p.join()
    lat.sort()
    return {"rps": len(lat) / seconds, "p50": statistics.median(lat) * 1000,
            "p99": lat[int(len(lat) * 0.99) - 1] * 1000, "errors": errors, "n": len(lat)}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of ``pids`` and their live children (gunicorn's workers)."""
    wanted, total = set(pids), 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) in wanted or int(fields[1]) in wanted:  # fields[1]: ppid
            total += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return total


def service_cpu_seconds(redis_pid: int) -> float:
    """User + system CPU of the broker (our redis-server) and of every PostgreSQL process,
    counting backends that already exited (the postmaster's reaped children)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        comm, fields = raw[raw.find("(") + 1:raw.rfind(")")], raw.rsplit(")", 1)[1].split()
        if int(entry) == redis_pid or comm.startswith("postgres"):
            total += sum(int(f) for f in fields[11:15]) / TICK  # utime, stime, cutime, cstime
    return total


def wait_port(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def backlog(url: str) -> int:
    """Stored events the relay has not published yet."""
    from sqlalchemy import func, select

    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import InboundEvent

    with session_scope(url) as s:
        return s.scalar(select(func.count()).select_from(InboundEvent)
                        .where(InboundEvent.status.in_(["received", "relaying"])))


def run_one(name: str, target: str, extra: dict, settings, broker: str, args) -> dict:
    from config.settings import child_environment

    port = free_port()
    env = child_environment(settings, BENCH_TOKEN=TOKEN, BENCH_BROKER=broker, PYTHONPATH=str(ROOT), **extra)
    argv = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-k", args.worker_class,
            "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    if args.worker_class == "gthread":
        argv += ["--threads", str(args.threads)]
    procs = [subprocess.Popen(argv + [target], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    if extra.get("WEBHOOK_ENQUEUE") == "relay":
        procs.append(subprocess.Popen([sys.executable, "-m", "connector_tasks.cli", "relay"], env=env,
                                      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        wait_port(port)
        load(port, 1.0, args.clients)  # warm-up
        if len(procs) > 1:
            _drain(settings.database_url, 30)
        pids = [p.pid for p in procs]
        cpu0, svc0 = cpu_seconds(pids), service_cpu_seconds(args.redis_pid)
        result = load(port, args.seconds, args.clients)
        result["lag"], result["drain"] = 0, 0.0
        if len(procs) > 1:
            result["lag"] = backlog(settings.database_url)
            result["drain"] = _drain(settings.database_url, 60)
        result["cpu"] = (cpu_seconds(pids) - cpu0) / max(result["n"], 1) * 1000
        result["svc"] = (service_cpu_seconds(args.redis_pid) - svc0) / max(result["n"], 1) * 1000
        result["load"] = os.getloadavg()[0]
        return result
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)


def _drain(url: str, timeout: float) -> float:
    t0 = time.monotonic()
    while backlog(url) and time.monotonic() - t0 < timeout:
        time.sleep(0.05)
    return time.monotonic() - t0


RUNS = [("verify", "bench.naive_app:verify_app()", {}),
        ("verify+enqueue", "bench.naive_app:enqueue_app()", {}),
        ("ours inline", "webapp:create_app()", {"WEBHOOK_ENQUEUE": "inline"}),
        ("ours relay", "webapp:create_app()", {"WEBHOOK_ENQUEUE": "relay"})]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--worker-class", default="sync", help="gunicorn worker class for every endpoint")
    ap.add_argument("--threads", type=int, default=4, help="threads per worker with --worker-class gthread")
    ap.add_argument("--rounds", type=int, default=1, help="run the endpoints this many times, interleaved")
    ap.add_argument("--only", help="comma-separated endpoint names (verify+enqueue always runs)")
    ap.add_argument("--sqlite-normal", action="store_true",
                    help="SQLite store: also run ours relay with SQLITE_SYNCHRONOUS=NORMAL")
    ap.add_argument("--database", help="store URL (default: a fresh SQLite file); e.g. "
                    "postgresql+psycopg://postgres@127.0.0.1:5432/<empty database>")
    args = ap.parse_args()

    from config.redis_server import redis_binary
    from config.settings import Settings, set_settings
    from connector_tasks import runtime
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope, upgrade
    from connector_tasks.store.models import Connection

    tmp = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    rport = free_port()
    redis = subprocess.Popen([str(redis_binary()), "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL)
    broker = f"redis://127.0.0.1:{rport}/0"
    args.redis_pid = redis.pid
    settings = Settings.from_env({"INSTANCE_PATH": str(tmp)}).with_overrides(redis_url=broker, log_level="WARNING")
    if args.database:
        settings = settings.with_overrides(database_url=args.database)
    set_settings(settings)
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as s:
        conn = Connection(name="bench", system="gusto", account=COMPANY, status="connected",
                          settings={"webhook_status": "verified"})
        repo.write_credentials(conn, runtime.vault(), {"webhook_verification_token": TOKEN})
        s.add(conn)

    only = set(args.only.split(",")) | {"verify+enqueue"} if args.only else None
    runs = RUNS + ([("relay NORMAL", "webapp:create_app()", {"WEBHOOK_ENQUEUE": "relay",
                                                             "SQLITE_SYNCHRONOUS": "NORMAL"})]
                   if args.sqlite_normal and settings.database_url.startswith("sqlite") else [])
    runs = [r for r in runs if only is None or r[0] in only]
    results: dict[str, list[dict]] = {name: [] for name, _, _ in runs}
    try:
        for _ in range(args.rounds):
            for name, target, extra in runs:
                results[name].append(run_one(name, target, extra, settings, broker, args))
    finally:
        redis.terminate()
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in results.items()}
    loads = [r["load"] for rs in results.values() for r in rs]
    kind = args.worker_class + (f" x{args.threads} threads" if args.worker_class == "gthread" else "")
    print(f"webhook ingest, gunicorn {kind}, {args.workers} workers, {args.clients} clients x {args.seconds:.0f} s, "
          f"{args.rounds} round(s) (medians), {os.cpu_count()} CPUs, store {settings.database_url.split(':')[0]}; "
          f"1-min load {min(loads):.2f}-{max(loads):.2f}; ratio: median over the rounds of req/s against "
          f"verify+enqueue in the same round")
    print(f"{'endpoint':16} {'req/s':>7} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms/req':>10} "
          f"{'+servers':>8} {'errors':>6} {'lag':>6} {'drain s':>7}")
    for name, r in med.items():
        ratio = statistics.median(a["rps"] / b["rps"] for a, b in zip(results[name], results["verify+enqueue"]))
        print(f"{name:16} {r['rps']:7.0f} {ratio:6.2f} {r['p50']:7.2f} {r['p99']:7.2f} "
              f"{r['cpu']:10.2f} {r['svc']:8.2f} {r['errors']:6.0f} {r['lag']:6.0f} {r['drain']:7.2f}")


if __name__ == "__main__":
    main()
