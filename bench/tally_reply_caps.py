"""Memory and time of the Tally client against hostile replies: a reply of ``--mb`` MB read
with the default-sized cap lifted (what happened before the cap) beside the same reply under a
cap, and a reply dripping one byte a second under a deadline. Each case runs in a fresh process
(peak RSS growth from ``getrusage``); the server is ``tests/security/hostile_tally.py`` in its
own process. Prints the numbers and the ratios uncapped/capped.

    python bench/tally_reply_caps.py                 # 100 MB reply, 8 MiB cap, 3 s deadline
    python bench/tally_reply_caps.py --mb 300 --cap-mib 32
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, resource, sys, time
from connector_tasks.connectors.tallyprime.client import TallyClient
from connector_tasks.core.errors import ExternalApiError
url, cap, deadline = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
try:
    text = TallyClient(url, "ACME", max_reply_bytes=cap, deadline=deadline).post("<ENVELOPE/>")
    outcome = f"read {len(text)} chars"
except ExternalApiError as exc:
    outcome = type(exc).__name__
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - started,
                  "grew_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _case(mode: str, cap: int, deadline: float, env: dict) -> dict:
    port = _free_port()
    log = Path(tempfile.mkdtemp()) / "server.log"
    server = subprocess.Popen([sys.executable, "-m", "tests.security.hostile_tally", str(port), mode, str(log)],
                              cwd=ROOT, env=env, start_new_session=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        out = subprocess.run([sys.executable, "-c", PROBE, f"http://127.0.0.1:{port}", str(cap), str(deadline)],
                             cwd=ROOT, capture_output=True, text=True, timeout=deadline + 600)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100, help="size of the oversized reply (MB)")
    ap.add_argument("--cap-mib", type=int, default=8)
    ap.add_argument("--deadline", type=float, default=3.0)
    args = ap.parse_args()
    env = {**os.environ, "HOSTILE_TALLY_BYTES": str(args.mb * 1024 * 1024)}
    cap = args.cap_mib * 1024 * 1024
    uncapped = _case("huge", args.mb * 1024 * 1024 * 2, 600.0, env)
    capped = _case("huge", cap, 600.0, env)
    drip = _case("drip", cap, args.deadline, env)
    print(f"tally reply caps: {args.mb} MB reply, cap {args.cap_mib} MiB, deadline {args.deadline:g} s, "
          f"{os.cpu_count()} CPUs, 1-min load {os.getloadavg()[0]:.2f}")
    print(f"{'case':28} {'outcome':22} {'seconds':>8} {'RSS growth MiB':>15}")
    for name, r in ((f"{args.mb} MB, cap lifted", uncapped), (f"{args.mb} MB, cap {args.cap_mib} MiB", capped),
                    (f"drip 1 B/s, deadline {args.deadline:g} s", drip)):
        print(f"{name:28} {r['outcome']:22} {r['seconds']:8.2f} {r['grew_mib']:15.1f}")
    print(f"ratio RSS growth uncapped/capped: {uncapped['grew_mib'] / max(capped['grew_mib'], 0.1):.1f}; "
          f"time uncapped/capped: {uncapped['seconds'] / max(capped['seconds'], 0.001):.1f}")


if __name__ == "__main__":
    main()
