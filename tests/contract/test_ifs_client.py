"""The IFS Cloud connector (connector_tasks/connectors/ifs_cloud) over real HTTP against the IFS
emulator (sandbox/ifs_cloud): IAM tokens, OData literals and keys, ETags, IFS error bodies, the
short retries, both voucher routes (exactly once, checks before any write) — plus unit tests of
split_by_company, the key reference and the JSON writer."""
from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
import requests

from connector_tasks.connectors.ifs_cloud.adapter import IfsLedgerTarget, build_target, journal_rows, split_by_company
from connector_tasks.connectors.ifs_cloud.client import (
    IfsClient, Projections, dumps, entity_path, enum_literal, key_predicate, literal,
)
from connector_tasks.connectors.ifs_cloud.mapping import (
    CostCentres, IfsAccount, resolve_accounts, resolve_cost_centres,
)
from connector_tasks.connectors.ifs_cloud.vouchers import (
    PostingRow, check_rows, parse_voucher_id, reference_of, row_text, voucher_id, voucher_route,
)
from connector_tasks.core.errors import (
    AuthError, ConfigurationError, ConflictError, MappingError, RateLimitedError, RejectedError,
    TransientApiError,
)
from connector_tasks.domain.model import CostAllocation, JournalEntry, JournalLine, LedgerMaster
from sandbox.ifs_cloud.kit import contract_seed
from sandbox.ifs_cloud.server import serve

YEAR = dt.date.today().year
OPEN_DATE = dt.date(YEAR, 3, 31)
CLOSED_DATE = dt.date(YEAR - 1, 1, 15)        # seed: previous year period 1 is Closed
ROUTES = ["external", "assistant"]
D = Decimal


class Env:
    """A running emulator and helpers to build clients and look at what it saw."""

    def __init__(self, config: dict | None = None):
        self.server, self.base = serve("127.0.0.1", 0, {"seed": contract_seed(), **(config or {})}, env="test")
        self.world = self.server.app.extensions["ifs_cloud"]

    def client(self, **kw) -> IfsClient:
        args = {"client_id": "ml-connector", "client_secret": "ifs-demo-secret", "namespace": "ifsdemo",
                "retry_initial": 0.05, **kw}
        return IfsClient(self.base, **args)

    def admin(self, what: str, body=None) -> dict:
        r = requests.post(f"{self.base}/_sandbox/{what}", json=body, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def fault(self, *specs: dict) -> None:
        self.admin("faults", list(specs))

    def log(self) -> list[dict]:
        return requests.get(f"{self.base}/_sandbox/requests", timeout=5).json()

    def clear_log(self) -> None:
        requests.delete(f"{self.base}/_sandbox/requests", timeout=5)

    def counters(self) -> dict:
        return requests.get(f"{self.base}/_sandbox/state", timeout=5).json()["counters"]

    def table(self, name: str) -> list[dict]:
        return requests.get(f"{self.base}/_sandbox/state", timeout=5).json()["tables"].get(name, [])

    def writes(self) -> list[dict]:
        return [e for e in self.log() if e["method"] != "GET" and not e["path"].startswith("/auth/")]

    def calls(self, fragment: str, method: str | None = None) -> list[dict]:
        return [e for e in self.log() if fragment in e["path"] and (method is None or e["method"] == method)]


@pytest.fixture
def ifs():
    envs: list[Env] = []

    def start(config: dict | None = None) -> Env:
        envs.append(Env(config))
        return envs[-1]

    yield start
    for env in envs:
        env.server.shutdown()


def payroll_entry(key: str, *, date: dt.date = OPEN_DATE, allocations=(), net: str = "812.34") -> JournalEntry:
    gross = D("1000.00")
    return JournalEntry(key=key, date=date, narration=f"Gusto payroll {key}", source_ref=key, lines=(
        JournalLine("Salaries & Wages", "gross_wages", debit=gross, allocations=tuple(allocations)),
        JournalLine("Salaries Payable", "net_pay", credit=D(net)),
        JournalLine("Payroll Taxes Payable", "payroll_taxes", credit=gross - D("812.34"))))


def target(env: Env, route: str, **kw) -> IfsLedgerTarget:
    return build_target(env.client(), "10", route=route, **kw)


# ---------------------------------------------------------------------------------------- IAM tokens
def test_token_is_cached_then_renewed_ahead_of_expiry(ifs):
    env = ifs({"token_ttl": 3})
    client = env.client(token_margin=2)                # a 3 s token counts as expired 1 s after issue
    client.get_set("CompanyHandling", "CompanySet")
    client.get_set("CompanyHandling", "CompanySet")
    assert env.counters()["token_grants"] == 1
    time.sleep(1.2)
    client.get_set("CompanyHandling", "CompanySet")
    counters = env.counters()
    assert counters["token_grants"] == 2 and counters["unauthorized"] == 0      # renewed before IFS said 401
    grant = env.calls("/auth/realms/ifsdemo/protocol/openid-connect/token", "POST")[0]
    assert "'grant_type': 'client_credentials'" in grant["body"]
    assert "'scope': 'openid microprofile-jwt'" in grant["body"]
    assert client.token_store.load().refresh_token is None                       # not kept: never used


def test_token_is_renewed_once_after_a_401(ifs):
    env = ifs()
    client = env.client()
    client.get_set("CompanyHandling", "CompanySet")
    env.fault({"kind": "expire_tokens"})
    assert [c["Company"] for c in client.get_set("CompanyHandling", "CompanySet")] == ["10", "20"]
    counters = env.counters()
    assert counters["unauthorized"] == 1 and counters["token_grants"] == 2


def test_refused_client_is_an_auth_error_and_a_wrong_namespace_a_configuration_error(ifs):
    env = ifs()
    with pytest.raises(AuthError) as info:
        env.client(client_secret="wrong").get_set("CompanyHandling", "CompanySet")
    assert info.value.status == 401 and info.value.ifs_code == "invalid_client"
    assert "Invalid client or Invalid client credentials" in str(info.value)
    assert env.calls("/main/") == []                                            # no projection call went out
    with pytest.raises(ConfigurationError, match="no realm 'nowhere'"):
        env.client(namespace="nowhere").get_set("CompanyHandling", "CompanySet")


# ---------------------------------------------------------------------------------------- literals, keys
def test_literals_keys_and_paths():
    assert literal("O'Neil") == "'O''Neil'" and literal(D("10.50")) == "10.50" and literal(7) == "7"
    assert literal(dt.date(2026, 3, 31)) == "2026-03-31" and literal(True) == "true" and literal(None) == "null"
    with pytest.raises(TypeError):
        literal(1.5)
    assert key_predicate({"Company": "10", "VoucherNo": 1}) == "Company='10',VoucherNo=1"
    assert key_predicate({"CustomerId": "O'Neil #1"}) == "CustomerId='O''Neil%20%231'"
    assert entity_path("AccountingYearSet", {"Company": "10", "AccountingYear": 2026},
                       ("AccYearDetailArray", {"LedgerId": "00"}), ("AccPerDetailArray", None)) == \
        "AccountingYearSet(Company='10',AccountingYear=2026)/AccYearDetailArray(LedgerId='00')/AccPerDetailArray"
    assert enum_literal("AccountingPeriodsHandling", "AccYearPerStatus", "Open") == \
        "IfsApp.AccountingPeriodsHandling.AccYearPerStatus'Open'"


def test_a_key_with_quotes_and_reserved_characters_reaches_its_entity(ifs):
    env = ifs()
    env.admin("seed", {"customers": [{"CustomerId": "O'NEIL #7/8", "Name": "Quoted Key"}]})
    found = env.client().get_entity("CustomerHandling", "CustomerInfoSet", {"CustomerId": "O'NEIL #7/8"})
    assert found["Name"] == "Quoted Key" and found["@odata.etag"].startswith('W/"')


def test_enum_filters_must_be_fully_qualified(ifs):
    env = ifs()
    client = env.client()
    path = entity_path("AccountingYearSet", {"Company": "10", "AccountingYear": YEAR - 1},
                       ("AccYearDetailArray", {"LedgerId": "00"}), ("AccPerDetailArray", None))
    closed = client.get_set("AccountingPeriodsHandling", path,
                            filter="PeriodStatus eq " + enum_literal("AccountingPeriodsHandling", "AccYearPerStatus",
                                                                     "Closed"))
    assert [(p["AccountingPeriod"], p["PeriodStatus"]) for p in closed] == [(1, "Closed")]
    with pytest.raises(RejectedError) as info:
        client.get_set("AccountingPeriodsHandling", path, filter="PeriodStatus eq 'Closed'")
    assert info.value.status == 400 and "AccYearPerStatus" in info.value.lines[0]


def test_get_set_query_options_and_exact_decimals(ifs):
    env = ifs()
    client = env.client()
    accounts = client.get_set("AccountsHandling", "AccountSet", filter="Company eq '10' and startswith(Account,'6')",
                              select=["Account", "Description"], orderby="Account desc", top=2, skip=1)
    assert [a["Account"] for a in accounts] == ["6200", "6100"]
    assert dumps({"a": D("0.10"), "b": [D("1234567890123.45"), None, True], "d": dt.date(2026, 1, 2)}) == \
        '{"a":0.10,"b":[1234567890123.45,null,true],"d":"2026-01-02"}'
    with pytest.raises(TypeError):
        dumps({"a": 0.1})


def test_projection_names_and_tier_are_configuration(ifs):
    env = ifs()
    client = env.client(projections=Projections.from_settings({"tier": "int"}))
    assert client.service_url("CompanyHandling").endswith("/int/ifsapplications/projection/v1/CompanyHandling.svc")
    assert len(client.get_set("CompanyHandling", "CompanySet")) == 2
    with pytest.raises(ConfigurationError, match="voucher_handling"):
        Projections.from_settings({"voucher_handling": "X"})
    with pytest.raises(ConfigurationError):
        voucher_route(client, "batch")


# ---------------------------------------------------------------------------------------- ETags
def test_stale_etag_412_rereads_the_entity_and_the_update_goes_through(ifs):
    env = ifs()
    client = env.client()
    keys = {"CustomerId": "1001"}
    stale = client.get_entity("CustomerHandling", "CustomerInfoSet", keys)["@odata.etag"]
    env.fault({"kind": "bump", "projection": "CustomerHandling", "path": "CustomerInfoSet(CustomerId='1001')"})
    new_tag = client.patch("CustomerHandling", "CustomerInfoSet", keys, {"Name": "Renamed"}, etag=stale)
    assert new_tag and new_tag != stale
    assert client.get_entity("CustomerHandling", "CustomerInfoSet", keys)["Name"] == "Renamed"
    patches = env.calls("CustomerInfoSet", "PATCH")
    assert [(p["status"], p["if_match"] == stale) for p in patches] == [(412, True), (204, False)]
    client.patch("CustomerHandling", "CustomerInfoSet", keys, {"Name": "Read first"})   # no ETag given: read
    assert all(p["if_match"] for p in env.calls("CustomerInfoSet", "PATCH"))           # never an upsert


def test_a_second_412_is_a_conflict(ifs, monkeypatch):
    env = ifs()
    client = env.client()
    monkeypatch.setattr(client, "_etag", lambda *a: 'W/"c3RhbGU6MjAwMDAxMDEwMDAwMDA="')
    with pytest.raises(ConflictError) as info:
        client.patch("CustomerHandling", "CustomerInfoSet", {"CustomerId": "1001"}, {"Name": "x"},
                     etag='W/"b2xkOjIwMDAwMTAxMDAwMDAw"')
    assert info.value.status == 412 and info.value.ifs_code == "ODP_PRECONDITION_FAILED"
    assert len(env.calls("CustomerInfoSet", "PATCH")) == 2


# ---------------------------------------------------------------------------------------- retries
def test_mi_modified_error_is_retried_once(ifs):
    env = ifs()
    client = env.client()
    env.fault({"kind": "mi_modified"})
    assert len(client.get_set("CompanyHandling", "CompanySet")) == 2
    env.fault({"kind": "mi_modified", "count": 2})
    with pytest.raises(TransientApiError) as info:
        client.get_set("CompanyHandling", "CompanySet")
    assert info.value.status == 500 and info.value.ifs_code == "MI_MODIFIED_ERROR"
    assert "MI_MODIFIED_ERROR: Service metadata already modified." in info.value.detail
    assert [e["status"] for e in env.calls("CompanySet")] == [500, 200, 500, 500]


def test_mi_modified_23r2_form_waits_its_retry_after_and_a_post_is_resent(ifs):
    env = ifs()
    client = env.client()
    env.fault({"kind": "mi_modified", "style": "23r2", "retry_after": 1, "method": "POST"})
    started = time.monotonic()
    created = client.create("ProjectResourcesHandling", "ProjectResourceSet",
                            {"Company": "10", "ResourceId": "E-0100", "Description": "Mi Modified"})
    assert time.monotonic() - started >= 1.0
    assert created["ResourceId"] == "E-0100"
    assert [e["status"] for e in env.calls("ProjectResourceSet", "POST")] == [503, 201]


def test_429_and_503_are_backed_off_then_succeed(ifs):
    env = ifs()
    seen = []
    client = env.client(on_rate_limited=seen.append)
    env.fault({"kind": "429", "count": 2, "retry_after": 1}, {"kind": "503"})
    started = time.monotonic()
    assert len(client.get_set("CompanyHandling", "CompanySet")) == 2
    assert time.monotonic() - started >= 2.0                                  # Retry-After honoured twice
    assert [e["status"] for e in env.calls("CompanySet")] == [429, 429, 503, 200]
    assert seen == [1.0, 1.0]                                                   # the shared budget is told


def test_a_long_retry_after_goes_to_the_caller(ifs):
    env = ifs()
    client = env.client(retry_max_wait=2.0)
    env.fault({"kind": "429", "retry_after": 30}, {"kind": "503", "retry_after": 40})
    with pytest.raises(RateLimitedError) as info:
        client.get_set("CompanyHandling", "CompanySet")
    assert info.value.retry_after == 30 and info.value.status == 429
    with pytest.raises(RateLimitedError) as info:
        client.get_set("CompanyHandling", "CompanySet")
    assert info.value.retry_after == 40 and info.value.status == 503
    assert len(env.calls("CompanySet")) == 2                                   # nothing retried in the call


def test_a_post_whose_answer_is_lost_is_not_resent(ifs):
    env = ifs()
    client = env.client()
    env.fault({"kind": "drop_response", "method": "POST"})
    with pytest.raises(TransientApiError) as info:
        client.create("ProjectResourcesHandling", "ProjectResourceSet",
                      {"Company": "10", "ResourceId": "E-0101", "Description": "Lost answer"})
    assert info.value.status == 504
    assert [(e["status"], e["processed_status"]) for e in env.calls("ProjectResourceSet", "POST")] == [(504, 201)]
    assert len(env.client().get_set("ProjectResourcesHandling", "ProjectResourceSet",
                                    filter="ResourceId eq 'E-0101'")) == 1


# ---------------------------------------------------------------------------------------- error bodies
def test_ifs_error_bodies_become_the_right_errors_with_ifs_text(ifs):
    env = ifs()
    client = env.client()
    with pytest.raises(RejectedError) as info:
        client.create("VoucherEntryAssistantHandling", "VoucherSet",
                      {"Company": "99", "VoucherType": "M", "VoucherDate": OPEN_DATE.isoformat()})
    err = info.value
    assert err.status == 400 and err.ifs_code == "DATABASE_ERROR"
    assert err.lines[0] == "DATABASE_ERROR: ORA-20111: CompanyFinance.NOTEXIST: Company '99' does not exist."
    assert err.lines[1] == "NOTEXIST: Company '99' does not exist."
    with pytest.raises(RejectedError) as info:
        client.create("CustomerHandling", "CustomerInfoSet", {"Name": "x", "Shoe": 1})
    assert info.value.lines[0] == "ODP_DESERIALIZATION_ERROR: Error while de-serializing contents."
    assert "Shoe" in info.value.lines[1]
    with pytest.raises(RejectedError) as info:
        client.get_entity("AccountsHandling", "AccountSet", {"Company": "10", "Account": "9999"})
    assert info.value.status == 404 and info.value.ifs_code == "ODP_RESOURCE_NOTFOUND"
    assert client.get_entity("AccountsHandling", "AccountSet", {"Company": "10", "Account": "9999"},
                             missing_ok=True) is None
    with pytest.raises(RejectedError) as info:
        client.create("VoucherHandling", "VoucherSet", {"Company": "10"})
    assert info.value.status == 405 and info.value.ifs_code == "ODP_METHOD_NOT_ALLOWED"


# ---------------------------------------------------------------------------------------- references
def test_key_reference_fits_ifs_and_the_text_keeps_the_key():
    ref = reference_of("gusto:payroll:5f0c1d2e-aaaa-bbbb-cccc-0123456789ab:v3")
    assert len(ref) == 20 and ref == ref.upper() and ref.startswith("ML")
    assert ref == reference_of("gusto:payroll:5f0c1d2e-aaaa-bbbb-cccc-0123456789ab:v3")
    assert len({reference_of(f"k-{i}") for i in range(20000)}) == 20000
    text = row_text("gross wages " * 20, "contract-payroll-1234")
    assert len(text) <= 100 and text.endswith("[contract-payroll-1234]")
    long_key = "k" * 150
    assert row_text("x", long_key) == f"x [{reference_of(long_key)}]"
    assert voucher_id("Z", D(2026), 17) == "Z-2026-17" and parse_voucher_id("Z-2026-17") == ("Z", 2026, 17)


def test_rows_are_checked_locally():
    rows = [PostingRow("6000", debit=D("10.00"), code_parts={"B": "100"}), PostingRow("2100", credit=D("9.99"))]
    with pytest.raises(MappingError, match=r"company 10 is unbalanced: Dr 10.00 Cr 9.99 \(difference 0.01\)"):
        check_rows("10", rows)
    with pytest.raises(MappingError, match="exactly one positive side"):
        check_rows("10", [PostingRow("6000", debit=D("1.00"), credit=D("1.00"))])
    with pytest.raises(MappingError, match="not a Decimal in cents"):
        check_rows("10", [PostingRow("6000", debit=D("1.001")), PostingRow("2100", credit=D("1.001"))])


# ---------------------------------------------------------------------------------------- vouchers
@pytest.mark.parametrize("route", ROUTES)
def test_a_balanced_voucher_is_found_by_key_and_a_second_post_creates_nothing(ifs, route):
    env = ifs()
    tgt = target(env, route, cost_centres=resolve_cost_centres({"Ops Team": {"ledger": "200"},
                                                                "Sales Team": {"ledger": "300"}}))
    tgt.ensure_ledgers([LedgerMaster("Salaries & Wages", "x"), LedgerMaster("Salaries Payable", "x"),
                        LedgerMaster("Payroll Taxes Payable", "x")], [("Employees", "Ops Team")])
    key = f"gusto-payroll-{route}-1"
    entry = payroll_entry(key, allocations=[CostAllocation("Employees", "Ops Team", D("600.00")),
                                            CostAllocation("Employees", "Sales Team", D("333.33")),
                                            CostAllocation("Employees", "Nobody Mapped", D("66.66")),
                                            CostAllocation("Employees", "Unallocated", D("0.01"))])
    assert tgt.find_journal(key) is None
    posted = tgt.post_journal(entry)
    vtype, year, number = parse_voucher_id(posted)
    assert (vtype, year) == ({"external": "Z", "assistant": "M"}[route], YEAR)
    assert tgt.find_journal(key) == posted
    assert tgt.post_journal(entry) == posted                                  # asks first: nothing written
    assert env.counters()["vouchers_created"] == 1
    rows = [r for r in env.table("voucher_row") if r["VoucherNo"] == number]
    assert sorted((r["Account"], r.get("CodeB"), str(r["DebetAmount"]), str(r["CreditAmount"])) for r in rows) == [
        ("2100", None, "None", "812.34"), ("2200", None, "None", "187.66"),
        ("6000", "100", "66.67", "None"), ("6000", "200", "600", "None"), ("6000", "300", "333.33", "None")]
    assert {r["ReferenceNumber"] for r in rows} == {reference_of(key)}
    assert all(r["Text"].endswith(f"[{key}]") for r in rows)
    voucher = next(v for v in env.table("voucher") if v["VoucherNo"] == number)
    assert voucher["Balance"] == 0


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", ["closed_period", "no_period", "missing_account", "missing_cost_centre",
                                  "inactive_cost_centre", "inactive_account", "code_part_required",
                                  "missing_company"])
def test_master_data_problems_refuse_naming_them_and_nothing_is_written(ifs, route, case):
    env = ifs()
    kw: dict = {}
    date, company = OPEN_DATE, "10"
    if case == "closed_period":
        date, words = CLOSED_DATE, [f"accounting period {YEAR - 1}-01 of company 10", "is Closed"]
    elif case == "no_period":
        date, words = dt.date(2019, 6, 30), ["no accounting period of company 10", "2019-06-30"]
    elif case == "missing_account":
        kw["account_overrides"] = {"Salaries Payable": {"ledger": "2999"}}
        words = ["account 2999 does not exist in company 10"]
    elif case == "missing_cost_centre":
        kw["cost_centres"] = resolve_cost_centres({"Ops Team": {"ledger": "999"}})
        words = ["code part B value 999 does not exist in company 10"]
    elif case == "inactive_cost_centre":
        kw["cost_centres"] = resolve_cost_centres({"Ops Team": {"ledger": "900"}})
        words = ["code part B value 900 in company 10 is not active"]
    elif case == "inactive_account":
        kw["account_overrides"] = {"Salaries & Wages": {"ledger": "6900"}}
        words = ["account 6900 in company 10 is not active"]
    elif case == "code_part_required":
        kw["account_overrides"] = {"Salaries & Wages": {"ledger": "6000", "cost_centre": False}}
        words = ["account 6000 in company 10 requires code part B"]
    else:
        company, words = "99", ["IFS has no company 99"]
    tgt = build_target(env.client(), company, route=route, **kw)
    entry = payroll_entry(f"bad-{case}", date=date,
                          allocations=[CostAllocation("Employees", "Ops Team", D("1000.00"))])
    env.clear_log()
    with pytest.raises(MappingError) as info:
        tgt.post_journal(entry)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert "nothing was written" in str(info.value)
    assert env.writes() == []                                                   # only reads reached IFS
    assert env.counters()["vouchers_created"] == 0


def test_ensure_ledgers_checks_and_never_creates(ifs):
    env = ifs()
    tgt = target(env, "external", account_overrides={"Benefits Payable": {"ledger": "2999"}},
                 cost_centres=resolve_cost_centres({"Ops Team": {"ledger": "999"}}))
    ledgers = [LedgerMaster("Salaries & Wages", "x"), LedgerMaster("Benefits Payable", "x")]
    with pytest.raises(MappingError) as info:
        tgt.ensure_ledgers(ledgers, [("Employees", "Ops Team")])
    assert "account 2999 does not exist in company 10" in str(info.value)
    assert "code part B value 999 does not exist in company 10" in str(info.value)
    with pytest.raises(MappingError, match="'Travel' is not mapped to an IFS account"):
        tgt.ensure_ledgers([LedgerMaster("Travel", "x")], [])
    assert tgt.ensure_ledgers(ledgers[:1], [("Employees", "Someone")]) == []    # unmapped name -> default 100
    assert env.writes() == []


# ---------------------------------------------------------------------------------------- exactly once
@pytest.mark.parametrize("route,action", [("external", "DoCreateVoucher"), ("assistant", "CreateVoucher")])
def test_a_lost_answer_then_a_retry_that_asks_first_still_makes_one_voucher(ifs, route, action):
    env = ifs()
    tgt = target(env, route)
    entry = payroll_entry(f"lost-answer-{route}")
    env.fault({"kind": "drop_response", "path_contains": action})
    with pytest.raises(TransientApiError):
        tgt.post_journal(entry)
    assert env.counters()["vouchers_created"] == 1                              # IFS did it; we did not hear
    again = tgt.find_journal(entry.key) or tgt.post_journal(entry)
    assert again == tgt.post_journal(entry) == tgt.find_journal(entry.key)
    assert env.counters()["vouchers_created"] == 1
    assert [c["processed_status"] for c in env.calls(action, "POST")] == [204 if route == "external" else 200]


def test_external_route_resumes_a_load_left_half_done(ifs):
    env = ifs()
    tgt = target(env, "external")
    entry = payroll_entry("half-loaded")
    env.fault({"kind": "drop_response", "method": "POST", "path_contains": "ExternalVouchersSet"})
    with pytest.raises(TransientApiError):
        tgt.post_journal(entry)                                                 # first row stored, answer lost
    ref = reference_of(entry.key)
    assert len([r for r in env.table("ext_transaction") if r["LoadId"] == ref]) == 1
    posted = tgt.post_journal(entry)                                            # clears the load, loads again
    rows = [r for r in env.table("ext_transaction") if r["LoadId"] == ref]
    assert len(rows) == 3 and {r["Objstate"] for r in rows} == {"Updated"}
    assert env.counters()["vouchers_created"] == 1 and tgt.find_journal(entry.key) == posted
    # a worker that skips the question cannot make a second voucher under the same LoadId
    route = tgt.vouchers
    with pytest.raises(ConflictError):
        route._write("10", "Z", entry.date, journal_rows(entry, resolve_accounts(
            [l.ledger for l in entry.lines]), CostCentres()), key=entry.key, narration="")
    assert env.counters()["vouchers_created"] == 1


def test_a_refused_external_load_is_reloaded_on_the_next_attempt(ifs):
    env = ifs()
    tgt = target(env, "external")
    entry = payroll_entry("refused-then-fixed")
    env.fault({"kind": "deactivate", "company": "10", "code_part": "A", "value": "2200"})
    route = tgt.vouchers
    rows = journal_rows(entry, resolve_accounts([l.ledger for l in entry.lines]), CostCentres())
    with pytest.raises(RejectedError) as info:                                  # bypass our check: IFS refuses
        route._write("10", "Z", dt.date.today(), rows, key=entry.key, narration="")
    assert "Account 2200" in info.value.lines[0]
    env.fault({"kind": "activate", "company": "10", "code_part": "A", "value": "2200"})
    posted = tgt.post_journal(entry)
    assert tgt.find_journal(entry.key) == posted
    assert len([r for r in env.table("ext_transaction") if r["LoadId"] == reference_of(entry.key)]) == 3


def test_the_unbalanced_entry_is_refused_before_any_request(ifs):
    env = ifs()
    tgt = target(env, "external")
    env.clear_log()
    with pytest.raises(MappingError, match="unbalanced"):
        tgt.post_journal(payroll_entry("unbalanced", net="812.33"))
    assert env.log() == []


# ---------------------------------------------------------------------------------------- split_by_company
def _company_of(name: str) -> str | None:
    return {"Ann": "10", "Bo": "20", "Cy": "20"}.get(name)


def test_split_by_company_balances_each_company_to_the_cent():
    entry = JournalEntry(key="k", date=OPEN_DATE, narration="n", source_ref="s", lines=(
        JournalLine("Salaries & Wages", "gross_wages", debit=D("1000.01"), allocations=(
            CostAllocation("Employees", "Ann", D("400.00")), CostAllocation("Employees", "Bo", D("300.00")),
            CostAllocation("Employees", "Cy", D("300.01")))),
        JournalLine("Salaries Payable", "net_pay", credit=D("1000.01"), allocations=(
            CostAllocation("Employees", "Ann", D("400.00")), CostAllocation("Employees", "Bo", D("600.01"))))))
    parts = split_by_company(entry, _company_of, default_company="10")
    assert sorted(parts) == ["10", "20"]
    assert (parts["10"].total_debit, parts["10"].total_credit) == (D("400.00"), D("400.00"))
    assert (parts["20"].total_debit, parts["20"].total_credit) == (D("600.01"), D("600.01"))
    assert [a.cost_centre for a in parts["20"].lines[0].allocations] == ["Bo", "Cy"]
    assert all(p.key == "k" and p.date == OPEN_DATE for p in parts.values())


def test_split_by_company_puts_unallocated_lines_in_the_default_company_and_refuses_an_imbalance():
    entry = payroll_entry("k", allocations=[CostAllocation("Employees", "Ann", D("250.00")),
                                            CostAllocation("Employees", "Bo", D("750.00"))])
    with pytest.raises(MappingError) as info:
        split_by_company(entry, _company_of, default_company="10")
    message = str(info.value)
    assert "company 10: Dr 250.00 Cr 1000.00 (difference -750.00)" in message
    assert "company 20: Dr 750.00 Cr 0.00 (difference 750.00)" in message
    parts = split_by_company(entry, _company_of, default_company="10", clearing_ledger="Intercompany")
    assert parts["10"].lines[-1] == JournalLine("Intercompany", "intercompany_clearing", debit=D("750.00"))
    assert parts["20"].lines[-1] == JournalLine("Intercompany", "intercompany_clearing", credit=D("750.00"))
    unmapped = payroll_entry("k", allocations=[CostAllocation("Employees", "Nobody", D("1000.00"))])
    assert list(split_by_company(unmapped, _company_of, default_company="10")) == ["10"]


def test_mapping_defaults_and_overrides():
    accounts = resolve_accounts(["Salaries & Wages", "Wages - Bonus", "Salaries Payable"],
                                {"Salaries Payable": {"ledger": "2110", "code_parts": {"c": "PRJ1"}}})
    assert accounts["Salaries & Wages"] == IfsAccount("6000", True)
    assert accounts["Wages - Bonus"] == IfsAccount("6000", True)
    assert accounts["Salaries Payable"] == IfsAccount("2110", False, {"C": "PRJ1"})
    centres = resolve_cost_centres({"Ops": {"ledger": "200"}}, default="300")
    assert (centres.value_of("Ops"), centres.value_of("Other"), centres.value_of("Unallocated")) == ("200", "300", "300")
    with pytest.raises(MappingError, match="code part 'Z'"):
        resolve_accounts(["Salaries Payable"], {"Salaries Payable": {"ledger": "2110", "code_parts": {"Z": "1"}}})
