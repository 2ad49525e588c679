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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--worker", nargs=2, metavar=("PARSER", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
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
