"""Webhook ingest under gunicorn: our endpoint beside naive ones, in the same run.

Endpoints (each served by gunicorn with sync workers, one after the other, same load):
  verify           verify the HMAC, answer                       (no durability)
  verify+enqueue   verify, publish a Celery task, answer         (a crash loses the event)
  ours inline      verify, store + commit, answer after publish  (WEBHOOK_ENQUEUE=inline)
  ours relay       verify, store + commit, answer; a relay publishes in batches (=relay)

Load: C client processes, each sending unique, correctly signed events back to back for D
seconds. Prints requests/s, p50 and p99 latency, and each figure as a ratio of
verify+enqueue's. Usage: ``python bench/webhook_ingest.py [--seconds 8] [--clients 4]
[--workers 4]``. Needs nothing running (starts its own redis-server and SQLite store).
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


def wait_port(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--database", help="store URL (default: a fresh SQLite file); e.g. "
                    "postgresql+psycopg://postgres@127.0.0.1:5432/<empty database>")
    args = ap.parse_args()

    from config.redis_server import redis_binary
    from config.settings import Settings, child_environment, set_settings
    from connector_tasks import runtime
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope, upgrade
    from connector_tasks.store.models import Connection

    tmp = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    rport = free_port()
    redis = subprocess.Popen([str(redis_binary()), "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL)
    broker = f"redis://127.0.0.1:{rport}/0"
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

    runs = [("verify", "bench.naive_app:verify_app()", {}),
            ("verify+enqueue", "bench.naive_app:enqueue_app()", {}),
            ("ours inline", "webapp:create_app()", {"WEBHOOK_ENQUEUE": "inline"}),
            ("ours relay", "webapp:create_app()", {"WEBHOOK_ENQUEUE": "relay"})]
    results = {}
    try:
        for name, target, extra in runs:
            port = free_port()
            env = child_environment(settings, BENCH_TOKEN=TOKEN, BENCH_BROKER=broker, PYTHONPATH=str(ROOT), **extra)
            procs = [subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b",
                                       f"127.0.0.1:{port}", "--log-level", "warning", target],
                                      env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
            if extra.get("WEBHOOK_ENQUEUE") == "relay":
                procs.append(subprocess.Popen([sys.executable, "-m", "connector_tasks.cli", "relay"], env=env,
                                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            try:
                wait_port(port)
                load(port, 1.0, args.clients)  # warm-up
                results[name] = load(port, args.seconds, args.clients)
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(10)
    finally:
        redis.terminate()
    base = results["verify+enqueue"]
    print(f"webhook ingest, gunicorn sync x{args.workers}, {args.clients} clients x {args.seconds:.0f} s, "
          f"{os.cpu_count()} CPUs, store {settings.database_url.split(':')[0]}; ratios against verify+enqueue")
    print(f"{'endpoint':16} {'req/s':>8} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in results.items():
        print(f"{name:16} {r['rps']:8.0f} {r['rps'] / base['rps']:6.2f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:7d}")


if __name__ == "__main__":
    main()
