"""AlterID-watermarked, date-batched, streamed voucher exports against the TallyPrime
emulator over real HTTP (https://help.tallysolutions.com/pre-requisites-for-integrations/; https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/ "Change tracking"; https://github.com/dhananjay1405/tally-database-loader processTdlOutputManipulation)."""
import datetime as dt
from decimal import Decimal

import pytest
import requests

from connector_tasks.connectors.tallyprime import CompanyNotLoadedError, TallyClient, exports
from sandbox.tallyprime.seed import touch_vouchers

COMPANY = "Demo Trading Co"
FROM, TO = dt.date(2024, 4, 1), dt.date(2025, 3, 31)


def changed(tally, since, **kw):
    kw.setdefault("from_date", FROM)
    kw.setdefault("to_date", TO)
    run = exports.iter_changed_vouchers(tally.url, COMPANY, since_alter_id=since, **kw)
    return run, list(run)


def test_company_alter_ids_follow_the_books(tally):
    before = exports.company_alter_ids(tally.url, COMPANY)
    assert before["voucher"] == 0 and before["master"] > 0
    seeded = tally.seed(count=50)
    after = exports.company_alter_ids(TallyClient(tally.url, COMPANY, encoding="utf-16"))
    assert after == {"master": seeded["first_alter_id"] - 1, "voucher": seeded["last_alter_id"]}
    tally.fault(unload_company=COMPANY)
    with pytest.raises(CompanyNotLoadedError):
        exports.company_alter_ids(tally.url, COMPANY)


def test_only_vouchers_altered_after_the_watermark_come_back(tally):
    tally.seed(count=300)
    mark = exports.company_alter_ids(tally.url, COMPANY)["voucher"]
    ids = [f"seed-0-{i}" for i in (3, 77, 150, 151, 299)]
    new_ids = touch_vouchers(tally.emulator, ids, narration="edited")
    run, got = changed(tally, mark, batch_days=30)
    assert sorted(v.remote_id for v in got) == sorted(ids)
    assert all(v.narration == "edited" and v.alter_id > mark for v in got)
    assert run.watermark == run.max_alter_id == max(new_ids)
    # the next sync from the stored watermark: one company read, no export at all
    before = tally.emulator.request_count
    run2, got2 = changed(tally, run.watermark)
    assert got2 == [] and run2.requests == 1 and tally.emulator.request_count == before + 1
    assert run2.watermark == run.watermark


def test_date_batches_return_every_voucher_exactly_once(tally):
    seeded = tally.seed(count=600, days=365, seed=7)
    run, got = changed(tally, 0, batch_days=10)
    ids = [v.remote_id for v in got]
    assert len(ids) == 600 and set(ids) == {f"seed-7-{i}" for i in range(600)}
    assert len(run.batches) == 37 and run.requests == 38          # 37 windows + AltVchId
    assert run.batches[0] == (FROM, FROM + dt.timedelta(days=9)) and run.batches[-1][1] == TO
    for (s, e), (s2, _e2) in zip(run.batches, run.batches[1:]):
        assert e + dt.timedelta(days=1) == s2
    window = [next(i for i, (s, e) in enumerate(run.batches) if s <= v.date <= e) for v in got]
    assert window == sorted(window)                                # window after window
    assert run.watermark == run.max_alter_id == seeded["last_alter_id"] == max(v.alter_id for v in got)
    assert all(sum(e.amount for e in v.ledger_entries) == Decimal(0) for v in got)
    assert all(isinstance(e.amount, Decimal) for v in got for e in v.ledger_entries)


def test_windows_narrow_to_the_per_request_cap(tally):
    tally.seed(count=730, days=365)                                # ~2 a day
    run, got = changed(tally, 0, batch_days=60, max_per_request=25)
    assert sorted(v.remote_id for v in got) == sorted(f"seed-0-{i}" for i in range(730))
    spans = [(e - s).days + 1 for s, e in run.batches]
    assert spans[0] == 60 and max(spans[1:]) < 20                  # 120 in the first, then ~10 days
    assert run.count == 730


def test_alteration_during_the_sync_is_not_lost(tally):
    tally.seed(count=200, days=100)
    run = exports.iter_changed_vouchers(tally.url, COMPANY, since_alter_id=0, from_date=FROM,
                                        to_date=FROM + dt.timedelta(days=99), batch_days=50)
    it = iter(run)
    first = next(it)                                               # first window is being read
    snapshot = run.company_alter_id
    early = next(v for v in tally.vouchers() if v["date"] <= "20240405")["remote_id"]
    late = next(v for v in tally.vouchers() if v["date"] >= "20240601")["remote_id"]
    touched = touch_vouchers(tally.emulator, [early, late])        # one read, one still ahead
    rest = [first] + list(it)
    assert len(rest) == 200
    assert run.max_alter_id == max(touched) and run.watermark == snapshot < min(touched)
    _run2, again = changed(tally, run.watermark, to_date=FROM + dt.timedelta(days=99))
    assert {v.remote_id for v in again} == {early, late}


@pytest.mark.parametrize("mode, encoding", [("ref", "utf-16"), ("raw", "utf-8"), ("ref", "utf-8")])
def test_control_characters_in_narrations_are_sanitised(tally, mode, encoding):
    tally.seed(count=40)
    tally.fault(ctrl_refs=mode)
    client = TallyClient(tally.url, COMPANY, encoding=encoding)
    raw = requests.post(tally.url, data=exports.changed_vouchers_export(COMPANY, 0, FROM, TO).encode(),
                        headers={"Content-Type": "text/xml;charset=utf-8"}, timeout=10).text
    assert ("&#4;" if mode == "ref" else "\x04") in raw              # the emulator emits it
    _run, got = changed(tally, 0, batch_days=400) if encoding == "utf-8" else (None, list(
        exports.iter_changed_vouchers(client, since_alter_id=0, from_date=FROM, to_date=TO)))
    assert len(got) == 40
    assert all(v.narration.startswith("Seeded journal") for v in got)
    assert all("\x04" not in e.ledger and e.ledger for v in got for e in v.ledger_entries)


def test_changed_masters_since_watermark(tally):
    mark = exports.company_alter_ids(tally.url, COMPANY)["master"]
    tally.seed(count=1)                                            # creates the seed ledgers
    got = exports.iter_changed_masters(tally.url, COMPANY, "Ledger", since_alter_id=mark)
    ledgers = list(got)
    assert {m.name for m in ledgers} >= {"HDFC Bank", "Acme Traders", "Output GST"}
    assert "Cash" not in {m.name for m in ledgers}                 # predefined, before the mark
    assert all(m.alter_id > mark for m in ledgers) and got.max_alter_id == max(m.alter_id for m in ledgers)
    every = {m.name: m for m in exports.iter_changed_masters(tally.url, COMPANY, "Ledger", since_alter_id=0)}
    assert every["Profit & Loss A/c"].fields["PARENT"] == "Primary"   # "&#4; Primary" cleaned


def test_company_not_loaded_mid_export_is_transient(tally):
    tally.seed(count=10)
    tally.fault(unload_company=COMPANY)
    with pytest.raises(CompanyNotLoadedError):
        changed(tally, 0, check_company=False)
