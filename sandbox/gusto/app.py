"""Gusto API emulator (sandbox only, never production).

``create_app(config)`` returns a Flask app holding one Gusto "world" in memory: an OAuth
application, companies, employees, payrolls, webhook subscriptions and events. It follows
the vendor rules collected in ``shared/reference/external-apis.md`` section 1 (cited as
"§1.x" below) and the Gusto OpenAPI spec 2025-06-15 (``shared/specs/gusto/…``, "OAS").
Every behaviour that no source confirms is marked ``ASSUMPTION:``.

Config keys (defaults in :data:`DEFAULTS`): ``client_id``, ``client_secret``,
``min_api_version`` (``YYYY-MM-DD``), ``access_token_ttl`` (seconds), ``rate_limit``
(requests) per ``rate_window`` (seconds) per OAuth grant, ``delivery_attempts``,
``delivery_backoff`` (seconds; attempt *n* waits ``delivery_backoff * 2**n`` after failing),
``auto_approve`` (the consent page redirects at once), ``code_ttl`` (seconds, 600),
``redirect_uris`` (``None`` = any; else the registered list), ``delivery_timeout`` (seconds).

Gusto routes: ``/oauth/authorize`` (GET, POST), ``/oauth/token``, ``/oauth/revoke``,
``/v1/token_info``, ``/v1/companies/<cid>/payrolls[/<pid>]``, ``/v1/companies/<cid>/employees``,
``/v1/employees/<eid>``, ``/v1/webhook_subscriptions…``, ``/v1/events``.

Sandbox-only admin routes (NOT Gusto; for tests and the demo) live under ``/_sandbox/``:
``POST events``, ``POST payrolls`` (synthetic payroll), ``POST payrolls/<pid>/process``,
``POST employees`` (synthetic employees), ``POST deliveries/redeliver/<event_uuid>``,
``GET deliveries``, ``POST faults``, ``POST reset``, ``GET state``, ``POST clock``,
``GET requests``.

The app is served threaded: all state sits in :class:`GustoWorld`, guarded by one
``threading.Lock``. Webhook deliveries run in background threads.
"""
from __future__ import annotations

import copy
import datetime as dt
import fnmatch
import hashlib
import hmac
import html
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections import deque
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from flask import Flask, Response, g, jsonify, redirect, request

DATA_DIR = Path(__file__).resolve().parent / "data"
EXAMPLE_PAYROLL_FILE = DATA_DIR / "payroll_processed_example.json"

DEFAULTS: dict = {
    "client_id": "demo-client-id",
    "client_secret": "demo-client-secret",
    "min_api_version": "2025-06-15",
    "access_token_ttl": 7200,      # §1.1: expires_in 7200 (2 hours)
    "rate_limit": 200,             # §1.3: 200 requests per rolling 60 s per grant
    "rate_window": 60.0,
    "delivery_attempts": 16,       # §1.5: retried up to 16 times, exponential backoff
    "delivery_backoff": 2.0,       # ASSUMPTION: base of the backoff (Gusto publishes none)
    "delivery_timeout": 5.0,       # ASSUMPTION: seconds Gusto waits for a receiver
    "auto_approve": False,
    "code_ttl": 600,               # §1.1: authorization code expiry 10 minutes
    "redirect_uris": None,         # ASSUMPTION: None accepts any redirect_uri (demo convenience)
}

COMPANY_UUID = "6bf7807c-a5a0-4f4d-b2e7-3fbb4b2299fb"       # company of the OAS "Processed" example
PAYROLL_UUID = "b50e611d-8f3d-4f24-b001-46675f7b5777"       # payroll of the OAS "Processed" example
# ASSUMPTION: a second company, so company-scoped tokens can be tested (strict access, §1.1).
OTHER_COMPANY_UUID = "0f4b6c2e-9a1d-4f7e-8c3b-5d2a1e9f7c60"
# ASSUMPTION: a second, unprocessed (calculated) payroll of the example company for /process.
UNPROCESSED_PAYROLL_UUID = "c3a1f9d2-7e4b-4c8a-9f1e-2b6d5a8c3e71"
APPLICATION_UUID = "9c2a1b3d-4e5f-6789-abcd-ef0123456789"   # OAS Token-Info x-example system_token
ADMIN_UUID = "8fdc31f0-a8a7-4872-a9f1-dcb5e6f876e3"         # OAS Token-Info x-example company_admin_token

COMPANY_SCOPE = ("public companies:read employees:read payrolls:read compensations:read "
                 "employee_benefits:read")                   # ASSUMPTION: scope string wording
SYSTEM_SCOPE = "public webhook_subscriptions:read webhook_subscriptions:write events:read"

# OAS POST /v1/webhook_subscriptions requestBody enum.
SUBSCRIPTION_TYPES = ("BankAccount", "Company", "CompanyBenefit", "Contractor", "ContractorPayment",
                      "Employee", "EmployeeBenefit", "EmployeeJobCompensation", "ExternalPayroll",
                      "Form", "Location", "Notification", "Payroll", "PayrollSync", "PaySchedule",
                      "PeopleBatch", "Signatory")

NOT_FOUND = {"errors": [{"error_key": "request", "category": "not_found",
                         "message": "The requested resource was not found."}]}   # §1.4 / OAS
# ASSUMPTION: 429 body UNCONFIRMED (§1.3); shaped like Gusto's other error bodies.
RATE_LIMITED = {"errors": [{"error_key": "base", "category": "rate_limit_exceeded",
                            "message": "Rate limit exceeded"}]}
# ASSUMPTION: 401 body (Gusto documents only the status, §1.1).
UNAUTHORIZED = {"errors": [{"error_key": "base", "category": "unauthorized",
                            "message": "The access token is invalid, expired or revoked."}]}
# ASSUMPTION: 403 body for a token of the wrong kind (system vs company).
FORBIDDEN = {"errors": [{"error_key": "base", "category": "forbidden",
                         "message": "This token is not allowed to access this resource."}]}
# ASSUMPTION: 5xx bodies for injected faults.
SERVER_ERROR = {"errors": [{"error_key": "base", "category": "server_error",
                            "message": "Something went wrong. Please try again later."}]}

# §1.7: the default earning types of the OAS Earning-Type-List example.
DEFAULT_EARNING_TYPES = ("Bonus", "Cash Tips", "Commission", "Correction Payment",
                         "Minimum Wage Adjustment", "Paycheck Tips", "Severance")

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def sign(body: bytes, verification_token: str) -> str:
    """``X-Gusto-Signature`` of a webhook body: lowercase hex HMAC-SHA256 of the raw bytes keyed
    by the subscription's ``verification_token``, no prefix (§1.5, "near-certain, not
    vendor-verified")."""
    return hmac.new(verification_token.encode(), body, hashlib.sha256).hexdigest()


def load_example_payroll() -> dict:
    """The OAS "Processed" payroll example as stored in ``data/`` (JSON numbers stay numbers)."""
    return json.loads(EXAMPLE_PAYROLL_FILE.read_text())


def _error(key: str, category: str, message: str) -> dict:
    """A Gusto ``Unprocessable-Entity-Error-Object`` body with one error (§1.4)."""
    return {"errors": [{"error_key": key, "category": category, "message": message}]}


def _with_query(url: str, params: dict) -> str:
    """``url`` with ``params`` appended to (not replacing) its query string."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _employee(uid: str, company_uuid: str, first: str, last: str, code: str, title: str,
              hire_date: str, department: str | None, terminated_on: str | None = None) -> dict:
    """An employee in the OAS ``Employee`` x-example shape (§1.7)."""
    job_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"job:{uid}"))
    comp_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"compensation:{uid}"))
    terminations = []
    if terminated_on:
        terminations.append({"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"termination:{uid}")),
                             "version": hashlib.md5(f"t{uid}".encode()).hexdigest(),
                             "employee_uuid": uid, "active": True, "cancelable": False,
                             "effective_date": terminated_on, "run_termination_payroll": False})
    return {
        "uuid": uid, "first_name": first, "middle_initial": None, "last_name": last,
        "email": f"{first.lower()}.{last.lower()}@example.com", "company_uuid": company_uuid,
        "manager_uuid": None, "version": hashlib.md5(uid.encode()).hexdigest(),
        "current_employment_status": "full_time", "onboarding_status": "onboarding_completed",
        "preferred_first_name": None, "department_uuid": None, "employee_code": code,
        "payment_method": "Direct Deposit", "department": department,
        "terminated": bool(terminated_on), "two_percent_shareholder": False, "onboarded": True,
        "historical": False, "has_ssn": True,
        "onboarding_documents_config": {"uuid": None, "i9_document": False},
        "jobs": [{"uuid": job_uuid, "version": hashlib.md5(job_uuid.encode()).hexdigest(),
                  "employee_uuid": uid, "current_compensation_uuid": comp_uuid,
                  "payment_unit": "Hour", "primary": True, "two_percent_shareholder": False,
                  "state_wc_covered": None, "state_wc_class_code": None, "title": title,
                  "compensations": [{"uuid": comp_uuid, "employee_uuid": uid,
                                     "version": hashlib.md5(comp_uuid.encode()).hexdigest(),
                                     "payment_unit": "Hour", "flsa_status": "Nonexempt",
                                     "adjust_for_minimum_wage": False, "minimum_wages": [],
                                     "job_uuid": job_uuid, "effective_date": hire_date,
                                     "rate": "45.00"}],
                  "rate": "45.00", "hire_date": hire_date}],
        "eligible_paid_time_off": [], "terminations": terminations, "garnishments": [],
        "date_of_birth": "1988-04-12", "ssn": "", "phone": None, "work_email": None,
    }


class GustoWorld:
    """All emulator state. Callers hold :attr:`lock` around every read and write.

    Times come from :meth:`now` (epoch seconds, moved forward by ``POST /_sandbox/clock``).
    """

    def __init__(self, config: dict):
        self.config = config
        self.lock = threading.Lock()
        self.generation = 0
        self.clock_offset = 0.0
        self.reset()

    def now(self) -> float:
        """Emulator time in epoch seconds (real time plus the sandbox clock offset)."""
        return time.time() + self.clock_offset

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.now(), dt.timezone.utc).date()

    def reset(self) -> None:
        """Back to the seeded world (config kept). Pending deliveries of the old world stop."""
        self.generation += 1
        self.clock_offset = 0.0
        self.companies = {
            COMPANY_UUID: {"uuid": COMPANY_UUID, "name": "Example Payroll Co."},
            OTHER_COMPANY_UUID: {"uuid": OTHER_COMPANY_UUID, "name": "Other Holdings LLC"},
        }
        processed = load_example_payroll()
        self.payrolls = {PAYROLL_UUID: processed}
        # ASSUMPTION: a calculated, unprocessed payroll for the next period (copy of the example
        # with a new uuid), so /_sandbox/payrolls/<pid>/process can emit payroll.processed.
        unprocessed = copy.deepcopy(processed)
        unprocessed.update({"payroll_uuid": UNPROCESSED_PAYROLL_UUID, "uuid": UNPROCESSED_PAYROLL_UUID,
                            "processed": False, "processed_date": None, "check_date": "2021-03-05",
                            "payroll_deadline": "2021-03-03T22:00:00Z", "credit_blockers": [],
                            "processing_request": None, "submission_blockers": []})
        unprocessed["pay_period"] = dict(unprocessed["pay_period"], start_date="2021-02-16",
                                         end_date="2021-02-28")
        self.payrolls[UNPROCESSED_PAYROLL_UUID] = unprocessed
        # ASSUMPTION: names, codes, titles, hire dates and the one termination are invented; the
        # uuids are the example payroll's employee_uuids.
        self.employees = {}
        for emp in (
            _employee("187412e1-3dbe-491a-bb2f-2f40323a7067", COMPANY_UUID, "Maya", "Patel",
                      "a1f001", "Warehouse Lead", "2019-03-04", "Operations"),
            _employee("187412e1-3dbe-491a-bb2f-2f40323a7012", COMPANY_UUID, "Daniel", "Okafor",
                      "a1f002", "Account Executive", "2020-01-13", "Sales"),
            _employee("187412e1-3dbe-491a-bb2f-2f40323a7781", COMPANY_UUID, "Lucia", "Romero",
                      "a1f003", "Bookkeeper", "2018-07-23", "Finance", terminated_on="2023-05-31"),
            _employee("5b0e2f0a-1c3d-4e5f-8a9b-0c1d2e3f4a5b", OTHER_COMPANY_UUID, "Other", "Person",
                      "b2e001", "Analyst", "2021-09-01", None),
        ):
            self.employees[emp["uuid"]] = emp
        self.codes: dict[str, dict] = {}
        self.grants: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.events: list[dict] = []
        self.deliveries: list[dict] = []
        self.faults: deque = deque()
        self.requests_log: list[dict] = []
        # §1.7 earning types: the OAS Earning-Type-List example's defaults (uuids invented).
        self.earning_types: dict[str, dict] = {}
        for name in DEFAULT_EARNING_TYPES:
            self.add_earning_type(COMPANY_UUID, name, custom=False)
        # OAS Pay-Schedule-List example shape; values ASSUMPTION (one semi-monthly schedule).
        self.pay_schedules = {COMPANY_UUID: [{
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "pay-schedule:" + COMPANY_UUID)),
            "version": "68934a3e9455fa72420237eb05902327", "frequency": "Twice per month",
            "anchor_pay_date": "2021-02-22", "anchor_end_of_pay_period": "2021-02-15", "day_1": 15,
            "day_2": 31, "name": "Staff", "custom_name": "Staff semi-monthly schedule",
            "auto_pilot": False, "active": True}]}
        # Sandbox: the next N event deliveries are dropped on the floor (a lost webhook).
        self.drop_deliveries = 0

    def add_earning_type(self, company_uuid: str, name: str, *, custom: bool) -> dict:
        """Add an earning type (§1.7 ``Earning-Type-List`` item ``{name, uuid, active}``)."""
        et = {"name": name, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"earning:{company_uuid}:{name}")),
              "active": True, "company_uuid": company_uuid, "custom": custom}
        self.earning_types[et["uuid"]] = et
        return et

    # ----------------------------------------------------------------- tokens and grants
    def new_grant(self, kind: str, company_uuid: str | None) -> str:
        """A new OAuth grant (rate-limit scope, §1.3) of ``kind`` ``company`` or ``system``."""
        gid = str(uuid.uuid4())
        self.grants[gid] = {"id": gid, "kind": kind, "company_uuid": company_uuid,
                            "created_at": self.now(), "window": deque()}
        return gid

    def issue_tokens(self, grant_id: str, *, with_refresh: bool, previous: str | None = None) -> dict:
        """Issue an access token (and a refresh token) on ``grant_id``; the token response body
        (§1.1 "Token response"; tokens URL-safe base64, §1.1 "Token format")."""
        grant = self.grants[grant_id]
        now = self.now()
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32) if with_refresh else None
        scope = COMPANY_SCOPE if grant["kind"] == "company" else SYSTEM_SCOPE
        self.access_tokens[access] = {"grant_id": grant_id, "created_at": now,
                                      "expires_at": now + float(self.config["access_token_ttl"]),
                                      "revoked": False, "used": False, "scope": scope,
                                      "refresh_token": refresh, "previous_access": previous}
        if refresh:
            self.refresh_tokens[refresh] = {"grant_id": grant_id, "used": False, "access": access}
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                "scope": scope, "created_at": int(now),
                "expires_in": int(self.config["access_token_ttl"])}

    # ----------------------------------------------------------------- events and delivery
    def record_event(self, event_type: str, entity_type: str, entity_uuid: str,
                     company_uuid: str) -> dict:
        """Append an event (OAS ``Event`` shape, §1.5 payload) and return it."""
        event = {"uuid": str(uuid.uuid4()), "event_type": event_type, "resource_type": "Company",
                 "resource_uuid": company_uuid, "entity_type": entity_type,
                 "entity_uuid": entity_uuid, "timestamp": int(self.now())}
        self.events.append(event)
        return event

    def subscribers(self, entity_type: str) -> list[dict]:
        """Verified subscriptions whose ``subscription_types`` include ``entity_type`` (§1.5)."""
        return [dict(s) for s in self.subscriptions.values()
                if s["status"] == "verified" and entity_type in s["subscription_types"]]


class Deliverer:
    """Delivers webhook POSTs in background threads with Gusto's retry rule (§1.5: non-2xx →
    retried up to 16 times with exponential backoff; here ``delivery_attempts`` in all, waiting
    ``delivery_backoff * 2**n`` seconds after failed attempt *n*)."""

    def __init__(self, world: GustoWorld):
        self.world = world

    def deliver(self, kind: str, event_uuid: str | None, subscription: dict, payload: dict,
                *, barrier: threading.Barrier | None = None) -> threading.Thread:
        """Start one delivery (with its retries) of ``payload`` to ``subscription`` and return
        the thread. ``kind`` is ``event`` or ``verification`` (for the delivery log)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        signature = sign(body, subscription["verification_token"])
        with self.world.lock:
            generation = self.world.generation
        thread = threading.Thread(target=self._run, name=f"gusto-delivery-{event_uuid or kind}",
                                  args=(kind, event_uuid, subscription, body, signature,
                                        generation, barrier), daemon=True)
        thread.start()
        return thread

    def _run(self, kind, event_uuid, subscription, body, signature, generation, barrier):
        cfg = self.world.config
        attempts = int(cfg["delivery_attempts"])
        if barrier is not None:
            try:
                barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
        for attempt in range(1, attempts + 1):
            with self.world.lock:
                if self.world.generation != generation:
                    return
            status, error = None, None
            try:
                resp = requests.post(subscription["url"], data=body, timeout=cfg["delivery_timeout"],
                                     headers={"Content-Type": "application/json",
                                              "X-Gusto-Signature": signature,
                                              "User-Agent": "Gusto-Webhooks-Emulator"})
                status = resp.status_code
            except requests.RequestException as exc:
                error = type(exc).__name__
            ok = status is not None and 200 <= status < 300
            with self.world.lock:
                if self.world.generation != generation:
                    return
                self.world.deliveries.append({
                    "kind": kind, "event_uuid": event_uuid,
                    "subscription_uuid": subscription["uuid"], "url": subscription["url"],
                    "attempt": attempt, "status": status, "error": error, "ok": ok,
                    "time": self.world.now(), "signature": signature})
            if ok:
                return
            if attempt < attempts:
                time.sleep(float(cfg["delivery_backoff"]) * (2 ** (attempt - 1)))
        if kind == "verification":
            with self.world.lock:
                sub = self.world.subscriptions.get(subscription["uuid"])
                if sub is not None and sub["status"] == "pending" and self.world.generation == generation:
                    # ASSUMPTION: a subscription whose URL never answered becomes "unreachable"
                    # (a status the OAS Webhook-Subscription enum lists).
                    sub["status"] = "unreachable"


def create_app(config: dict | None = None) -> Flask:
    """The Gusto emulator as a Flask app; ``config`` overrides :data:`DEFAULTS`.

    Serve it threaded (see :func:`sandbox.gusto.server.serve`). ``app.extensions["gusto"]`` is
    the :class:`GustoWorld` (tests may read it; HTTP is the interface).
    """
    cfg = dict(DEFAULTS)
    cfg.update(config or {})
    world = GustoWorld(cfg)
    deliverer = Deliverer(world)
    app = Flask("sandbox.gusto")
    app.extensions["gusto"] = world
    min_version = dt.date.fromisoformat(cfg["min_api_version"])

    # ------------------------------------------------------------------ helpers
    def gusto_json(body, status: int = 200, headers: dict | None = None) -> Response:
        resp = Response(json.dumps(body), status=status, mimetype="application/json")
        for k, v in (headers or {}).items():
            resp.headers[k] = str(v)
        return resp

    def oauth_error(status: int, error: str, description: str) -> Response:
        # ASSUMPTION: RFC 6749 §5.2 error body (Gusto runs Doorkeeper); wording ours.
        return gusto_json({"error": error, "error_description": description}, status)

    def request_json() -> dict:
        data = request.get_json(silent=True)
        if isinstance(data, dict):
            return data
        if request.form:
            # ASSUMPTION: form-encoded bodies accepted too (Doorkeeper accepts both).
            return request.form.to_dict()
        return {}

    def check_version() -> Response | None:
        """§1.2: absent → minimum version; older than minimum, in the future or not a date → 406."""
        raw = request.headers.get("X-Gusto-API-Version")
        if raw is None:
            g.api_version = cfg["min_api_version"]
            return None
        g.api_version = raw
        try:
            ok = bool(ISO_DATE.match(raw)) and min_version <= dt.date.fromisoformat(raw) <= world.today()
        except ValueError:
            ok = False
        if ok:
            return None
        return gusto_json({"name": "Invalid X-Gusto-API-Version Header",
                           "message": f"Invalid API Version `{raw}`. Version must be >= your "
                                      f"application's minimum API version `{cfg['min_api_version']}` "
                                      f"and not in the future."}, 406)

    def authenticate(kind: str):
        """Resolve the bearer token (§1.1) and charge the grant's rate budget (§1.3).

        Returns ``(token_record, grant)`` or a ready error response. ``kind`` is the token kind
        the route needs (``company`` or ``system``)."""
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        with world.lock:
            rec = world.access_tokens.get(token) if token else None
            if rec is None or rec["revoked"] or world.now() >= rec["expires_at"]:
                return gusto_json(UNAUTHORIZED, 401)     # §1.1: expired token → 401
            grant = world.grants[rec["grant_id"]]
            if not rec["used"]:
                rec["used"] = True
                # OAS /oauth/token: "The previous refresh_token will be revoked on the first usage
                # of the new access_token." ASSUMPTION: the previous access token goes with it
                # (Doorkeeper keeps both in one record).
                prev = world.access_tokens.get(rec["previous_access"] or "")
                if prev is not None:
                    prev["revoked"] = True
            if grant["kind"] != kind:
                return gusto_json(FORBIDDEN, 403)
            # §1.3 rolling window per grant.
            now = world.now()
            window, limit, span = grant["window"], int(cfg["rate_limit"]), float(cfg["rate_window"])
            while window and window[0] <= now - span:
                window.popleft()
            reset_at = (window[0] + span) if window else now + span
            if len(window) >= limit:
                retry_after = max(1, math.ceil(window[0] + span - now))
                g.rate_headers = {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": 0,
                                  "X-RateLimit-Reset": int(math.ceil(reset_at))}
                return gusto_json(RATE_LIMITED, 429, {"Retry-After": retry_after})
            window.append(now)
            reset_at = window[0] + span
            # ASSUMPTION: X-RateLimit-Reset as epoch seconds (the doc says "datetime", no format).
            g.rate_headers = {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": limit - len(window),
                              "X-RateLimit-Reset": int(math.ceil(reset_at))}
            return dict(rec), dict(grant, window=None)

    def company_guard(company_uuid: str | None, grant: dict) -> Response | None:
        """Strict access (§1.1): a company token reaches only its own company.
        ASSUMPTION: another company's resources answer 404 (the spec's Not-Found body), not 403."""
        if company_uuid is None or company_uuid not in world.companies \
                or grant["company_uuid"] != company_uuid:
            return gusto_json(NOT_FOUND, 404)
        return None

    def company_access(company_uuid: str) -> Response | None:
        """A company token for ``company_uuid`` (§1.1 strict access), or the refusal to answer."""
        res = authenticate("company")
        if isinstance(res, Response):
            return res
        return company_guard(company_uuid, res[1])

    def int_arg(name: str, default: int | None) -> int | None:
        raw = request.args.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            return -1

    def paginate(items: list, *, forced: bool) -> tuple[list, dict] | Response:
        """§1.4 pagination (``page``/``per``, default 25) with ``X-Page``, ``X-Total-Count``,
        ``X-Total-Pages``, ``X-Per-Page``. OAS pageParam: "When unspecified, will load all objects
        unless endpoint forces pagination". ASSUMPTION: ``per`` above 100 is clamped to 100."""
        page = int_arg("page", None)
        per = int_arg("per", None)
        if (page is not None and page < 1) or (per is not None and per < 1):
            return gusto_json(_error("page", "invalid_attribute_value",
                                     "page and per must be positive integers"), 422)
        total = len(items)
        if page is None and not forced:
            per_eff = max(total, 1) if per is None else min(per, 100)
            if per is None:
                return items, {"X-Page": 1, "X-Per-Page": per_eff, "X-Total-Count": total,
                               "X-Total-Pages": 1}
            page = 1
        page = page or 1
        per_eff = min(per or 25, 100)
        pages = max(1, math.ceil(total / per_eff))
        chunk = items[(page - 1) * per_eff: page * per_eff]
        return chunk, {"X-Page": page, "X-Per-Page": per_eff, "X-Total-Count": total,
                       "X-Total-Pages": pages}

    def includes() -> set[str]:
        values = set()
        for raw in request.args.getlist("include"):
            values.update(v.strip() for v in raw.split(",") if v.strip())
        return values

    def render_payroll(p: dict, inc: set[str], *, show: bool) -> dict:
        """The payroll as GET returns it, honouring ``include`` as the OAS describes it:
        ``employee_compensations`` and ``totals`` only for calculated or processed payrolls
        (path description); ``company_taxes`` only with ``include=taxes`` and
        ``payroll_taxes`` only with ``include=payroll_taxes`` (Payroll-Show property
        descriptions); per compensation, ``taxes`` only with ``taxes`` and ``benefits`` only
        with ``benefits`` (Payroll-Employee-Compensations-Included); ``deductions`` "included by
        default for regular payrolls in version v2025-06-15 and later" (…-Type), else only with
        ``include=deductions``. ASSUMPTION: ``payroll_status_meta`` only with its include value.
        The list endpoint (``show=False``) returns no compensations and totals only on request
        (ASSUMPTION, after the OAS Payroll-List example)."""
        out = copy.deepcopy(p)
        calculated = bool(out.get("processed")) or bool(out.get("calculated_at"))
        if "taxes" not in inc or not calculated:
            out.pop("company_taxes", None)
        if "payroll_taxes" not in inc or not calculated:
            out.pop("payroll_taxes", None)
        if "payroll_status_meta" not in inc:
            out.pop("payroll_status_meta", None)
        if not calculated or (not show and "totals" not in inc):
            out.pop("totals", None)
        if not show or not calculated:
            out.pop("employee_compensations", None)
            if not show:
                out.pop("credit_blockers", None)
                out.pop("submission_blockers", None)
            return out
        deductions_default = not out.get("off_cycle") and g.api_version >= "2025-06-15"
        for comp in out.get("employee_compensations", []):
            if "taxes" not in inc:
                comp.pop("taxes", None)
            if "benefits" not in inc:
                comp.pop("benefits", None)
            if "deductions" not in inc and not deductions_default:
                comp.pop("deductions", None)
        return out

    # ------------------------------------------------------------------ request hooks
    @app.before_request
    def _before():
        g.rate_headers = {}
        g.api_version = request.headers.get("X-Gusto-API-Version") or cfg["min_api_version"]
        if request.path.startswith("/_sandbox/"):
            return None
        raw = request.get_data(cache=True, as_text=True)
        try:
            body_json = json.loads(raw) if raw else None
        except ValueError:
            body_json = None
        with world.lock:
            g.log_entry = {
                "time": world.now(), "method": request.method, "path": request.path,
                "query": {k: request.args.getlist(k) for k in request.args.keys()},
                "query_string": request.query_string.decode(),
                "headers": {k: request.headers[k] for k in ("Authorization", "X-Gusto-API-Version",
                                                            "Content-Type", "User-Agent")
                            if k in request.headers},
                "body": raw, "json": body_json, "status": None}
            world.requests_log.append(g.log_entry)
            fault = None
            if request.path.startswith("/v1/") and world.faults:
                fault = world.faults[0]
                fault["remaining"] -= 1
                if fault["remaining"] <= 0:
                    world.faults.popleft()
        if fault is not None:
            if fault["status"] == 429:
                return gusto_json(RATE_LIMITED, 429, {"Retry-After": fault.get("retry_after", 1)})
            return gusto_json(SERVER_ERROR, fault["status"])
        if request.path.startswith("/v1/"):
            return check_version()
        return None

    @app.after_request
    def _after(resp: Response) -> Response:
        if not request.path.startswith("/_sandbox/"):
            resp.headers["X-Gusto-API-Version"] = g.get("api_version") or cfg["min_api_version"]
            for k, v in (g.get("rate_headers") or {}).items():
                resp.headers[k] = str(v)
            entry = g.get("log_entry")
            if entry is not None:
                with world.lock:
                    entry["status"] = resp.status_code
        return resp

    # ------------------------------------------------------------------ OAuth (§1.1)
    def authorize_params(src) -> tuple[dict, Response | None]:
        params = {k: src.get(k, "") for k in ("client_id", "redirect_uri", "state", "response_type")}
        if params["client_id"] != cfg["client_id"]:
            return params, Response("<h1>Unknown client_id</h1>", 400, mimetype="text/html")
        if not params["redirect_uri"] or (cfg["redirect_uris"] is not None
                                          and params["redirect_uri"] not in cfg["redirect_uris"]):
            return params, Response("<h1>Invalid redirect_uri</h1>", 400, mimetype="text/html")
        return params, None

    def grant_code(params: dict, company_uuid: str) -> Response:
        code = secrets.token_urlsafe(32)
        with world.lock:
            world.codes[code] = {"client_id": params["client_id"], "redirect_uri": params["redirect_uri"],
                                 "company_uuid": company_uuid, "used": False,
                                 "expires_at": world.now() + float(cfg["code_ttl"])}
        query = {"code": code}
        if params.get("state"):
            query["state"] = params["state"]
        return redirect(_with_query(params["redirect_uri"], query), code=302)

    @app.get("/oauth/authorize")
    def oauth_authorize_page():
        """Consent page (§1.1 Authorize URL). ``auto_approve`` redirects at once."""
        params, err = authorize_params(request.args)
        if err is not None:
            return err
        if params["response_type"] != "code":
            return redirect(_with_query(params["redirect_uri"], {
                "error": "unsupported_response_type", "state": params["state"]}), code=302)
        if cfg["auto_approve"]:
            return grant_code(params, COMPANY_UUID)
        with world.lock:
            companies = list(world.companies.values())
        options = "".join(
            f'<label><input type="radio" name="company_uuid" value="{html.escape(c["uuid"])}"'
            f'{" checked" if i == 0 else ""}> {html.escape(c["name"])}</label><br>'
            for i, c in enumerate(companies))
        hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(params[k])}">'
                         for k in ("client_id", "redirect_uri", "state"))
        page = ("<!doctype html><title>Gusto (sandbox) - authorize</title>"
                "<h1>Allow access to your Gusto account?</h1>"
                '<form method="post" action="/oauth/authorize">'
                f"{hidden}{options}<button type=\"submit\">Allow</button></form>")
        return Response(page, 200, mimetype="text/html")

    @app.post("/oauth/authorize")
    def oauth_authorize_allow():
        """The consent form's "Allow": 302 to ``redirect_uri?code=…&state=…``."""
        params, err = authorize_params(request.form)
        if err is not None:
            return err
        company_uuid = request.form.get("company_uuid") or COMPANY_UUID
        if company_uuid not in world.companies:
            return Response("<h1>Unknown company</h1>", 400, mimetype="text/html")
        return grant_code(params, company_uuid)

    @app.post("/oauth/token")
    def oauth_token():
        """§1.1 Token URL: ``authorization_code``, ``refresh_token``, ``system_access``."""
        if "client_secret" in request.args:
            # §1.1 "client_secret in URL → 400". ASSUMPTION: body wording.
            return oauth_error(400, "invalid_request", "client_secret must not be sent in the URL.")
        body = request_json()
        if body.get("client_id") != cfg["client_id"] or body.get("client_secret") != cfg["client_secret"]:
            return oauth_error(401, "invalid_client", "Client authentication failed.")
        grant_type = body.get("grant_type")
        with world.lock:
            now = world.now()
            if grant_type == "authorization_code":
                rec = world.codes.get(body.get("code") or "")
                if rec is None or rec["used"] or now >= rec["expires_at"] \
                        or rec["redirect_uri"] != body.get("redirect_uri"):
                    return oauth_error(400, "invalid_grant", "The authorization code is invalid, "
                                       "expired, already used or was issued to another redirect_uri.")
                rec["used"] = True
                gid = world.new_grant("company", rec["company_uuid"])
                tokens = world.issue_tokens(gid, with_refresh=True)
                # §1.5: company.provisioned is "always fired on OAuth connect".
                world.record_event("company.provisioned", "Company", rec["company_uuid"],
                                   rec["company_uuid"])
                event = world.events[-1]
                subs = world.subscribers("Company")
            elif grant_type == "refresh_token":
                rec = world.refresh_tokens.get(body.get("refresh_token") or "")
                if rec is None or rec["used"]:
                    # ASSUMPTION (stricter than the doc): a refresh token is revoked the moment it
                    # is exchanged, not on first use of the new access token — makes races visible.
                    return oauth_error(400, "invalid_grant", "The refresh token is invalid, "
                                       "revoked or was already used.")
                rec["used"] = True
                tokens = world.issue_tokens(rec["grant_id"], with_refresh=True, previous=rec["access"])
                event, subs = None, []
            elif grant_type == "system_access":
                # ASSUMPTION: every system token of the application shares one grant (one budget).
                gid = next((k for k, v in world.grants.items() if v["kind"] == "system"), None) \
                    or world.new_grant("system", None)
                tokens = world.issue_tokens(gid, with_refresh=False)
                event, subs = None, []
            else:
                return oauth_error(400, "unsupported_grant_type",
                                   f"grant_type {grant_type!r} is not supported.")
        for sub in subs:
            deliverer.deliver("event", event["uuid"], sub, event)
        # OAS Authentication x-examples: system token carries "refresh_token": null.
        return gusto_json(tokens, 200)

    @app.post("/oauth/revoke")
    def oauth_revoke():
        """§1.1 Revoke: ``{client_id, client_secret, token}`` → 200. The token can no longer be
        used nor refreshed (OAS). ASSUMPTION: an unknown token also answers 200 (RFC 7009)."""
        body = request_json()
        if body.get("client_id") != cfg["client_id"] or body.get("client_secret") != cfg["client_secret"]:
            return oauth_error(401, "invalid_client", "Client authentication failed.")
        with world.lock:
            rec = world.access_tokens.get(body.get("token") or "")
            if rec is not None:
                rec["revoked"] = True
                if rec["refresh_token"] in world.refresh_tokens:
                    world.refresh_tokens[rec["refresh_token"]]["used"] = True
        return gusto_json({}, 200)

    @app.get("/v1/token_info")
    def token_info():
        """§1.1 Token introspection (OAS ``Token-Info``)."""
        header = request.headers.get("Authorization", "")
        with world.lock:
            rec = world.access_tokens.get(header[7:].strip() if header.lower().startswith("bearer ") else "")
            kind = world.grants[rec["grant_id"]]["kind"] if rec else None
        res = authenticate(kind or "company")
        if isinstance(res, Response):
            return res
        rec, grant = res
        if grant["kind"] == "system":
            return gusto_json({"scope": rec["scope"], "resource": {"type": "Oauth::Application",
                                                                    "uuid": APPLICATION_UUID},
                               "resource_owner": None})
        return gusto_json({"scope": rec["scope"],
                           "resource": {"type": "Company", "uuid": grant["company_uuid"]},
                           "resource_owner": {"type": "CompanyAdmin", "uuid": ADMIN_UUID}})

    # ------------------------------------------------------------------ payrolls (§1.6)
    @app.get("/v1/companies/<company_id>/payrolls/<payroll_id>")
    def payroll_show(company_id, payroll_id):
        """OAS ``get-v1-companies-company_id-payrolls-payroll_id`` (§1.6): max 100
        compensations per page. ASSUMPTION: without ``page`` all compensations come back."""
        refused = company_access(company_id)
        if refused is not None:
            return refused
        with world.lock:
            p = world.payrolls.get(payroll_id)
            p = copy.deepcopy(p) if p is not None and p.get("company_uuid") == company_id else None
        if p is None:
            return gusto_json(NOT_FOUND, 404)
        out = render_payroll(p, includes(), show=True)
        comps = out.get("employee_compensations")
        headers = {}
        if comps is not None:
            paged = paginate(comps, forced=False)
            if isinstance(paged, Response):
                return paged
            out["employee_compensations"], headers = paged
        return gusto_json(out, 200, headers)

    @app.get("/v1/companies/<company_id>/payrolls")
    def payroll_list(company_id):
        """OAS ``get-v1-companies-company_id-payrolls`` (§1.6): defaults processed, regular,
        past 6 months; start/end filter the pay period (ASSUMPTION: period start ≥ start_date
        and period end ≤ end_date); dates more than 1 year apart → 422; paginated, 25 default,
        100 max (pagination forced)."""
        refused = company_access(company_id)
        if refused is not None:
            return refused

        def csv(name):
            vals = []
            for raw in request.args.getlist(name):
                vals.extend(v.strip() for v in raw.split(",") if v.strip())
            return vals

        statuses = set(csv("processing_statuses"))
        if not statuses:
            processed_flag = request.args.get("processed")
            statuses = {"unprocessed"} if processed_flag == "false" else {"processed"}
        types = set(csv("payroll_types")) or {"regular"}
        if request.args.get("include_off_cycle") == "true":
            types.add("off_cycle")
        try:
            end = dt.date.fromisoformat(request.args["end_date"]) if request.args.get("end_date") \
                else world.today()
            start = dt.date.fromisoformat(request.args["start_date"]) if request.args.get("start_date") \
                else end - dt.timedelta(days=183)
        except ValueError:
            return gusto_json(_error("start_date", "invalid_attribute_value",
                                     "start_date and end_date must be dates (YYYY-MM-DD)."), 422)
        if (end - start).days > 366:
            return gusto_json(_error("base", "invalid_operation",
                                     "start_date and end_date can't be more than 1 year apart."), 422)
        with world.lock:
            items = [copy.deepcopy(p) for p in world.payrolls.values()
                     if p.get("company_uuid") == company_id]
        selected = []
        for p in items:
            status = "processed" if p.get("processed") else "unprocessed"
            ptype = "external" if p.get("external") else ("off_cycle" if p.get("off_cycle") else "regular")
            period = p.get("pay_period") or {}
            try:
                ps = dt.date.fromisoformat(period.get("start_date"))
                pe = dt.date.fromisoformat(period.get("end_date"))
            except (TypeError, ValueError):
                continue
            if status in statuses and ptype in types and ps >= start and pe <= end:
                selected.append(p)
        desc = request.args.get("sort_order") == "desc"
        selected.sort(key=lambda p: (p["pay_period"]["start_date"], p.get("check_date") or ""), reverse=desc)
        inc = includes()
        rendered = [render_payroll(p, inc, show=False) for p in selected]
        paged = paginate(rendered, forced=True)
        if isinstance(paged, Response):
            return paged
        return gusto_json(paged[0], 200, paged[1])

    # ------------------------------------------------------------------ reference data (§1.7)
    @app.get("/v1/companies/<company_id>/earning_types")
    def earning_type_list(company_id):
        """OAS ``get-v1-companies-company_id-earning_types``: ``{"default": [...], "custom": [...]}``
        of ``{name, uuid, active}``."""
        refused = company_access(company_id)
        if refused is not None:
            return refused
        with world.lock:
            items = [dict(e) for e in world.earning_types.values() if e["company_uuid"] == company_id]
        pick = lambda custom: [{k: e[k] for k in ("name", "uuid", "active")} for e in items  # noqa: E731
                               if e["custom"] == custom]
        return gusto_json({"default": pick(False), "custom": pick(True)})

    @app.get("/v1/companies/<company_id>/pay_schedules")
    def pay_schedule_list(company_id):
        """OAS ``get-v1-companies-company_id-pay_schedules`` (``Pay-Schedule-List``)."""
        refused = company_access(company_id)
        if refused is not None:
            return refused
        with world.lock:
            items = copy.deepcopy(world.pay_schedules.get(company_id, []))
        paged = paginate(items, forced=False)
        if isinstance(paged, Response):
            return paged
        return gusto_json(paged[0], 200, paged[1])

    # ------------------------------------------------------------------ employees (§1.7)
    @app.get("/v1/companies/<company_id>/employees")
    def employee_list(company_id):
        """OAS ``get-v1-companies-company_id-employees``: all employees (onboarding, active,
        terminated); ``terminated=true|false`` filters; paginated when ``page`` is given."""
        refused = company_access(company_id)
        if refused is not None:
            return refused
        with world.lock:
            items = [copy.deepcopy(e) for e in world.employees.values()
                     if e["company_uuid"] == company_id]
        term = request.args.get("terminated")
        if term in ("true", "false"):
            items = [e for e in items if e["terminated"] == (term == "true")]
        paged = paginate(items, forced=False)
        if isinstance(paged, Response):
            return paged
        return gusto_json(paged[0], 200, paged[1])

    @app.get("/v1/employees/<employee_id>")
    def employee_show(employee_id):
        """OAS ``get-v1-employees-employee_id``; another company's employee → 404 (ASSUMPTION)."""
        res = authenticate("company")
        if isinstance(res, Response):
            return res
        _, grant = res
        with world.lock:
            emp = copy.deepcopy(world.employees.get(employee_id))
        if emp is None or emp["company_uuid"] != grant["company_uuid"]:
            return gusto_json(NOT_FOUND, 404)
        return gusto_json(emp)

    # ------------------------------------------------------------------ webhooks (§1.5)
    def public_sub(sub: dict) -> dict:
        return {k: sub[k] for k in ("uuid", "url", "status", "subscription_types")}

    def check_types(body: dict) -> Response | None:
        types = body.get("subscription_types")
        if not isinstance(types, list) or not types or any(t not in SUBSCRIPTION_TYPES for t in types):
            return gusto_json(_error("subscription_types", "invalid_attribute_value",
                                     "Subscription types must be a non-empty list of: "
                                     + ", ".join(SUBSCRIPTION_TYPES)), 422)
        return None

    def send_verification(sub: dict) -> None:
        deliverer.deliver("verification", None, sub, {"verification_token": sub["verification_token"]})

    @app.route("/v1/webhook_subscriptions", methods=["GET", "POST"])
    def subscriptions():
        """List / create (system token). Create answers 201 ``pending`` and POSTs
        ``{"verification_token": …}`` to the URL (§1.5), signed and retried like events."""
        res = authenticate("system")
        if isinstance(res, Response):
            return res
        if request.method == "GET":
            with world.lock:
                return gusto_json([public_sub(s) for s in world.subscriptions.values()])
        body = request_json()
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return gusto_json(_error("url", "invalid_attribute_value", "Url is invalid"), 422)
        bad = check_types(body)
        if bad is not None:
            return bad
        sub = {"uuid": str(uuid.uuid4()), "url": url, "status": "pending",
               "subscription_types": list(dict.fromkeys(body["subscription_types"])),
               "verification_token": str(uuid.uuid4())}
        with world.lock:
            world.subscriptions[sub["uuid"]] = sub
            snapshot = dict(sub)
        send_verification(snapshot)
        return gusto_json(public_sub(snapshot), 201)

    @app.route("/v1/webhook_subscriptions/<sid>", methods=["GET", "PUT", "DELETE"])
    def subscription(sid):
        """Show / update ``subscription_types`` / delete (204) one subscription (OAS)."""
        res = authenticate("system")
        if isinstance(res, Response):
            return res
        with world.lock:
            sub = world.subscriptions.get(sid)
            if sub is None:
                return gusto_json(NOT_FOUND, 404)
            if request.method == "GET":
                return gusto_json(public_sub(sub))
            if request.method == "DELETE":
                del world.subscriptions[sid]
                return Response(status=204)
        body = request_json()
        bad = check_types(body)
        if bad is not None:
            return bad
        with world.lock:
            sub = world.subscriptions.get(sid)
            if sub is None:
                return gusto_json(NOT_FOUND, 404)
            sub["subscription_types"] = list(dict.fromkeys(body["subscription_types"]))
            return gusto_json(public_sub(sub))

    @app.put("/v1/webhook_subscriptions/<sid>/verify")
    def subscription_verify(sid):
        """``{verification_token}`` → ``verified``; a wrong token → 422 with the OAS
        ``invalid_token`` example body."""
        res = authenticate("system")
        if isinstance(res, Response):
            return res
        token = request_json().get("verification_token")
        with world.lock:
            sub = world.subscriptions.get(sid)
            if sub is None:
                return gusto_json(NOT_FOUND, 404)
            if not isinstance(token, str) or not hmac.compare_digest(token, sub["verification_token"]):
                return gusto_json(_error("base", "invalid_attribute_value", "Invalid verification token"), 422)
            sub["status"] = "verified"
            return gusto_json(public_sub(sub))

    @app.get("/v1/webhook_subscriptions/<sid>/request_verification_token")
    def subscription_resend(sid):
        """Re-POST the verification token to the URL (OAS ``Webhook-Verification-Token-Response``)."""
        res = authenticate("system")
        if isinstance(res, Response):
            return res
        with world.lock:
            sub = world.subscriptions.get(sid)
            snapshot = dict(sub) if sub else None
        if snapshot is None:
            return gusto_json(NOT_FOUND, 404)
        send_verification(snapshot)
        return gusto_json({"message": "Success! The subscriber will be notified with the verification token"})

    @app.get("/v1/events")
    def events():
        """OAS ``/v1/events`` (§1.5 poll fallback): last 30 days; ``starting_after_uuid``
        (exclusive cursor), ``limit`` 1..100 default 25, ``event_type`` exact or wildcard,
        ``resource_uuid``, ``sort_order`` asc (default) | desc. ASSUMPTION: a bad limit or an
        unknown cursor → 422."""
        res = authenticate("system")
        if isinstance(res, Response):
            return res
        limit = int_arg("limit", 25)
        if limit is None or not 1 <= limit <= 100:
            return gusto_json(_error("limit", "invalid_attribute_value",
                                     "limit must be between 1 and 100"), 422)
        order = request.args.get("sort_order") or "asc"
        if order not in ("asc", "desc"):
            return gusto_json(_error("sort_order", "invalid_attribute_value",
                                     "sort_order must be asc or desc"), 422)
        with world.lock:
            cutoff = world.now() - 30 * 86400
            items = [dict(e) for e in world.events if e["timestamp"] >= cutoff]
        # stable sort: ties keep creation order
        items = sorted(items, key=lambda e: e["timestamp"]) if order == "asc" \
            else sorted(items[::-1], key=lambda e: -e["timestamp"])
        etype, resource = request.args.get("event_type"), request.args.get("resource_uuid")
        if etype:
            items = [e for e in items if fnmatch.fnmatchcase(e["event_type"], etype)]
        if resource:
            items = [e for e in items if e["resource_uuid"] == resource]
        after = request.args.get("starting_after_uuid")
        if after:
            idx = next((i for i, e in enumerate(items) if e["uuid"] == after), None)
            if idx is None:
                return gusto_json(_error("starting_after_uuid", "invalid_attribute_value",
                                         "No event found with the given uuid"), 422)
            items = items[idx + 1:]
        return gusto_json(items[:limit])

    # ------------------------------------------------------------------ sandbox admin (not Gusto)
    def emit(event_type: str, entity_type: str, entity_uuid: str, company_uuid: str) -> dict:
        with world.lock:
            event = world.record_event(event_type, entity_type, entity_uuid, company_uuid)
            subs = world.subscribers(entity_type)
            if subs and world.drop_deliveries > 0:  # sandbox fault: this webhook is lost
                world.drop_deliveries -= 1
                world.deliveries.append({"kind": "event", "event_uuid": event["uuid"], "status": "dropped",
                                         "attempt": 0, "time": world.now()})
                subs = []
        for sub in subs:
            deliverer.deliver("event", event["uuid"], sub, event)
        return event

    @app.post("/_sandbox/events")
    def sb_event():
        """Sandbox: record an event (shows in /v1/events) and deliver it; returns it (201)."""
        body = request.get_json(force=True) or {}
        missing = [k for k in ("event_type", "entity_type", "entity_uuid") if not body.get(k)]
        if missing:
            return jsonify({"error": f"missing {', '.join(missing)}"}), 400
        event = emit(body["event_type"], body["entity_type"], body["entity_uuid"],
                     body.get("company_uuid") or COMPANY_UUID)
        return jsonify(event), 201

    @app.post("/_sandbox/payrolls")
    def sb_payroll_create():
        """Sandbox: a synthetic payroll cloned from the example with ``compensations`` entries
        (``{"compensations": N, "processed": true, "start_date", "end_date", "check_date",
        "off_cycle", "company_uuid", "totals": {key: amount}, "earnings": [{"name", "amount"}]}``);
        totals are the example's (not re-added) with the given keys replaced; each of ``earnings``
        is a fixed compensation added to the first employee, its amount added to their and the
        totals' gross and net pay (so the payroll still reconciles)."""
        body = request.get_json(force=True) or {}
        base = load_example_payroll()
        pid = str(uuid.uuid4())
        template = base["employee_compensations"][0]
        n = int(body.get("compensations", 3))
        comps = []
        for i in range(n):
            c = copy.deepcopy(template)
            c["employee_uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{pid}:{i}"))
            comps.append(c)
        processed = bool(body.get("processed", True))
        base.update({"payroll_uuid": pid, "uuid": pid, "employee_compensations": comps,
                     "processed": processed, "off_cycle": bool(body.get("off_cycle", False)),
                     "company_uuid": body.get("company_uuid") or COMPANY_UUID,
                     "check_date": body.get("check_date") or base["check_date"],
                     "processed_date": base["processed_date"] if processed else None})
        for extra in body.get("earnings") or []:  # extra fixed compensations on the first employee
            amount = Decimal(str(extra["amount"]))
            comps[0]["fixed_compensations"].append({"name": extra["name"], "amount": f"{amount:.2f}",
                                                    "job_uuid": comps[0]["fixed_compensations"][0]["job_uuid"]})
            for k in ("gross_pay", "net_pay", "check_amount"):
                comps[0][k] = f"{Decimal(comps[0][k]) + amount:.2f}"
            for k in ("gross_pay", "net_pay", "check_amount", "company_debit", "net_pay_debit"):
                base["totals"][k] = f"{Decimal(base['totals'][k]) + amount:.2f}"
        if isinstance(body.get("totals"), dict):  # tests: totals that do not reconcile, etc.
            base["totals"] = dict(base["totals"], **{k: str(v) for k, v in body["totals"].items()})
        base["pay_period"] = dict(base["pay_period"],
                                  start_date=body.get("start_date") or base["pay_period"]["start_date"],
                                  end_date=body.get("end_date") or base["pay_period"]["end_date"])
        with world.lock:
            world.payrolls[pid] = base
        return jsonify({"payroll_uuid": pid, "compensations": n}), 201

    @app.post("/_sandbox/payrolls/<pid>/process")
    def sb_process(pid):
        """Sandbox: mark a payroll processed and emit ``payroll.processed`` (§1.5: the demo
        never fires ``payroll.paid``)."""
        with world.lock:
            p = world.payrolls.get(pid)
            if p is None:
                return jsonify(NOT_FOUND), 404
            p["processed"] = True
            p["processed_date"] = world.today().isoformat()
            p["calculated_at"] = p.get("calculated_at") or dt.datetime.fromtimestamp(
                world.now(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            p["processing_request"] = {"status": "submit_success", "errors": []}
            company = p["company_uuid"]
        event = emit("payroll.processed", "Payroll", pid, company)
        return jsonify({"payroll_uuid": pid, "event": event})

    @app.post("/_sandbox/employees")
    def sb_employees():
        """Sandbox: add ``count`` synthetic employees to ``company_uuid`` (paging tests)."""
        body = request.get_json(force=True) or {}
        company = body.get("company_uuid") or COMPANY_UUID
        created = []
        with world.lock:
            start = len(world.employees)
            for i in range(int(body.get("count", 1))):
                uid = str(uuid.uuid4())
                world.employees[uid] = _employee(uid, company, f"Synthetic{start + i}", "Worker",
                                                 f"s{start + i:05d}", "Associate", "2022-01-03", None)
                created.append(uid)
        return jsonify({"created": created}), 201

    @app.post("/_sandbox/employees/hire")
    def sb_hire():
        """Sandbox: hire people and emit ``employee.created`` for each (§1.5 employee events).
        Body ``{"employees": [{"first_name", "last_name", "title", "department", "hire_date",
        "employee_code"}], "company_uuid"}`` or ``{"count": N, ...defaults}``."""
        body = request.get_json(force=True) or {}
        company = body.get("company_uuid") or COMPANY_UUID
        specs = body.get("employees") or [
            {"first_name": f"Hire{i:04d}", "last_name": body.get("last_name", "Bulk"),
             "title": body.get("title", "Associate"), "department": body.get("department", "Operations")}
            for i in range(int(body.get("count", 1)))]
        created = []
        with world.lock:
            for spec in specs:
                uid = str(uuid.uuid4())
                emp = _employee(uid, company, spec.get("first_name", "New"), spec.get("last_name", "Hire"),
                                spec.get("employee_code") or uid.replace("-", "")[:6],
                                spec.get("title", "Associate"),
                                spec.get("hire_date") or world.today().isoformat(), spec.get("department"))
                world.employees[uid] = emp
                created.append(uid)
        events = [emit("employee.created", "Employee", uid, company) for uid in created]
        return jsonify({"created": created, "events": [e["uuid"] for e in events]}), 201

    @app.patch("/_sandbox/employees/<employee_id>")
    def sb_employee_update(employee_id):
        """Sandbox: change an employee (``first_name``, ``last_name``, ``email``, ``department``;
        a job change: ``title``) and emit ``employee.updated``. ASSUMPTION: Gusto fires
        ``employee.updated`` for a job change too (its EmployeeJobCompensation events are not
        emulated)."""
        body = request.get_json(force=True) or {}
        with world.lock:
            emp = world.employees.get(employee_id)
            if emp is None:
                return jsonify(NOT_FOUND), 404
            for key in ("first_name", "last_name", "email", "department"):
                if key in body:
                    emp[key] = body[key]
            if "title" in body:
                emp["jobs"][0]["title"] = body["title"]
            emp["version"] = hashlib.md5(json.dumps(emp, sort_keys=True).encode()).hexdigest()
            company = emp["company_uuid"]
        event = emit("employee.updated", "Employee", employee_id, company)
        return jsonify({"employee": employee_id, "event": event["uuid"]})

    @app.post("/_sandbox/employees/<employee_id>/terminate")
    def sb_terminate(employee_id):
        """Sandbox: create a termination (``effective_date``, default today) and emit
        ``employee.terminated``; when it is already effective, ``employee.terminated_effective``
        too (§1.5 employee events). ``terminated`` turns true once effective."""
        body = request.get_json(force=True) or {}
        with world.lock:
            emp = world.employees.get(employee_id)
            if emp is None:
                return jsonify(NOT_FOUND), 404
            effective = body.get("effective_date") or world.today().isoformat()
            emp["terminations"] = [{"uuid": str(uuid.uuid4()), "version": secrets.token_hex(16),
                                    "employee_uuid": employee_id, "active": True, "cancelable": True,
                                    "effective_date": effective, "run_termination_payroll": False}]
            now_effective = dt.date.fromisoformat(effective) <= world.today()
            emp["terminated"] = now_effective
            company = emp["company_uuid"]
        events = [emit("employee.terminated", "Employee", employee_id, company)]
        if now_effective:
            events.append(emit("employee.terminated_effective", "Employee", employee_id, company))
        return jsonify({"employee": employee_id, "events": [e["uuid"] for e in events]})

    @app.post("/_sandbox/employees/<employee_id>/rehire")
    def sb_rehire(employee_id):
        """Sandbox: rehire (``hire_date``, default today): terminations inactive, a new hire
        date on the primary job; emits ``employee.rehired`` (§1.5 employee events)."""
        body = request.get_json(force=True) or {}
        with world.lock:
            emp = world.employees.get(employee_id)
            if emp is None:
                return jsonify(NOT_FOUND), 404
            for t in emp["terminations"]:
                t["active"] = False
            emp["terminated"] = False
            emp["jobs"][0]["hire_date"] = body.get("hire_date") or world.today().isoformat()
            company = emp["company_uuid"]
        event = emit("employee.rehired", "Employee", employee_id, company)
        return jsonify({"employee": employee_id, "event": event["uuid"]})

    @app.post("/_sandbox/earning_types")
    def sb_earning_type():
        """Sandbox: add a custom earning type ``{"name"}`` (as ``POST …/earning_types`` would)."""
        body = request.get_json(force=True) or {}
        if not body.get("name"):
            return jsonify({"error": "name required"}), 400
        with world.lock:
            et = world.add_earning_type(body.get("company_uuid") or COMPANY_UUID, body["name"], custom=True)
        return jsonify(et), 201

    @app.post("/_sandbox/payrolls/<pid>/<action>")
    def sb_payroll_lifecycle(pid, action):
        """Sandbox: ``reverse`` or ``cancel`` a processed payroll and emit ``payroll.reversed`` /
        ``payroll.cancelled`` (§1.5 payroll events). ASSUMPTION: the payroll keeps its body; a
        ``reversed``/``cancelled`` flag is added for the emulator's own bookkeeping."""
        if action not in ("reverse", "cancel"):
            return jsonify(NOT_FOUND), 404
        with world.lock:
            p = world.payrolls.get(pid)
            if p is None:
                return jsonify(NOT_FOUND), 404
            p["reversed" if action == "reverse" else "cancelled"] = True
            company = p["company_uuid"]
        event = emit("payroll.reversed" if action == "reverse" else "payroll.cancelled", "Payroll", pid, company)
        return jsonify({"payroll_uuid": pid, "event": event})

    @app.post("/_sandbox/deliveries/drop")
    def sb_drop():
        """Sandbox: the next ``count`` events are recorded (they show in /v1/events) but their
        webhooks are never delivered: a webhook lost on the floor."""
        body = request.get_json(force=True) or {}
        with world.lock:
            world.drop_deliveries = int(body.get("count", 1))
        return jsonify({"drop": world.drop_deliveries}), 201

    @app.post("/_sandbox/deliveries/redeliver/<event_uuid>")
    def sb_redeliver(event_uuid):
        """Sandbox: deliver the same event ``times`` times (``concurrent=1``: all at once behind
        a barrier); waits up to ``wait`` seconds (default 30) for the deliveries to finish."""
        times = int(request.args.get("times", 1))
        concurrent = request.args.get("concurrent") in ("1", "true")
        wait = float(request.args.get("wait", 30))
        with world.lock:
            event = next((dict(e) for e in world.events if e["uuid"] == event_uuid), None)
            subs = world.subscribers(event["entity_type"]) if event else []
        if event is None:
            return jsonify(NOT_FOUND), 404
        threads = []
        for sub in subs:
            barrier = threading.Barrier(times) if concurrent and times > 1 else None
            for _ in range(times):
                t = deliverer.deliver("event", event_uuid, sub, event, barrier=barrier)
                if not concurrent:
                    t.join(wait)
                threads.append(t)
        deadline = time.monotonic() + wait
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return jsonify({"event_uuid": event_uuid, "deliveries": len(threads),
                        "subscriptions": len(subs)})

    @app.get("/_sandbox/deliveries")
    def sb_deliveries():
        """Sandbox: the delivery log (kind, event_uuid, subscription_uuid, attempt, status, time)."""
        with world.lock:
            return jsonify(list(world.deliveries))

    @app.post("/_sandbox/faults")
    def sb_faults():
        """Sandbox: the next ``count`` /v1 calls answer ``status`` (429 with Retry-After
        ``retry_after``, default 1)."""
        body = request.get_json(force=True) or {}
        status = int(body.get("status", 500))
        if status not in (429, 500, 502, 503, 504):
            return jsonify({"error": "status must be 429, 500, 502, 503 or 504"}), 400
        with world.lock:
            world.faults.append({"status": status, "remaining": int(body.get("count", 1)),
                                 "retry_after": int(body.get("retry_after", 1))})
        return jsonify({"queued": True}), 201

    @app.post("/_sandbox/reset")
    def sb_reset():
        """Sandbox: back to the seeded world."""
        with world.lock:
            world.reset()
        return jsonify({"reset": True})

    @app.get("/_sandbox/state")
    def sb_state():
        """Sandbox: counts, grants (with their rate-window use), subscriptions (with tokens)."""
        with world.lock:
            now = world.now()
            span = float(cfg["rate_window"])
            return jsonify({
                "now": now, "clock_offset": world.clock_offset,
                "counts": {"companies": len(world.companies), "employees": len(world.employees),
                           "payrolls": len(world.payrolls), "events": len(world.events),
                           "deliveries": len(world.deliveries), "requests": len(world.requests_log),
                           "subscriptions": len(world.subscriptions)},
                "grants": [{"id": g_["id"], "kind": g_["kind"], "company_uuid": g_["company_uuid"],
                            "requests_in_window": sum(1 for t in g_["window"] if t > now - span),
                            "access_tokens": sum(1 for t in world.access_tokens.values()
                                                 if t["grant_id"] == g_["id"]),
                            "live_refresh_tokens": sum(1 for t in world.refresh_tokens.values()
                                                       if t["grant_id"] == g_["id"] and not t["used"])}
                           for g_ in world.grants.values()],
                "subscriptions": [dict(s) for s in world.subscriptions.values()],
                "faults": list(world.faults),
                "config": {k: v for k, v in cfg.items() if k != "client_secret"},
            })

    @app.post("/_sandbox/clock")
    def sb_clock():
        """Sandbox: ``{"advance": seconds}`` moves the emulator clock forward."""
        body = request.get_json(force=True) or {}
        with world.lock:
            world.clock_offset += float(body.get("advance", 0))
            return jsonify({"now": world.now(), "clock_offset": world.clock_offset})

    @app.get("/_sandbox/requests")
    def sb_requests():
        """Sandbox: log of every non-sandbox request (time, method, path, query, headers subset,
        body, json, the status answered), oldest first."""
        with world.lock:
            return jsonify(list(world.requests_log))

    return app
