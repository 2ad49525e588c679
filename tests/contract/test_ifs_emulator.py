"""The IFS Cloud emulator (sandbox/ifs_cloud) over real HTTP: IAM tokens, OData query options,
both voucher routes, VoucherHandling, ETags/upserts, faults, customers and project resources.

Facts behind the expectations: https://docs.ifs.com/techdocs/ "OData Provider" and sandbox/ifs_cloud/sources.py."""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest
import requests

from sandbox import ProductionRefused
from sandbox.ifs_cloud.server import serve

NS = "ifsdemo"
CLIENT, SECRET = "ml-connector", "ifs-demo-secret"
YEAR = dt.date.today().year
OPEN_DATE = f"{YEAR}-03-31"
CLOSED_DATE = f"{YEAR - 1}-01-15"          # seed: previous year period 1 is Closed
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


class Ifs:
    """A running emulator plus a token and small request helpers."""

    def __init__(self, server, base: str):
        self.server, self.base = server, base
        self.root = f"{base}/main/ifsapplications/projection/v1"
        self.token_url = f"{base}/auth/realms/{NS}/protocol/openid-connect/token"
        self.world = server.app.extensions["ifs_cloud"]
        self.token = self.new_token()["access_token"]

    def new_token(self, client=CLIENT, secret=SECRET, **extra) -> dict:
        r = requests.post(self.token_url, data={"grant_type": "client_credentials", "client_id": client,
                                                "client_secret": secret, "scope": "openid microprofile-jwt",
                                                **extra}, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def headers(self, extra: dict | None = None) -> dict:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, path: str, params: dict | None = None, **kw) -> requests.Response:
        return requests.get(f"{self.root}/{path}", params=params, headers=self.headers(kw.pop("headers", None)),
                            timeout=5, **kw)

    def post(self, path: str, body: dict | None = None, headers: dict | None = None) -> requests.Response:
        return requests.post(f"{self.root}/{path}", json=body if body is not None else {},
                             headers=self.headers(headers), timeout=5)

    def patch(self, path: str, body: dict, headers: dict | None = None) -> requests.Response:
        return requests.patch(f"{self.root}/{path}", json=body, headers=self.headers(headers), timeout=5)

    def admin(self, what: str, body=None) -> dict:
        r = requests.post(f"{self.base}/_sandbox/{what}", json=body, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def ifs():
    servers = []

    def start(config: dict | None = None) -> Ifs:
        server, base = serve("127.0.0.1", 0, config, env="test")
        servers.append(server)
        return Ifs(server, base)

    yield start
    for s in servers:
        s.shutdown()


def error_of(resp: requests.Response) -> dict:
    body = resp.json()
    assert set(body) == {"error"}, body
    return body["error"]


# ---------------------------------------------------------------------------------------- IAM
def test_token_reply_is_keycloak_shaped_and_opens_the_projections(ifs):
    env = ifs()
    tok = env.new_token()
    for field in ("access_token", "expires_in", "refresh_expires_in", "refresh_token", "token_type",
                  "id_token", "not-before-policy", "session_state", "scope"):
        assert field in tok
    assert tok["expires_in"] == 180 and tok["refresh_expires_in"] == 1800
    assert tok["token_type"] == "Bearer" and "openid" in tok["scope"].split()
    assert tok["access_token"].count(".") == 2                      # JWT-shaped
    assert env.get("CompanyHandling.svc/CompanySet").status_code == 200
    basic = requests.post(env.token_url, data={"grant_type": "client_credentials"}, auth=(CLIENT, SECRET), timeout=5)
    assert basic.status_code == 200


def test_token_ttl_is_configurable(ifs):
    assert ifs({"token_ttl": 60}).new_token()["expires_in"] == 60


def test_wrong_client_is_refused_like_keycloak(ifs):
    env = ifs()
    for client, secret in ((CLIENT, "wrong"), ("nobody", SECRET)):
        r = requests.post(env.token_url, data={"grant_type": "client_credentials", "client_id": client,
                                               "client_secret": secret}, timeout=5)
        assert r.status_code == 401
        assert r.json() == {"error": "invalid_client",
                            "error_description": "Invalid client or Invalid client credentials"}
    r = requests.post(env.token_url, data={"client_id": CLIENT, "client_secret": SECRET}, timeout=5)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = requests.post(env.token_url, data={"grant_type": "password", "client_id": CLIENT, "client_secret": SECRET},
                      timeout=5)
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = requests.post(f"{env.base}/auth/realms/other/protocol/openid-connect/token",
                      data={"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}, timeout=5)
    assert r.status_code == 404


def test_projection_calls_need_a_live_bearer_token(ifs):
    env = ifs()
    r = requests.get(f"{env.root}/CompanyHandling.svc/CompanySet", timeout=5)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    refresh = env.new_token()["refresh_token"]
    assert env.admin("faults", {"kind": "expire_tokens"})["results"][0]["expired"] >= 1
    r = env.get("CompanyHandling.svc/CompanySet")
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    r = requests.post(env.token_url, data={"grant_type": "refresh_token", "refresh_token": refresh,
                                           "client_id": CLIENT, "client_secret": SECRET}, timeout=5)
    assert r.status_code == 200
    env.token = r.json()["access_token"]
    assert env.get("CompanyHandling.svc/CompanySet").status_code == 200
    r = requests.post(env.token_url, data={"grant_type": "refresh_token", "refresh_token": refresh,
                                           "client_id": CLIENT, "client_secret": SECRET}, timeout=5)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"      # refresh tokens are single-use


def test_short_lived_token_expires_by_itself(ifs):
    import time
    env = ifs({"token_ttl": 1})
    assert env.get("CompanyHandling.svc/CompanySet").status_code == 200
    time.sleep(1.2)
    assert env.get("CompanyHandling.svc/CompanySet").status_code == 401


# ---------------------------------------------------------------------------------------- OData basics
def test_service_document_and_metadata_list_sets_keys_enums_and_actions(ifs):
    env = ifs()
    integration = requests.get(f"{env.base}/int/ifsapplications/projection/v1/CompanyHandling.svc/CompanySet",
                               headers=env.headers(), timeout=5)
    assert integration.status_code == 200 and "/int/" in integration.json()["@odata.context"]
    doc = env.get("VoucherEntryAssistantHandling.svc/").json()
    assert doc["@odata.context"].endswith("VoucherEntryAssistantHandling.svc/$metadata")
    assert [v["name"] for v in doc["value"]] == ["VoucherSet"]
    r = env.get("VoucherEntryAssistantHandling.svc/$metadata")
    assert r.status_code == 200 and "xml" in r.headers["Content-Type"]
    schema = ET.fromstring(r.content).find(f".//{EDM}Schema")
    assert schema.get("Namespace") == "IfsApp.VoucherEntryAssistantHandling"
    sets = {s.get("Name"): s.get("EntityType") for s in schema.iter(f"{EDM}EntitySet")}
    assert sets == {"VoucherSet": "IfsApp.VoucherEntryAssistantHandling.VoucherEntry"}
    types = {t.get("Name"): t for t in schema.iter(f"{EDM}EntityType")}
    assert [k.get("Name") for k in types["VoucherEntry"].find(f"{EDM}Key")] == ["Objkey"]
    props = {p.get("Name"): p.get("Type") for p in types["VoucherPosting"].iter(f"{EDM}Property")}
    for name in ("Account", "CodeB", "CodeJ", "DebetAmount", "CurrencyCreditAmount", "Text", "ReferenceNumber"):
        assert name in props
    enums = {e.get("Name"): [m.get("Name") for m in e] for e in schema.iter(f"{EDM}EnumType")}
    assert "Approved" in enums["VoucherStatus"]
    actions = {a.get("Name") for a in schema.iter(f"{EDM}Action")}
    assert {"VoucherEntry_CreateVoucher", "VoucherEntry_RemoveTempVoucher"} <= actions

    handling = ET.fromstring(env.get("VoucherHandling.svc/$metadata").content)
    keys = [k.get("Name") for t in handling.iter(f"{EDM}EntityType") if t.get("Name") == "VoucherEntry"
            for k in t.find(f"{EDM}Key")]
    assert keys == ["Company", "VoucherType", "VoucherNo", "AccountingYear"]
    periods = ET.fromstring(env.get("AccountingPeriodsHandling.svc/$metadata").content)
    enums = {e.get("Name"): [m.get("Name") for m in e] for e in periods.iter(f"{EDM}EnumType")}
    assert enums["AccYearPerStatus"] == ["Open", "Closed", "FinallyClosed"]
    ext = ET.fromstring(env.get("ExternalVouchers.svc/$metadata").content)
    assert {s.get("Name") for s in ext.iter(f"{EDM}EntitySet")} == {"ExternalVouchersSet"}


def test_unknown_projection_set_or_key_is_resource_not_found(ifs):
    env = ifs()
    assert error_of(env.get("NoSuchHandling.svc/FooSet"))["code"] == "ODP_RESOURCE_NOTFOUND"
    assert env.get("AccountsHandling.svc/NoSet").status_code == 404
    r = env.get("AccountsHandling.svc/AccountSet(Company='10',Account='9999')")
    assert r.status_code == 404 and error_of(r)["code"] == "ODP_RESOURCE_NOTFOUND"


def test_entity_by_key_has_etag_context_and_ifs_fields(ifs):
    env = ifs()
    r = env.get("AccountsHandling.svc/AccountSet(Company='10',Account='6000')")
    body = r.json()
    assert r.status_code == 200 and body["Description"] == "Wages and Salaries"
    assert body["@odata.context"].endswith("AccountsHandling.svc/$metadata#AccountSet/$entity")
    assert body["@odata.etag"] == r.headers["ETag"] and body["@odata.etag"].startswith('W/"')
    import base64
    objid, objversion = base64.b64decode(body["@odata.etag"][3:-1]).decode().split(":")
    assert len(objid) == 18 and len(objversion) == 14 and objversion.isdigit()
    assert body["luname"] == "Account" and body["keyref"] == "COMPANY=10^ACCOUNT=6000^"
    assert body["ReqCodeB"] == "Mandatory"


def test_filter_with_qualified_enum_works_and_an_unqualified_one_is_refused(ifs):
    env = ifs()
    path = (f"AccountingPeriodsHandling.svc/AccountingYearSet(Company='10',AccountingYear={YEAR - 1})"
            f"/AccYearDetailArray(LedgerId='00')/AccPerDetailArray")
    r = env.get(path, {"$filter": "PeriodStatus eq IfsApp.AccountingPeriodsHandling.AccYearPerStatus'Closed'"})
    assert r.status_code == 200, r.text
    assert [(p["AccountingPeriod"], p["PeriodStatus"]) for p in r.json()["value"]] == [(1, "Closed")]
    r = env.get(path, {"$filter": "((PeriodStatus eq IfsApp.AccountingPeriodsHandling.AccYearPerStatus'Open'))"})
    assert len(r.json()["value"]) == 11
    for bad in ("PeriodStatus eq 'Open'",
                "PeriodStatus eq IfsApp.AccountsHandling.AccYearPerStatus'Open'",
                "PeriodStatus eq IfsApp.AccountingPeriodsHandling.AccYearPerStatus'Ajar'"):
        r = env.get(path, {"$filter": bad})
        assert r.status_code == 400, bad
        assert "AccYearPerStatus" in error_of(r)["message"]


def test_filter_operators_and_functions(ifs):
    env = ifs()

    def accounts(flt):
        r = env.get("AccountsHandling.svc/AccountSet", {"$filter": flt, "$select": "Account"})
        assert r.status_code == 200, r.text
        return sorted({a["Account"] for a in r.json()["value"]})

    assert accounts("Company eq '10' and startswith(Account,'21')") == ["2100"]
    assert accounts("Company eq '20' and contains(Description,'Payable')") == ["2300", "2310", "2320"]
    assert accounts("Account ge '6000' and Account lt '6200'") == ["6000", "6100"]
    assert accounts(f"ValidUntil lt {YEAR}-01-01") == ["6900"]
    assert accounts("Account eq '1000' or Account eq '1090'") == ["1000", "1090"]
    assert accounts("not (AccntType ne 'ASSET')") == ["1000", "1090"]
    assert accounts("((startswith(tolower(Description),'wages')))") == ["6000"]
    assert env.get("AccountsHandling.svc/AccountSet", {"$filter": "Nope eq 1"}).status_code == 400
    assert env.get("AccountsHandling.svc/AccountSet", {"$filter": "ValidUntil lt '2020-01-01'"}).status_code == 400
    r = env.get("AccountsHandling.svc/AccountSet/$count", {"$filter": "Company eq '10'"})
    assert r.status_code == 200 and r.text == "11"


def test_select_top_skip_orderby_count(ifs):
    env = ifs()
    r = env.get("AccountsHandling.svc/AccountSet", {"$filter": "Company eq '10'", "$orderby": "Account desc",
                                                    "$top": "3", "$skip": "1", "$select": "Account,Description",
                                                    "$count": "true"})
    body = r.json()
    assert r.status_code == 200 and body["@odata.count"] == 11
    assert body["@odata.context"].endswith("#AccountSet(Account,Description)")
    assert [a["Account"] for a in body["value"]] == ["6200", "6100", "6000"]
    assert set(body["value"][0]) == {"@odata.etag", "Company", "Account", "Description", "luname", "keyref"}
    assert env.get("AccountsHandling.svc/AccountSet", {"$select": "Nope"}).status_code == 400
    assert env.get("AccountsHandling.svc/AccountSet", {"$top": "-1"}).status_code == 400


# ---------------------------------------------------------------------------------------- vouchers (a)
def assistant_voucher(env: Ifs, rows: list[dict], date: str = OPEN_DATE, company: str = "10",
                      text: str | None = None) -> str:
    r = env.post("VoucherEntryAssistantHandling.svc/VoucherSet",
                 {"Company": company, "VoucherType": "M", "VoucherDate": date, "VoucherText2": text})
    assert r.status_code == 201, r.text
    objkey = r.json()["Objkey"]
    for row in rows:
        r = env.post(f"VoucherEntryAssistantHandling.svc/VoucherSet(Objkey='{objkey}')/VoucherPostingArray", row)
        assert r.status_code == 201, r.text
    return objkey


def create_voucher(env: Ifs, objkey: str) -> requests.Response:
    return env.post(f"VoucherEntryAssistantHandling.svc/VoucherSet(Objkey='{objkey}')"
                    f"/IfsApp.VoucherEntryAssistantHandling.VoucherEntry_CreateVoucher", {})


def payroll_rows(key: str, wages: float = 2791.25, tax: float = 213.53) -> list[dict]:
    return [{"Account": "6000", "CodeB": "100", "DebetAmount": wages, "Text": "Gusto payroll", "ReferenceNumber": key},
            {"Account": "6100", "CodeB": "100", "DebetAmount": tax, "Text": "Employer taxes", "ReferenceNumber": key},
            {"Account": "2100", "CreditAmount": wages, "Text": "Net pay", "ReferenceNumber": key},
            {"Account": "2200", "CreditAmount": tax, "Text": "Tax liability", "ReferenceNumber": key}]


def test_assistant_creates_a_balanced_voucher_found_again_by_its_key(ifs):
    env = ifs()
    objkey = assistant_voucher(env, payroll_rows("gusto-p1"), text="gusto-p1")
    virtual = env.get(f"VoucherEntryAssistantHandling.svc/VoucherSet(Objkey='{objkey}')").json()
    assert virtual["AccountingYear"] == YEAR and virtual["AccountingPeriod"] == 3 and virtual["VoucherNo"] is None
    rows = env.get(f"VoucherEntryAssistantHandling.svc/VoucherSet(Objkey='{objkey}')/VoucherPostingArray").json()
    assert [r["RowNo"] for r in rows["value"]] == [1, 2, 3, 4]
    r = create_voucher(env, objkey)
    assert r.status_code == 200, r.text
    number = r.json()["value"]
    assert number == 1 and r.json()["@odata.context"].endswith("$metadata#Edm.Double")

    by_row = env.get("VoucherHandling.svc/VoucherSet",
                     {"$filter": "VoucherRowArray/any(r:r/ReferenceNumber eq 'gusto-p1')"}).json()["value"]
    by_text = env.get("VoucherHandling.svc/VoucherSet", {"$filter": "VoucherText2 eq 'gusto-p1'"}).json()["value"]
    assert [(v["Company"], v["VoucherType"], v["VoucherNo"], v["AccountingYear"]) for v in by_row] == \
           [("10", "M", number, YEAR)] == [(v["Company"], v["VoucherType"], v["VoucherNo"], v["AccountingYear"])
                                           for v in by_text]
    assert by_row[0]["Objstate"] == "Confirmed" and by_row[0]["Balance"] == 0
    keys = f"Company='10',VoucherType='M',VoucherNo={number},AccountingYear={YEAR}"
    voucher_rows = env.get(f"VoucherHandling.svc/VoucherSet({keys})/VoucherRowArray",
                           {"$filter": "ReferenceNumber eq 'gusto-p1' and DebetAmount gt 1000"}).json()["value"]
    assert [(r["Account"], r["CodeB"], r["DebetAmount"], r["TransCode"]) for r in voucher_rows] == \
           [("6000", "100", 2791.25, "MANUAL")]
    assert env.get("VoucherHandling.svc/VoucherSet",
                   {"$filter": "VoucherRowArray/any(r:r/ReferenceNumber eq 'other')"}).json()["value"] == []
    # the virtual is consumed: a retried CreateVoucher cannot create a second voucher
    assert create_voucher(env, objkey).status_code == 404


@pytest.mark.parametrize("case", ["unbalanced", "closed_period", "missing_account", "inactive_cost_centre",
                                  "missing_cost_centre"])
def test_assistant_refuses_with_an_error_naming_the_reason(ifs, case):
    env = ifs()
    rows, date = payroll_rows("k"), OPEN_DATE
    if case == "unbalanced":
        rows[0]["DebetAmount"] = 2791.26
        tag, words = "NOTBALANCED", ["company 10", "difference 0.01"]
    elif case == "closed_period":
        date = CLOSED_DATE
        tag, words = "PERIODCLOSED", [f"{YEAR - 1}-01", "company 10", "Closed"]
    elif case == "missing_account":
        rows[2]["Account"] = "2999"
        tag, words = "NOTEXIST", ["Account 2999", "company 10"]
    elif case == "inactive_cost_centre":
        rows[0]["CodeB"] = "900"
        tag, words = "NOTVALID", ["Code B value 900", "company 10"]
    else:
        del rows[0]["CodeB"]
        tag, words = "CODEPARTMANDATORY", ["Code part B", "account 6000"]
    objkey = assistant_voucher(env, rows, date=date)
    r = create_voucher(env, objkey)
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert err["details"][0]["code"] == tag
    for word in words:
        assert word in err["message"], (word, err["message"])
    assert env.get("VoucherHandling.svc/VoucherSet").json()["value"] == []
    # the virtual survives a refusal: fix it, or throw it away
    assert env.get(f"VoucherEntryAssistantHandling.svc/VoucherSet(Objkey='{objkey}')").json()["UpdateError"]
    r = env.post(f"VoucherEntryAssistantHandling.svc/VoucherSet(Objkey='{objkey}')"
                 f"/IfsApp.VoucherEntryAssistantHandling.VoucherEntry_RemoveTempVoucher", {})
    assert r.status_code == 204
    assert env.get(f"VoucherEntryAssistantHandling.svc/VoucherSet(Objkey='{objkey}')").status_code == 404


def test_assistant_refuses_unknown_company_and_voucher_type_up_front(ifs):
    env = ifs()
    r = env.post("VoucherEntryAssistantHandling.svc/VoucherSet", {"Company": "99", "VoucherType": "M",
                                                                  "VoucherDate": OPEN_DATE})
    assert r.status_code == 400 and "'99'" in error_of(r)["message"]
    r = env.post("VoucherEntryAssistantHandling.svc/VoucherSet", {"Company": "10", "VoucherType": "Q",
                                                                  "VoucherDate": OPEN_DATE})
    assert r.status_code == 400 and "Voucher type 'Q'" in error_of(r)["message"]
    r = env.post("VoucherEntryAssistantHandling.svc/VoucherSet", {"Company": "10", "VoucherType": "M"})
    assert r.status_code == 400 and error_of(r)["details"][0]["code"] == "NULLVALUE"


def test_each_company_has_its_own_voucher_series(ifs):
    env = ifs()
    numbers = []
    for company in ("10", "20", "10"):
        r = create_voucher(env, assistant_voucher(env, payroll_rows(f"k-{company}"), company=company))
        numbers.append((company, r.json()["value"]))
    assert numbers == [("10", 1), ("20", 1), ("10", 2)]


def test_accounts_and_currency_are_checked_per_company(ifs):
    env = ifs()
    env.admin("seed", {"companies": [{"Company": "20", "Name": "ML Demo Canada Ltd.", "CurrencyCode": "CAD",
                                      "accounts": [{"Account": "7000", "Description": "Canada-only expense"}]}]})
    rows = [{"Account": "7000", "DebetAmount": 10.0, "ReferenceNumber": "k"},
            {"Account": "2100", "CreditAmount": 10.0, "ReferenceNumber": "k"}]
    r = create_voucher(env, assistant_voucher(env, rows, company="10"))
    assert r.status_code == 400 and "Account 7000 does not exist in company 10" in error_of(r)["message"]
    assert create_voucher(env, assistant_voucher(env, rows, company="20")).status_code == 200
    # transaction-currency amounts: the company's own currency needs no rate, another one does
    cad = [{"Account": "6000", "CodeB": "100", "CurrencyCode": "CAD", "CurrencyDebetAmount": 50.0},
           {"Account": "2100", "CurrencyCode": "CAD", "CurrencyCreditAmount": 50.0}]
    assert create_voucher(env, assistant_voucher(env, cad, company="20")).status_code == 200
    usd = [dict(row, CurrencyCode="USD") for row in cad]
    r = create_voucher(env, assistant_voucher(env, usd, company="20"))
    assert r.status_code == 400 and error_of(r)["details"][0]["code"] == "NORATE"
    rated = [dict(row, CurrencyRate=1.35) for row in usd]
    number = create_voucher(env, assistant_voucher(env, rated, company="20")).json()["value"]
    rows = env.get(f"VoucherHandling.svc/VoucherSet(Company='20',VoucherType='M',VoucherNo={number},"
                   f"AccountingYear={YEAR})/VoucherRowArray").json()["value"]
    assert [(r["CurrencyDebetAmount"], r["DebetAmount"]) for r in rows][0] == (50.0, 67.5)


def test_voucher_handling_cannot_create_but_updates_with_etags(ifs):
    env = ifs()
    r = env.post("VoucherHandling.svc/VoucherSet", {"Company": "10", "VoucherType": "M"})
    assert r.status_code == 405 and error_of(r)["code"] == "ODP_METHOD_NOT_ALLOWED"
    number = create_voucher(env, assistant_voucher(env, payroll_rows("k1"))).json()["value"]
    path = f"VoucherHandling.svc/VoucherSet(Company='10',VoucherType='M',VoucherNo={number},AccountingYear={YEAR})"
    etag = env.get(path).headers["ETag"]
    r = env.patch(path, {"VoucherText2": "k1 (checked)"}, {"If-Match": etag})
    assert r.status_code == 204 and r.headers["ETag"] != etag
    r = env.patch(path, {"VoucherText2": "again"}, {"If-Match": etag})
    assert r.status_code == 412
    r = env.patch(path, {"VoucherDate": f"{YEAR}-04-01"}, {"If-Match": "*"})
    assert r.status_code == 400 and "VoucherDate" in error_of(r)["message"]
    assert env.get(path).json()["VoucherText2"] == "k1 (checked)"
    missing = f"VoucherHandling.svc/VoucherSet(Company='10',VoucherType='M',VoucherNo=999,AccountingYear={YEAR})"
    assert env.patch(missing, {"VoucherText2": "x"}).status_code == 405          # upsert cannot insert here
    assert env.get(f"{path}/VoucherRowArray(RowNo=1)").json()["Account"] == "6000"


# ---------------------------------------------------------------------------------------- vouchers (b)
def ext_rows(load_id: str, key: str, date: str = OPEN_DATE, wages: float = 1500.0) -> list[dict]:
    base = {"Company": "10", "LoadId": load_id, "Correction": False, "TransactionDate": date,
            "VoucherType": "Z", "ReferenceNumber": key, "Text": "Gusto payroll"}
    return [{**base, "Account": "6000", "CodeB": "200", "DebetAmount": wages},
            {**base, "Account": "2100", "CreditAmount": 1500.0}]


def load_and_create(env: Ifs, rows: list[dict]) -> requests.Response:
    for row in rows:
        r = env.post("ExternalVouchers.svc/ExternalVouchersSet", row)
        assert r.status_code == 201, r.text
    load = f"ExternalVoucherLoadInformationHandling.svc/ExtLoadInfoSet(Company='10',LoadId='{rows[0]['LoadId']}')"
    etag = env.get(load).headers["ETag"]
    return env.post(f"{load}/IfsApp.ExternalVoucherLoadInformationHandling.ExtLoadInfo_DoCreateVoucher", {},
                    {"If-Match": etag})


def test_external_vouchers_become_a_voucher_when_the_load_balances(ifs):
    env = ifs()
    r = load_and_create(env, ext_rows("GUSTO-P2", "gusto-p2"))
    assert r.status_code == 204, r.text
    rows = env.get("ExternalVouchers.svc/ExternalVouchersSet",
                   {"$filter": "LoadId eq 'GUSTO-P2'", "$orderby": "RecordNo"}).json()["value"]
    assert [r["RecordNo"] for r in rows] == [1, 2]
    assert {(r["Objstate"], r["VoucherType"], r["VoucherNo"], r["AccountingYear"]) for r in rows} == \
           {("Updated", "Z", 1, YEAR)}
    assert rows[0]["VoucherDate"] == OPEN_DATE and rows[0]["LoadError"] is None
    load = env.get("ExternalVoucherLoadInformationHandling.svc/ExtLoadInfoSet(Company='10',LoadId='GUSTO-P2')").json()
    assert load["ExtLoadState"] == "Created"
    found = env.get("VoucherHandling.svc/VoucherSet",
                    {"$filter": "VoucherRowArray/any(x:x/ReferenceNumber eq 'gusto-p2')"}).json()["value"]
    assert [(v["VoucherType"], v["VoucherNo"], v["FunctionGroup"]) for v in found] == [("Z", 1, "Z")]
    # a Created load takes no more rows
    r = env.post("ExternalVouchers.svc/ExternalVouchersSet", ext_rows("GUSTO-P2", "x")[0])
    assert r.status_code == 400 and error_of(r)["details"][0]["code"] == "LOADCREATED"


@pytest.mark.parametrize("case", ["unbalanced", "closed_period", "missing_account"])
def test_external_load_is_refused_whole_with_the_reason(ifs, case):
    env = ifs()
    rows = ext_rows("BAD-LOAD", "bad")
    if case == "unbalanced":
        rows = ext_rows("BAD-LOAD", "bad", wages=1500.01)
        tag, words = "NOTBALANCED", ["company 10", "BAD-LOAD"]
    elif case == "closed_period":
        rows = ext_rows("BAD-LOAD", "bad", date=CLOSED_DATE)
        tag, words = "PERIODCLOSED", [f"{YEAR - 1}-01", "company 10"]
    else:
        rows[1]["Account"] = "2999"
        tag, words = "NOTEXIST", ["Account 2999", "company 10"]
    r = load_and_create(env, rows)
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert err["details"][0]["code"] == tag
    for word in words:
        assert word in err["message"]
    assert env.get("VoucherHandling.svc/VoucherSet").json()["value"] == []
    marked = env.get("ExternalVouchers.svc/ExternalVouchersSet", {"$filter": "LoadId eq 'BAD-LOAD'"}).json()["value"]
    assert all(r["Objstate"] == "Loaded" and r["LoadError"] for r in marked)


def test_external_rows_follow_the_model_file(ifs):
    env = ifs()
    row = ext_rows("L1", "k")[0]
    r = env.post("ExternalVouchers.svc/ExternalVouchersSet", {**row, "VoucherDate": OPEN_DATE})
    assert r.status_code == 400 and "VoucherDate" in error_of(r)["message"]          # derived, not insertable
    r = env.post("ExternalVouchers.svc/ExternalVouchersSet", {**row, "RecordNo": 7})
    assert r.status_code == 400 and "RecordNo" in error_of(r)["message"]
    r = env.post("ExternalVouchers.svc/ExternalVouchersSet", {k: v for k, v in row.items() if k != "Correction"})
    assert r.status_code == 400 and "Correction" in error_of(r)["message"]
    r = env.post("ExternalVouchers.svc/ExternalVouchersSet", {**row, "LoadId": "GUSTO-PAYROLL-2025-03-31-X"})
    assert r.status_code == 400 and error_of(r)["code"] == "ODP_DESERIALIZATION_ERROR"   # LoadId max 20
    r = env.post("ExternalVouchers.svc/ExternalVouchersSet", {**row, "LoadId": "gusto-p3"})
    assert r.status_code == 201 and r.json()["LoadId"] == "GUSTO-P3"                   # upper case


def test_external_check_marks_errors_without_creating(ifs):
    env = ifs()
    rows = ext_rows("CHK", "c")
    rows[0]["CodeB"] = "999"
    for row in rows:
        env.post("ExternalVouchers.svc/ExternalVouchersSet", row)
    load = "ExternalVoucherLoadInformationHandling.svc/ExtLoadInfoSet(Company='10',LoadId='CHK')"
    action = "IfsApp.ExternalVoucherLoadInformationHandling.ExtLoadInfo_DoCheckTransactions"
    assert env.post(f"{load}/{action}", {}).status_code == 428                          # entity action needs If-Match
    r = env.post(f"{load}/{action}", {}, {"If-Match": env.get(load).headers["ETag"]})
    assert r.status_code == 204
    marked = env.get("ExternalVouchers.svc/ExternalVouchersSet", {"$filter": "LoadId eq 'CHK'"}).json()["value"]
    assert "Code B value 999" in marked[0]["LoadError"]
    # fix the row (If-Match) and the load goes through
    path = "ExternalVouchers.svc/ExternalVouchersSet(Company='10',LoadId='CHK',RecordNo=1)"
    r = env.patch(path, {"CodeB": "200"}, {"If-Match": env.get(path).headers["ETag"]})
    assert r.status_code == 204
    r = env.post(f"{load}/IfsApp.ExternalVoucherLoadInformationHandling.ExtLoadInfo_DoCreateVoucher", {},
                 {"If-Match": env.get(load).headers["ETag"]})
    assert r.status_code == 204


# ---------------------------------------------------------------------------------------- ETags, upserts
def test_stale_etag_is_412_and_star_skips_the_check(ifs):
    env = ifs()
    path = "CustomerHandling.svc/CustomerInfoSet(CustomerId='1001')"
    etag = env.get(path).headers["ETag"]
    env.admin("faults", {"kind": "bump", "projection": "CustomerHandling", "path": "CustomerInfoSet(CustomerId='1001')"})
    r = env.patch(path, {"Name": "Renamed"}, {"If-Match": etag})
    assert r.status_code == 412 and error_of(r)["code"] == "ODP_PRECONDITION_FAILED"
    fresh = env.get(path).headers["ETag"]
    assert fresh != etag
    assert env.patch(path, {"Name": "Renamed"}, {"If-Match": fresh}).status_code == 204
    assert env.patch(path, {"Name": "Renamed again"}, {"If-Match": "*"}).status_code == 204
    r = env.patch(path, {"Name": "Back"}, {"If-Match": fresh, "Prefer": "return=representation"})
    assert r.status_code == 412
    missing = "CustomerHandling.svc/CustomerInfoSet(CustomerId='NOPE')"
    assert env.patch(missing, {"Name": "x"}, {"If-Match": "*"}).status_code == 404


def test_patch_without_if_match_is_an_upsert(ifs):
    env = ifs()
    path = "CustomerHandling.svc/CustomerInfoSet(CustomerId='E-0042')"
    body = {"CustomerId": "IGNORED", "Name": "Ann Example", "CreationDate": OPEN_DATE, "Country": "US",
            "CountryCode": "US", "DefaultLanguage": "en", "PartyType": "Customer", "DefaultDomain": True,
            "Cf_EmployeeNo": "E-0042"}
    r = env.patch(path, body)
    assert r.status_code == 201 and r.json()["CustomerId"] == "E-0042"                # keys come from the URL
    assert r.headers["Location"].endswith(path)
    r = env.patch(path, {"Name": "Ann Example-Smith"})
    assert r.status_code == 204
    assert env.get(path).json()["Name"] == "Ann Example-Smith"


def test_without_upserts_a_patch_needs_if_match(ifs):
    env = ifs({"upsert_without_if_match": False})
    r = env.patch("CustomerHandling.svc/CustomerInfoSet(CustomerId='1001')", {"Name": "x"})
    assert r.status_code == 428 and error_of(r)["code"] == "ODP_MISSING_PRECONDITION"


def test_bad_bodies_are_deserialization_errors(ifs):
    env = ifs()
    r = requests.post(f"{env.root}/CustomerHandling.svc/CustomerInfoSet", data="Name=x",
                      headers=env.headers({"Content-Type": "application/x-www-form-urlencoded"}), timeout=5)
    assert r.status_code == 400
    assert error_of(r)["code"] == "ODP_DESERIALIZATION_ERROR"
    assert error_of(r)["message"] == "Error while de-serializing contents."
    r = env.post("CustomerHandling.svc/CustomerInfoSet", {"Name": "x", "Shoe": 1})
    assert r.status_code == 400 and "Shoe" in error_of(r)["details"][0]["message"]
    r = env.post("CustomerHandling.svc/CustomerInfoSet", {"Name": "x", "DefaultDomain": "yes"})
    assert r.status_code == 400 and error_of(r)["code"] == "ODP_DESERIALIZATION_ERROR"


# ---------------------------------------------------------------------------------------- faults
def test_injected_429_and_503_then_normal_service(ifs):
    env = ifs()
    env.admin("faults", [{"kind": "429", "count": 2, "retry_after": 3}, {"kind": "503", "retry_after": 1}])
    for _ in range(2):
        r = env.get("CompanyHandling.svc/CompanySet")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    r = env.get("CompanyHandling.svc/CompanySet")
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert env.get("CompanyHandling.svc/CompanySet").status_code == 200


def test_injected_mi_modified_error_in_both_documented_forms(ifs):
    env = ifs()
    env.admin("faults", [{"kind": "mi_modified"}, {"kind": "mi_modified", "style": "23r2", "retry_after": 2}])
    r = env.get("CompanyHandling.svc/CompanySet")
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "MI_MODIFIED_ERROR", "message": "Service metadata already modified."}}
    r = env.get("CompanyHandling.svc/CompanySet")
    assert r.status_code == 503 and r.headers["Retry-After"] == "2"
    assert error_of(r)["code"] == "MI_MODIFIED_ERROR"
    assert env.get("CompanyHandling.svc/CompanySet").status_code == 200


def test_faults_can_target_one_call(ifs):
    env = ifs()
    env.admin("faults", {"kind": "503", "method": "POST", "path_contains": "CreateVoucher"})
    objkey = assistant_voucher(env, payroll_rows("k"))                 # not hit: other calls
    assert create_voucher(env, objkey).status_code == 503
    assert create_voucher(env, objkey).status_code == 200


def test_a_lost_answer_still_creates_the_voucher_and_the_client_can_find_it(ifs):
    env = ifs()
    objkey = assistant_voucher(env, payroll_rows("gusto-lost"))
    env.admin("faults", {"kind": "drop_response", "path_contains": "CreateVoucher"})
    assert create_voucher(env, objkey).status_code == 504
    found = env.get("VoucherHandling.svc/VoucherSet",
                    {"$filter": "VoucherRowArray/any(r:r/ReferenceNumber eq 'gusto-lost')"}).json()["value"]
    assert len(found) == 1
    log = requests.get(f"{env.base}/_sandbox/requests", timeout=5).json()
    assert [(e["status"], e["processed_status"]) for e in log if "CreateVoucher" in e["path"]] == [(504, 200)]


def test_admin_can_close_a_period_and_deactivate_a_cost_centre(ifs):
    env = ifs()
    env.admin("faults", {"kind": "period", "company": "10", "year": YEAR, "period": 3, "status": "Closed"})
    r = create_voucher(env, assistant_voucher(env, payroll_rows("k")))
    assert r.status_code == 400 and error_of(r)["details"][0]["code"] == "PERIODCLOSED"
    env.admin("faults", {"kind": "period", "company": "10", "year": YEAR, "period": 3, "status": "Open"})
    env.admin("faults", {"kind": "deactivate", "company": "10", "code_part": "B", "value": "100"})
    today = dt.date.today().isoformat()          # validity is by date: earlier vouchers may still use it
    assert create_voucher(env, assistant_voucher(env, payroll_rows("k"))).status_code == 200
    r = create_voucher(env, assistant_voucher(env, payroll_rows("k"), date=today))
    assert r.status_code == 400 and "Code B value 100" in error_of(r)["message"]
    code = env.get("CodeBHandling.svc/CodeBSet(Company='10',CodeB='100')").json()
    assert code["ValidUntil"] < dt.date.today().isoformat()


def test_state_reset_and_seed(ifs):
    env = ifs()
    env.admin("seed", {"companies": [{"Company": "30", "Name": "Third", "CurrencyCode": "USD",
                                      "voucher_types": {"M": "Manual"}, "years": [YEAR],
                                      "accounts": [{"Account": "6000", "Description": "Wages"}]}]})
    companies = [c["Company"] for c in env.get("CompanyHandling.svc/CompanySet").json()["value"]]
    assert companies == ["10", "20", "30"]
    state = requests.get(f"{env.base}/_sandbox/state", timeout=5).json()
    assert state["namespace"] == NS and "clients" not in state["config"]
    env.admin("reset")                              # tokens go too
    assert env.get("CompanyHandling.svc/CompanySet").status_code == 401
    env.token = env.new_token()["access_token"]
    assert len(env.get("CompanyHandling.svc/CompanySet").json()["value"]) == 2


# ---------------------------------------------------------------------------------------- customers, resources
def test_customers_create_find_and_deactivate(ifs):
    env = ifs()
    r = env.post("CustomerHandling.svc/CustomerInfoSet",
                 {"Name": "Ann Example", "CreationDate": OPEN_DATE, "Country": "US", "CountryCode": "US",
                  "DefaultLanguage": "en", "PartyType": "Customer", "DefaultDomain": True, "Cf_EmployeeNo": "E-0007"})
    assert r.status_code == 201, r.text
    customer = r.json()
    cid = customer["CustomerId"]
    assert cid and customer["Cf_Active"] is True
    r = env.post(f"CustomerHandling.svc/CustomerInfoSet(CustomerId='{cid}')/CommMethodArray",
                 {"MethodId": "EMail", "Value": "ann@example.com", "MethodDefault": True})
    assert r.status_code == 201 and r.json()["CommId"] == 1
    by_email = env.get("CustomerHandling.svc/CustomerInfoSet",
                       {"$filter": "CommMethodArray/any(c:c/MethodId eq IfsApp.CustomerHandling.CommMethodCode'EMail' "
                                   "and c/Value eq 'ann@example.com')"}).json()["value"]
    assert [c["CustomerId"] for c in by_email] == [cid]
    by_no = env.get("CustomerHandling.svc/CustomerInfoSet", {"$filter": "Cf_EmployeeNo eq 'E-0007'"}).json()["value"]
    assert [c["CustomerId"] for c in by_no] == [cid]
    assert env.get("CustomerHandling.svc/CustomerInfoSet",
                   {"$filter": "contains(Name,'Ann')", "$select": "CustomerId,Name"}).json()["value"][0]["Name"] == "Ann Example"
    seeded = env.get("CustomerHandling.svc/CustomerInfoSet",
                     {"$filter": "CommMethodArray/any(c:c/Value eq 'existing.employee@example.com')"}).json()["value"]
    assert [c["CustomerId"] for c in seeded] == ["1001"]
    path = f"CustomerHandling.svc/CustomerInfoSet(CustomerId='{cid}')"
    r = env.patch(path, {"Cf_Active": False}, {"If-Match": env.get(path).headers["ETag"]})
    assert r.status_code == 204
    assert env.get(path).json()["Cf_Active"] is False
    r = env.post("CustomerHandling.svc/CustomerInfoSet", {"Name": "No date"})
    assert r.status_code == 400 and error_of(r)["details"][0]["code"] == "NULLVALUE"
    r = env.post("CustomerHandling.svc/CustomerInfoSet",
                 {"CustomerId": cid, "Name": "Dup", "CreationDate": OPEN_DATE, "Country": "US", "CountryCode": "US",
                  "DefaultLanguage": "en", "PartyType": "Customer", "DefaultDomain": True})
    assert r.status_code == 400 and error_of(r)["details"][0]["code"] == "EXIST"


def test_project_resources_create_find_and_deactivate(ifs):
    env = ifs()
    r = env.post("ProjectResourcesHandling.svc/ProjectResourceSet",
                 {"Company": "10", "ResourceId": "E-0009", "Description": "Bo Builder", "EmpNo": "E-0009",
                  "Email": "bo@example.com"})
    assert r.status_code == 201 and r.json()["Objstate"] == "Active"
    found = env.get("ProjectResourcesHandling.svc/ProjectResourceSet",
                    {"$filter": "Email eq 'bo@example.com'"}).json()["value"]
    assert [x["ResourceId"] for x in found] == ["E-0009"]
    found = env.get("ProjectResourcesHandling.svc/ProjectResourceSet",
                    {"$filter": "Company eq '10' and EmpNo eq 'E-0009'"}).json()["value"]
    assert len(found) == 1
    path = "ProjectResourcesHandling.svc/ProjectResourceSet(Company='10',ResourceId='E-0009')"
    action = f"{path}/IfsApp.ProjectResourcesHandling.ProjectResource_SetInactive"
    assert env.post(action, {}).status_code == 428
    r = env.post(action, {}, {"If-Match": env.get(path).headers["ETag"]})
    assert r.status_code == 204
    inactive = env.get("ProjectResourcesHandling.svc/ProjectResourceSet",
                       {"$filter": "Objstate eq IfsApp.ProjectResourcesHandling.ProjectResourceState'Inactive'"}).json()
    assert [x["ResourceId"] for x in inactive["value"]] == ["E-0009"]
    r = env.patch(path, {"Objstate": "Active"}, {"If-Match": "*"})
    assert r.status_code == 400                                       # state changes only through actions


def test_refuses_to_start_in_production():
    with pytest.raises(ProductionRefused):
        serve("127.0.0.1", 0, env="production")
