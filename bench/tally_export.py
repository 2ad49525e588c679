"""Parsing a big TallyPrime Day Book export: xmltodict streaming beside our lxml reader.

Builds a Day Book export of about ``--mb`` MB (UTF-8) from the TallyPrime emulator
(``sandbox.tallyprime.seed`` vouchers, 2–5 ledger lines each) into a temporary directory
(deleted afterwards; nothing lands in git), then parses it, in the same run, with:

  xmltodict   ``xmltodict.parse(file, item_depth=6, item_callback=...)`` (expat, streaming,
              entity declarations refused) + ``replies.parse_voucher`` per voucher → dicts
              with ``Decimal`` amounts: the baseline (ratio 1.00)
  whole doc   what ``TallyClient.day_book`` does today: the reply read whole, decoded,
              sanitised, ``xmltodict.parse`` into one tree, then ``replies.parse_day_book``
  ours        ``exports.iter_export_vouchers(file)``: SanitizingStream (decode, strip
              ``&#4;``) + lxml ``iterparse`` (entities off) → ``ExportedVoucher``
  ours utf16  the same export as Tally's UTF-16LE reply (BOM) with ``&#4;`` before every
              narration and ledger name (``ctrl_refs`` fault), which expat cannot parse at all

Each parser runs in a fresh subprocess per repetition (``--repeat``, default 3, interleaved),
so peak memory is comparable: ``peak MB`` is the peak RSS (``VmHWM``) after parsing minus
the peak after imports (the file is read as a stream by both; neither holds it whole). Throughput is
the best repetition: MB/s of the file's bytes, and vouchers/s (the fair unit across the
UTF-8 and UTF-16 files). Usage: ``python bench/tally_export.py [--mb 20] [--repeat 3]``.

``--poll`` measures the purchase poll instead (``exports.poll_purchases`` against the emulator
over HTTP, both in this process): a company with ``--vouchers`` (default 100,000) purchase
vouchers is read once in full (the first poll, as a full re-export would), then
``--changes`` (default 50) of them are altered and cancelled in Tally and the next poll runs
from the stored state. Printed per run: requests, reply bytes, wall seconds (emulator and
client share the process, so the emulator's TDL scan of the whole books is inside the
seconds; ``client s`` excludes the emulator's own serving time), and full/poll ratios. Usage: ``python bench/tally_export.py --poll [--vouchers
100000] [--changes 50]``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMPANY = "Demo Trading Co"


def build(directory: Path, target_mb: float) -> dict:
    """Write ``daybook-utf8.xml`` and ``daybook-utf16-ctrl.xml``; returns their facts."""
    from connector_tasks.connectors.tallyprime import envelopes
    from sandbox.tallyprime.app import TallyEmulator
    from sandbox.tallyprime.seed import seed_vouchers

    def day_book(emulator, encoding):
        xml = envelopes.day_book_export(COMPANY, "20240401", "20250331")
        body, ctype = envelopes.encode_request(xml, encoding)
        return emulator.handle(body, ctype)[0]

    probe = TallyEmulator()
    seed_vouchers(probe, 1000)
    per_voucher = len(day_book(probe, "utf-8")) / 1000
    count = max(1, int(target_mb * 1e6 / per_voucher))
    emulator = TallyEmulator()
    seed_vouchers(emulator, count)
    utf8 = directory / "daybook-utf8.xml"
    utf8.write_bytes(day_book(emulator, "utf-8"))
    emulator.set_faults({"ctrl_refs": "ref"})
    utf16 = directory / "daybook-utf16-ctrl.xml"
    utf16.write_bytes(day_book(emulator, "utf-16"))
    return {"vouchers": count, "utf8": str(utf8), "utf16": str(utf16),
            "utf8_bytes": utf8.stat().st_size, "utf16_bytes": utf16.stat().st_size}


def peak_rss_kb() -> int:
    """This process's peak RSS in KiB: ``VmHWM`` (Linux; starts afresh at exec, while
    ``ru_maxrss`` keeps the parent's high-water mark across fork+exec), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker(parser: str, path: str) -> None:
    """Parse ``path`` with ``parser``; print one JSON line (runs in its own process)."""
    from connector_tasks.connectors.tallyprime import exports, replies
    import xmltodict

    count = 0
    base_kb = peak_rss_kb()
    started = time.perf_counter()
    with open(path, "rb") as fh:
        if parser == "whole":
            count = len(replies.parse_day_book(replies.decode_body(fh.read(), None)))
        elif parser == "xmltodict":
            def on_item(path, item):
                nonlocal count
                if path[-1][0] == "VOUCHER":    # depth 6 also holds REQUESTDESC's variables
                    replies.parse_voucher(item)
                    count += 1
                return True
            xmltodict.parse(fh, item_depth=6, item_callback=on_item, disable_entities=True,
                            expat=replies._GuardedExpat)
        else:
            ctype = "text/xml; charset=utf-16" if "utf16" in path else "text/xml; charset=utf-8"
            for _v in exports.iter_export_vouchers(fh, ctype):
                count += 1
    seconds = time.perf_counter() - started
    peak_kb = peak_rss_kb()
    print(json.dumps({"count": count, "seconds": seconds, "base_kb": base_kb, "peak_kb": peak_kb}))


def run_one(parser: str, path: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", parser, path], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def poll_bench(vouchers: int, changes: int) -> None:
    """Full read vs incremental poll of a company's purchases (see the module doc)."""
    from connector_tasks.connectors.tallyprime import TallyClient, exports
    from sandbox.tallyprime.emulator import TallyEmulator
    from sandbox.tallyprime.inventory import alter_invoice_voucher, cancel_voucher
    from sandbox.tallyprime.seed import seed_purchases
    from sandbox.tallyprime.server import serve

    from connector_tasks.connectors.tallyprime import client as client_module

    received = [0]
    original = client_module.bounded_chunks   # every reply body the client reads goes through it

    def counting(*a, **kw):
        for chunk in original(*a, **kw):
            received[0] += len(chunk)
            yield chunk

    client_module.bounded_chunks = counting
    served = [0.0]
    handle = TallyEmulator.handle

    def timed(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return handle(self, *a, **kw)
        finally:
            served[0] += time.perf_counter() - t0

    TallyEmulator.handle = timed
    server, _thread, port = serve(env="test")
    try:
        emulator = server.app.extensions["tally_emulator"]
        started = time.perf_counter()
        seed_purchases(emulator, vouchers, stock_items=500)
        print(f"seeded {vouchers} purchase vouchers in {time.perf_counter() - started:.1f} s")
        client = TallyClient(f"http://127.0.0.1:{port}", COMPANY)
        parts: dict = {}

        def run(state):
            received[0], served[0] = 0, 0.0
            t0 = time.perf_counter()
            result = exports.poll_purchases(client, state, part_numbers=parts)
            wall = time.perf_counter() - t0
            return result, wall, received[0], wall - served[0]

        full, full_s, full_b, full_c = run(None)
        with emulator.data_lock:
            company = next(iter(emulator.companies.values()))
            step = max(1, len(company.vouchers) // max(1, changes))
            for k, v in enumerate(company.vouchers[::step][:changes]):
                if k % 2:
                    cancel_voucher(company, v["guid"])
                else:
                    alter_invoice_voucher(company, v["guid"], {"narration": f"edited {k}"})
        poll, poll_s, poll_b, poll_c = run(full.state)
        assert len(full.vouchers) == vouchers and len(poll.vouchers) == changes
        print("seconds = wall time; client s = wall time minus the emulator's time serving")
        print(f"{'':<16}{'vouchers':>9}{'requests':>9}{'MB':>9}{'seconds':>9}{'client s':>9}")
        print(f"{'full read':<16}{len(full.vouchers):>9}{full.requests:>9}{full_b / 1e6:>9.2f}"
              f"{full_s:>9.2f}{full_c:>9.2f}")
        print(f"{'poll':<16}{len(poll.vouchers):>9}{poll.requests:>9}{poll_b / 1e6:>9.3f}"
              f"{poll_s:>9.2f}{poll_c:>9.3f}")
        print(f"{'ratio full/poll':<16}{'':>9}{full.requests / poll.requests:>9.1f}"
              f"{full_b / max(1, poll_b):>9.0f}{full_s / poll_s:>9.1f}{full_c / max(poll_c, 1e-6):>9.0f}")
    finally:
        client_module.bounded_chunks = original
        TallyEmulator.handle = handle
        server.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--poll", action="store_true", help="benchmark the purchase poll")
    ap.add_argument("--vouchers", type=int, default=100_000)
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--worker", nargs=2, metavar=("PARSER", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    if args.poll:
        poll_bench(args.vouchers, args.changes)
        return
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tally-bench-") as tmp:
        facts = build(Path(tmp), args.mb)
        rows = [("xmltodict", facts["utf8"], facts["utf8_bytes"]),
                ("whole doc", facts["utf8"], facts["utf8_bytes"]),
                ("ours", facts["utf8"], facts["utf8_bytes"]),
                ("ours utf16", facts["utf16"], facts["utf16_bytes"])]
        results: dict[str, list[dict]] = {name: [] for name, _, _ in rows}
        for _ in range(args.repeat):
            for name, path, _size in rows:
                r = run_one({"xmltodict": "xmltodict", "whole doc": "whole"}.get(name, "ours"), path)
                assert r["count"] == facts["vouchers"], (name, r["count"], facts["vouchers"])
                results[name].append(r)
    load_after = os.getloadavg()
    print(f"Day Book export: {facts['vouchers']} vouchers, UTF-8 {facts['utf8_bytes'] / 1e6:.1f} MB, "
          f"UTF-16 with &#4; {facts['utf16_bytes'] / 1e6:.1f} MB; best of {args.repeat}, "
          f"one subprocess per run")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"{'parser':<12}{'MB/s':>8}{'vouchers/s':>12}{'ratio':>8}{'peak MB':>9}{'RSS MB':>8}")
    base_vps = None
    for name, _path, size in rows:
        best = min(r["seconds"] for r in results[name])
        vps = facts["vouchers"] / best
        base_vps = base_vps or vps
        peak = statistics.median((r["peak_kb"] - r["base_kb"]) / 1024 for r in results[name])
        rss = statistics.median(r["peak_kb"] / 1024 for r in results[name])
        print(f"{name:<12}{size / 1e6 / best:>8.1f}{vps:>12.0f}{vps / base_vps:>8.2f}{peak:>9.1f}{rss:>8.1f}")


if __name__ == "__main__":
    main()
