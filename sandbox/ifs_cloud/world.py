"""State of the IFS Cloud emulator: configuration, in-memory tables, objversions, the default seed.

Everything lives in :class:`IfsWorld`; callers hold :attr:`IfsWorld.lock` around every read and
write. Tables are ``dict[key tuple -> record dict]``; a record holds its public attributes plus
``_objid`` (an Oracle-rowid-like id) and ``_objversion`` (a ``YYYYMMDDHHMMSS`` stamp), which
together make the ETag (CONVENTIONS: the sample ETag decodes to
``AACIMGAAFAABpIHAAA:20191031132400``).

Default seed (ASSUMPTION: invented demo data, US-style chart of accounts):

* IAM namespace ``ifsdemo``, client ``ml-connector`` / secret ``ifs-demo-secret``;
* companies ``10`` (ML Demo US Inc., USD) and ``20`` (ML Demo Canada Ltd., CAD);
* voucher types ``M`` (manual) and ``Z`` (external) in both;
* accounts 1000 bank, 1090 payroll clearing, 2100 accrued net pay, 2200 payroll tax liability,
  2300 benefit deductions payable, 2310 retirement deductions payable, 2320 garnishments payable,
  6000 wages, 6100 employer payroll taxes, 6200 employee benefits (6xxx need a cost centre:
  ``ReqCodeB`` = Mandatory), 6900 old payroll expense (expired: ValidUntil in the past);
* CodeB (cost centres) 100 Administration, 200 Operations, 300 Sales, 900 Discontinued
  (expired); CodeC (projects) PRJ1, PRJ2;
* accounting years = calendar years, current and previous, 12 monthly periods each, ledger
  ``00`` period status Open except previous year period 1 (Closed);
* one customer and one project resource, so that "find before create" has something to find.
"""
from __future__ import annotations

import copy
import datetime as dt
import secrets
import threading
from collections import deque
from decimal import Decimal

DEFAULTS: dict = {
    # IAM (IAM_CLIENTS): namespace = Keycloak realm; client id -> secret.
    "namespace": "ifsdemo",
    "clients": {"ml-connector": "ifs-demo-secret"},
    "token_ttl": 180,              # IAM_CLIENTS sample expires_in 180 (configurable per client)
    "refresh_ttl": 1800,           # IAM_CLIENTS sample refresh_expires_in 1800
    # ASSUMPTION: the IFS sample shows a refresh token; plain Keycloak gives none for
    # client_credentials unless the client enables it. Set False to behave like plain Keycloak.
    "issue_refresh_token": True,
    # UPSERTS (23r2+): PATCH without If-Match = upsert. Older releases answered
    # ODP_MISSING_PRECONDITION (NOVACURA_ERRORS); False reproduces that.
    "upsert_without_if_match": True,
    # Which MI_MODIFIED_ERROR to inject by default: "21r2" = 500 "Service metadata already
    # modified."; "23r2" = 503 "Cached Service metadata is outdated. Please try again." + Retry-After.
    "mi_modified_style": "21r2",
    # ASSUMPTION: rows of the voucher entry assistant are checked only by CreateVoucher (virtual
    # rows live in a temporary table). True also checks account/code parts when a row is saved.
    "check_rows_on_insert": False,
    # ASSUMPTION: first voucher number of every (company, voucher type, year) series.
    "voucher_series_start": 1,
    "seed": None,                  # None = the default seed below; a dict = use that instead
    "latency": 0.0,                # seconds every projection call takes (test knob)
}

CODE_PARTS = "BCDEFGHIJ"
GL_LEDGER = "00"   # AccountingPeriodsHandling.projection fetches year status for ledger '00'


def default_seed(today: dt.date | None = None) -> dict:
    """The seed described in the module docstring, relative to ``today``'s year."""
    today = today or dt.date.today()
    year = today.year
    accounts = [
        ("1000", "Bank - Operating Account", "ASSET", "Can"),
        ("1090", "Payroll Clearing", "ASSET", "Can"),
        ("2100", "Accrued Net Pay", "LIAB", "Can"),
        ("2200", "Payroll Tax Liability", "LIAB", "Can"),
        ("2300", "Benefit Deductions Payable", "LIAB", "Can"),
        ("2310", "Retirement Deductions Payable", "LIAB", "Can"),
        ("2320", "Garnishments Payable", "LIAB", "Can"),
        ("6000", "Wages and Salaries", "COST", "Mandatory"),
        ("6100", "Employer Payroll Taxes", "COST", "Mandatory"),
        ("6200", "Employee Benefits", "COST", "Mandatory"),
        ("6900", "Old Payroll Expense (closed)", "COST", "Mandatory"),
    ]
    expired = (dt.date(year - 1, 1, 1) - dt.timedelta(days=1)).isoformat()
    companies = []
    for code, name, currency, country in (("10", "ML Demo US Inc.", "USD", "US"),
                                           ("20", "ML Demo Canada Ltd.", "CAD", "CA")):
        companies.append({
            "Company": code, "Name": name, "CurrencyCode": currency, "Country": country,
            "voucher_types": {"M": "Manual Voucher", "Z": "External Voucher"},
            "accounts": [{"Account": a, "Description": d, "AccntType": t, "ReqCodeB": req,
                          "ValidUntil": expired if a == "6900" else "9999-12-31"}
                         for a, d, t, req in accounts],
            "code_parts": {
                "B": [{"Value": "100", "Description": "Administration"},
                      {"Value": "200", "Description": "Operations"},
                      {"Value": "300", "Description": "Sales"},
                      {"Value": "900", "Description": "Discontinued", "ValidUntil": expired}],
                "C": [{"Value": "PRJ1", "Description": "Implementation Project"},
                      {"Value": "PRJ2", "Description": "Support Project"}],
            },
            "years": [year - 1, year],
            "closed_periods": [[year - 1, 1]],
        })
    return {
        "companies": companies,
        "customers": [{"CustomerId": "1001", "Name": "Existing Employee", "Country": "US",
                       "CountryCode": "US", "DefaultLanguage": "en", "CreationDate": f"{year - 1}-06-01",
                       "email": "existing.employee@example.com", "Cf_EmployeeNo": "E-0001",
                       "Cf_Active": True}],
        "project_resources": [{"Company": "10", "ResourceId": "E-0001", "Description": "Existing Employee",
                               "EmpNo": "E-0001", "Email": "existing.employee@example.com",
                               "Objstate": "Active"}],
    }


class IfsWorld:
    """All emulator state (see the module docstring)."""

    def __init__(self, config: dict):
        self.config = config
        self.lock = threading.RLock()
        self.reset()

    # ------------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        """Back to the seed (config kept): tables, tokens, faults, request log, counters."""
        self.tables: dict[str, dict[tuple, dict]] = {}
        self.access_tokens: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.faults: deque = deque()
        self.requests_log: list[dict] = []
        self.counters = {"token_grants": 0, "token_refusals": 0, "unauthorized": 0,
                         "vouchers_created": 0, "voucher_create_refusals": 0, "faults_fired": 0,
                         "upserts": 0, "precondition_failures": 0}
        self.sequences: dict[tuple, int] = {}
        self._last_version = dt.datetime(2000, 1, 1)
        self.apply_seed(self.config.get("seed") or default_seed(), replace=True)

    # ------------------------------------------------------------------ tables
    def table(self, name: str) -> dict[tuple, dict]:
        return self.tables.setdefault(name, {})

    def get(self, table: str, key: tuple) -> dict | None:
        return self.table(table).get(tuple(key))

    def rows(self, table: str) -> list[dict]:
        return list(self.table(table).values())

    def put(self, table: str, key: tuple, rec: dict) -> dict:
        """Insert a new record (stamps objid/objversion)."""
        rec["_objid"] = self.new_objid()
        rec["_objversion"] = self.new_version()
        self.table(table)[tuple(key)] = rec
        return rec

    def remove(self, table: str, key: tuple) -> None:
        self.table(table).pop(tuple(key), None)

    def touch(self, rec: dict) -> None:
        """A modification: a new objversion, hence a new ETag."""
        rec["_objversion"] = self.new_version()

    @staticmethod
    def new_objid() -> str:
        """Oracle-rowid-like, 18 characters (CONVENTIONS sample ``AACIMGAAFAABpIHAAA``)."""
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        return "AAC" + "".join(secrets.choice(alphabet) for _ in range(15))

    def new_version(self) -> str:
        """``YYYYMMDDHHMMSS``, strictly increasing (two changes in one second still differ)."""
        now = dt.datetime.now().replace(microsecond=0)
        self._last_version = max(now, self._last_version + dt.timedelta(seconds=1))
        return self._last_version.strftime("%Y%m%d%H%M%S")

    def next_number(self, series: tuple, start: int = 1) -> int:
        value = self.sequences.get(series, start - 1) + 1
        self.sequences[series] = value
        return value

    # ------------------------------------------------------------------ seed
    def apply_seed(self, spec: dict, replace: bool = False) -> dict:
        """Load seed data; ``replace`` empties the tables first. Keys: ``companies`` (each with
        ``voucher_types``, ``accounts``, ``code_parts`` {letter: [values]}, ``years``,
        ``closed_periods`` [[year, period]]), ``customers``, ``project_resources``. Records that
        already exist are updated. Returns counts of what was loaded."""
        if replace:
            self.tables = {}
            self.sequences = {}
        loaded = {"companies": 0, "accounts": 0, "code_parts": 0, "periods": 0, "customers": 0,
                  "project_resources": 0}
        for comp in spec.get("companies", []):
            code = str(comp["Company"])
            self._upsert("company", (code,), {"Company": code, "Name": comp.get("Name", code),
                                              "CurrencyCode": comp.get("CurrencyCode", "USD"),
                                              "Country": comp.get("Country", "US")})
            loaded["companies"] += 1
            for vt, desc in (comp.get("voucher_types") or {}).items():
                self._upsert("voucher_type", (code, vt), {"Company": code, "VoucherType": vt,
                                                          "Description": desc})
            for acc in comp.get("accounts", []):
                rec = {"Company": code, "Account": str(acc["Account"]),
                       "Description": acc.get("Description", ""), "CodePart": "A",
                       "AccntType": acc.get("AccntType", ""), "AccntGroup": acc.get("AccntGroup", ""),
                       "ValidFrom": _date(acc.get("ValidFrom", "2000-01-01")),
                       "ValidUntil": _date(acc.get("ValidUntil", "9999-12-31"))}
                for letter in CODE_PARTS:
                    rec[f"ReqCode{letter}"] = acc.get(f"ReqCode{letter}", "Can")
                self._upsert("account", (code, rec["Account"]), rec)
                loaded["accounts"] += 1
            for letter, values in (comp.get("code_parts") or {}).items():
                for val in values:
                    v = str(val["Value"])
                    self._upsert(f"code_{letter.lower()}", (code, v), {
                        "Company": code, f"Code{letter}": v, "CodePart": letter,
                        "Description": val.get("Description", ""),
                        "ValidFrom": _date(val.get("ValidFrom", "2000-01-01")),
                        "ValidUntil": _date(val.get("ValidUntil", "9999-12-31")),
                        "BudgetValue": False})
                    loaded["code_parts"] += 1
            closed = {tuple(int(x) for x in p) for p in comp.get("closed_periods", [])}
            for year in comp.get("years", []):
                self._seed_year(code, int(year), closed)
                loaded["periods"] += 12
        for cust in spec.get("customers", []):
            self.seed_customer(cust)
            loaded["customers"] += 1
        for res in spec.get("project_resources", []):
            key = (str(res["Company"]), str(res["ResourceId"]))
            self._upsert("project_resource", key, {
                "Company": key[0], "ResourceId": key[1], "Description": res.get("Description", ""),
                "EmpNo": res.get("EmpNo"), "Email": res.get("Email"),
                "Objstate": res.get("Objstate", "Active")})
            loaded["project_resources"] += 1
        return loaded

    def _seed_year(self, company: str, year: int, closed: set) -> None:
        self._upsert("acc_year", (company, Decimal(year)), {
            "Company": company, "AccountingYear": Decimal(year), "YearStatusDb": "O"})
        self._upsert("acc_year_ledger", (company, Decimal(year), GL_LEDGER), {
            "Company": company, "AccountingYear": Decimal(year), "LedgerId": GL_LEDGER,
            "LedgerDesc": "General Ledger", "OpeningBalances": "NotOpened", "ClosingBalances": "NotClosed"})
        for month in range(1, 13):
            start = dt.date(year, month, 1)
            end = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1))
            self._upsert("acc_period", (company, Decimal(year), Decimal(month)), {
                "Company": company, "AccountingYear": Decimal(year), "AccountingPeriod": Decimal(month),
                "Description": start.strftime("%B %Y"), "DateFrom": start, "DateUntil": end,
                "YearEndPeriod": "Ordinary"})
            self._upsert("acc_period_ledger", (company, Decimal(year), Decimal(month), GL_LEDGER), {
                "Company": company, "AccountingYear": Decimal(year), "AccountingPeriod": Decimal(month),
                "LedgerId": GL_LEDGER, "Description": start.strftime("%B %Y"), "DateFrom": start,
                "DateUntil": end, "YearEndPeriod": "Ordinary",
                "PeriodStatus": "Closed" if (year, month) in closed else "Open"})

    def seed_customer(self, cust: dict) -> dict:
        cid = str(cust.get("CustomerId") or self.next_number(("customer",), 1001))
        rec = {"CustomerId": cid, "Name": cust.get("Name", cid),
               "CreationDate": _date(cust.get("CreationDate", dt.date.today().isoformat())),
               "Country": cust.get("Country", "US"), "CountryCode": cust.get("CountryCode", "US"),
               "DefaultLanguage": cust.get("DefaultLanguage", "en"),
               "PartyType": cust.get("PartyType", "Customer"), "DefaultDomain": True,
               "CustomerCategory": cust.get("CustomerCategory", "Customer"), "OneTime": False,
               "B2bCustomer": False, "AssociationNo": cust.get("AssociationNo"),
               "Cf_EmployeeNo": cust.get("Cf_EmployeeNo"), "Cf_Active": cust.get("Cf_Active", True)}
        seq = self.sequences.get(("customer",), 1000)
        if cid.isdigit() and int(cid) > seq:
            self.sequences[("customer",)] = int(cid)
        self._upsert("customer", (cid,), rec)
        if cust.get("email"):
            self._upsert("customer_comm", (cid, Decimal(1)), {
                "CustomerId": cid, "CommId": Decimal(1), "MethodId": "EMail", "Value": cust["email"],
                "Description": "Work e-mail", "MethodDefault": True})
        return rec

    def _upsert(self, table: str, key: tuple, rec: dict) -> dict:
        existing = self.get(table, key)
        if existing is None:
            return self.put(table, key, rec)
        existing.update(rec)
        self.touch(existing)
        return existing

    # ------------------------------------------------------------------ helpers used by the rules
    def company(self, code: str) -> dict | None:
        return self.get("company", (code,))

    def period_for(self, company: str, date: dt.date) -> dict | None:
        """The ledger-00 period (AccPeriodLedgerInfo) whose DateFrom..DateUntil holds ``date``."""
        for rec in self.table("acc_period_ledger").values():
            if rec["Company"] == company and rec["LedgerId"] == GL_LEDGER \
                    and rec["DateFrom"] <= date <= rec["DateUntil"]:
                return rec
        return None

    def set_period_status(self, company: str, year: int, period: int, status: str) -> dict:
        rec = self.get("acc_period_ledger", (company, Decimal(year), Decimal(period), GL_LEDGER))
        if rec is None:
            raise KeyError(f"no period {year}-{period} in company {company}")
        rec["PeriodStatus"] = status
        self.touch(rec)
        return rec

    def state(self) -> dict:
        """A JSON-able dump for ``/_sandbox/state``."""
        def clean(rec):
            return {k: (v.isoformat() if isinstance(v, dt.date) else
                        (int(v) if isinstance(v, Decimal) and v == v.to_integral_value() else
                         (str(v) if isinstance(v, Decimal) else v)))
                    for k, v in rec.items()}
        tables = {name: [clean(r) for r in rows.values()] for name, rows in self.tables.items()}
        return {"config": {k: v for k, v in self.config.items() if k not in ("clients", "seed")},
                "namespace": self.config["namespace"], "counters": dict(self.counters),
                "faults_pending": [copy.deepcopy(f) for f in self.faults],
                "open_tokens": len(self.access_tokens), "request_count": len(self.requests_log),
                "tables": tables}


def _date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
