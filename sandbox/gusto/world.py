"""Gusto emulator state: :class:`GustoWorld` (everything the emulator knows) and its seed.

The seed: company ``6bf7807c-…`` with the Gusto OpenAPI spec 2025-06-15's "Processed"
payroll example (``data/``, schema ``Payroll-Show``), a calculated-but-unprocessed payroll
of the same company, three employees carrying the example's ``employee_uuid`` values (each
with one job and one compensation, schemas ``Employee``/``Job``/``Compensation``), the
default earning types (``Earning-Type-List``), one pay schedule (``Pay-Schedule-List``) and
a second company (for company-scoped tokens). Everything the spec does not publish (names,
codes, addresses, the second company) is invented and marked ``ASSUMPTION``.

Nothing here speaks HTTP; the blueprints read and change the world under :attr:`GustoWorld.lock`.
"""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
EXAMPLE_PAYROLL_FILE = DATA_DIR / "payroll_processed_example.json"

#: Configuration defaults (``create_app(config)`` overrides them key by key).
DEFAULTS: dict = {
    "client_id": "demo-client-id",
    "client_secret": "demo-client-secret",
    "min_api_version": "2025-06-15",
    # expires_in 7200 (2 hours): https://docs.gusto.com/embedded-payroll/docs/company-access-tokens
    "access_token_ttl": 7200,
    # 200 requests per rolling 60 s per grant: https://docs.gusto.com/app-integrations/docs/rate-limits
    "rate_limit": 200,
    "rate_window": 60.0,
    # retried up to 16 times, exponential backoff: https://docs.gusto.com/app-integrations/docs/webhooks
    "delivery_attempts": 16,
    "delivery_backoff": 2.0,       # ASSUMPTION: base of the backoff (Gusto publishes none)
    "delivery_timeout": 5.0,       # ASSUMPTION: seconds Gusto waits for a receiver
    "auto_approve": False,
    # authorization code expiry 10 minutes: http://docs.gusto.com/v1/examples/authentication
    "code_ttl": 600,
    "redirect_uris": None,         # ASSUMPTION: None accepts any redirect_uri (demo convenience)
}

COMPANY_UUID = "6bf7807c-a5a0-4f4d-b2e7-3fbb4b2299fb"       # company of the spec's "Processed" example
PAYROLL_UUID = "b50e611d-8f3d-4f24-b001-46675f7b5777"       # payroll of the spec's "Processed" example
# ASSUMPTION: a second company, so company-scoped tokens can be tested ("strict access",
# https://docs.gusto.com/app-integrations/docs/oauth2 "Multi-Company Authentication").
OTHER_COMPANY_UUID = "0f4b6c2e-9a1d-4f7e-8c3b-5d2a1e9f7c60"
# ASSUMPTION: a second, unprocessed (calculated) payroll of the example company for /process.
UNPROCESSED_PAYROLL_UUID = "c3a1f9d2-7e4b-4c8a-9f1e-2b6d5a8c3e71"
APPLICATION_UUID = "9c2a1b3d-4e5f-6789-abcd-ef0123456789"   # spec Token-Info x-example system_token
ADMIN_UUID = "8fdc31f0-a8a7-4872-a9f1-dcb5e6f876e3"         # spec Token-Info x-example company_admin_token

COMPANY_SCOPE = ("public companies:read employees:read payrolls:read compensations:read "
                 "employee_benefits:read")                   # ASSUMPTION: scope string wording
SYSTEM_SCOPE = "public webhook_subscriptions:read webhook_subscriptions:write events:read"

# The default earning types of the spec's Earning-Type-List example.
DEFAULT_EARNING_TYPES = ("Bonus", "Cash Tips", "Commission", "Correction Payment",
                         "Minimum Wage Adjustment", "Paycheck Tips", "Severance")

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def load_example_payroll() -> dict:
    """The spec's "Processed" payroll example (``components.responses.Payroll-Show-Object``,
    Gusto OpenAPI 2025-06-15) as stored in ``data/``: JSON numbers stay numbers."""
    return json.loads(EXAMPLE_PAYROLL_FILE.read_text())


def fresh_version(obj: dict) -> str:
    """A ``version`` for ``obj``: 32 lowercase hex digits "calculated based on all updatable
    attributes of this and child objects" (https://docs.gusto.com/embedded-payroll/docs/idempotency,
    schema ``Versionable``), so it changes exactly when the content does. ASSUMPTION: md5 of
    the object's JSON without its own ``version``."""
    body = {k: v for k, v in obj.items() if k != "version"}
    return hashlib.md5(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _uuid5(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def build_employee(uid: str, company_uuid: str, first: str, last: str, code: str, title: str,
                   hire_date: str, department: str | None, terminated_on: str | None = None) -> dict:
    """An employee in the shape of the spec's ``Employee`` x-example: one primary hourly job
    (schema ``Job``) with one compensation (schema ``Compensation``, 45.00/Hour, Nonexempt,
    effective on the hire date) and, with ``terminated_on``, one active termination (schema
    ``Termination``). Job, compensation and termination uuids derive from ``uid``."""
    job_uuid = _uuid5(f"job:{uid}")
    comp_uuid = _uuid5(f"compensation:{uid}")
    terminations = []
    if terminated_on:
        terminations.append({"uuid": _uuid5(f"termination:{uid}"),
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


def build_company(company_uuid: str, name: str, *, ein: str, entity_type: str, join_date: str,
                  location: dict) -> dict:
    """The stored part of a company (schema ``Company``, operation ``get-v1-companies``): the
    flat attributes and its ``locations`` (schema ``Company-Address``). ``compensations`` are
    derived when the company is shown (see :mod:`sandbox.gusto.companies`). ASSUMPTION: all
    values are invented except the field set, which follows the schema's x-example."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return {"uuid": company_uuid, "name": name, "trade_name": None, "slug": slug, "ein": ein,
            "entity_type": entity_type, "contractor_only": False, "tier": "complete",
            "is_suspended": False, "company_status": "Approved", "is_partner_managed": False,
            "is_high_risk_business": False, "is_marijuana_business": False,
            "pay_schedule_type": "single", "join_date": join_date, "funding_type": "ach",
            "locations": [dict({"street_2": None, "country": "USA", "active": True}, **location)]}


class GustoWorld:
    """All emulator state. Callers hold :attr:`lock` around every read and write.

    Times come from :meth:`now` (epoch seconds, moved forward by ``POST /_sandbox/clock``).
    Tables: ``companies`` (uuid → stored Company), ``payrolls`` (uuid → payroll as stored,
    the Payroll-Show shape), ``employees`` (uuid → Employee with its jobs), ``earning_types``,
    ``pay_schedules`` (company uuid → list), OAuth ``codes``/``grants``/``access_tokens``/
    ``refresh_tokens``, webhook ``subscriptions``, ``events``, the ``deliveries`` log, queued
    ``faults`` and the ``requests_log``.
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
        """Emulator date (UTC) of :meth:`now`."""
        return dt.datetime.fromtimestamp(self.now(), dt.timezone.utc).date()

    def reset(self) -> None:
        """Back to the seeded world (config kept). Pending deliveries of the old world stop
        (their generation no longer matches)."""
        self.generation += 1
        self.clock_offset = 0.0
        self.companies = {
            COMPANY_UUID: build_company(
                COMPANY_UUID, "Example Payroll Co.", ein="00-0000001", entity_type="LLC",
                join_date="2021-01-04",
                location={"street_1": "300 3rd Street", "city": "San Francisco", "state": "CA",
                          "zip": "94107"}),
            OTHER_COMPANY_UUID: build_company(
                OTHER_COMPANY_UUID, "Other Holdings LLC", ein="00-0000002", entity_type="LLC",
                join_date="2021-09-01",
                location={"street_1": "1 Main Street", "city": "Denver", "state": "CO",
                          "zip": "80202"}),
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
            build_employee("187412e1-3dbe-491a-bb2f-2f40323a7067", COMPANY_UUID, "Maya", "Patel",
                           "a1f001", "Warehouse Lead", "2019-03-04", "Operations"),
            build_employee("187412e1-3dbe-491a-bb2f-2f40323a7012", COMPANY_UUID, "Daniel", "Okafor",
                           "a1f002", "Account Executive", "2020-01-13", "Sales"),
            build_employee("187412e1-3dbe-491a-bb2f-2f40323a7781", COMPANY_UUID, "Lucia", "Romero",
                           "a1f003", "Bookkeeper", "2018-07-23", "Finance", terminated_on="2023-05-31"),
            build_employee("5b0e2f0a-1c3d-4e5f-8a9b-0c1d2e3f4a5b", OTHER_COMPANY_UUID, "Other", "Person",
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
        # The spec's Earning-Type-List example defaults (uuids invented).
        self.earning_types: dict[str, dict] = {}
        for name in DEFAULT_EARNING_TYPES:
            self.add_earning_type(COMPANY_UUID, name, custom=False)
        # Spec Pay-Schedule-List example shape; values ASSUMPTION (one semi-monthly schedule).
        self.pay_schedules = {COMPANY_UUID: [{
            "uuid": _uuid5("pay-schedule:" + COMPANY_UUID),
            "version": "68934a3e9455fa72420237eb05902327", "frequency": "Twice per month",
            "anchor_pay_date": "2021-02-22", "anchor_end_of_pay_period": "2021-02-15", "day_1": 15,
            "day_2": 31, "name": "Staff", "custom_name": "Staff semi-monthly schedule",
            "auto_pilot": False, "active": True}]}
        # Sandbox: the next N event deliveries are dropped on the floor (a lost webhook).
        self.drop_deliveries = 0

    def add_earning_type(self, company_uuid: str, name: str, *, custom: bool) -> dict:
        """Add an earning type: an ``Earning-Type-List`` item ``{name, uuid, active}`` plus the
        emulator's ``company_uuid`` and ``custom`` flag. Returns the stored record."""
        et = {"name": name, "uuid": _uuid5(f"earning:{company_uuid}:{name}"),
              "active": True, "company_uuid": company_uuid, "custom": custom}
        self.earning_types[et["uuid"]] = et
        return et

    # ----------------------------------------------------------------- jobs and compensations
    def find_job(self, job_uuid: str) -> tuple[dict, dict] | None:
        """``(employee, job)`` of the stored job ``job_uuid`` (the live objects), or None."""
        for emp in self.employees.values():
            for job in emp["jobs"]:
                if job["uuid"] == job_uuid:
                    return emp, job
        return None

    def find_compensation(self, comp_uuid: str) -> tuple[dict, dict, dict] | None:
        """``(employee, job, compensation)`` of the stored compensation ``comp_uuid``, or None."""
        for emp in self.employees.values():
            for job in emp["jobs"]:
                for comp in job["compensations"]:
                    if comp["uuid"] == comp_uuid:
                        return emp, job, comp
        return None

    # ----------------------------------------------------------------- tokens and grants
    def new_grant(self, kind: str, company_uuid: str | None) -> str:
        """A new OAuth grant of ``kind`` ``company`` or ``system``: the scope of one rate-limit
        window (https://docs.gusto.com/app-integrations/docs/rate-limits). Returns its id."""
        gid = str(uuid.uuid4())
        self.grants[gid] = {"id": gid, "kind": kind, "company_uuid": company_uuid,
                            "created_at": self.now(), "window": deque()}
        return gid

    def issue_tokens(self, grant_id: str, *, with_refresh: bool, previous: str | None = None) -> dict:
        """Issue an access token (and a refresh token) on ``grant_id``; returns the token
        response body ``{access_token, refresh_token, token_type: "Bearer", scope, created_at,
        expires_in}`` (spec ``Authentication`` x-examples; tokens URL-safe base64, 43 characters:
        https://docs.gusto.com/embedded-payroll/docs/company-access-tokens). ``previous`` is the
        access token a refresh replaces (revoked on the new one's first use)."""
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

    # ----------------------------------------------------------------- events
    def record_event(self, event_type: str, entity_type: str, entity_uuid: str,
                     company_uuid: str) -> dict:
        """Append an event and return it: the spec's ``Event`` shape, the thin webhook payload
        ``{uuid, event_type, resource_type: "Company", resource_uuid, entity_type, entity_uuid,
        timestamp}`` (https://docs.gusto.com/embedded-payroll/docs/webhooks)."""
        event = {"uuid": str(uuid.uuid4()), "event_type": event_type, "resource_type": "Company",
                 "resource_uuid": company_uuid, "entity_type": entity_type,
                 "entity_uuid": entity_uuid, "timestamp": int(self.now())}
        self.events.append(event)
        return event

    def subscribers(self, entity_type: str) -> list[dict]:
        """Copies of the verified subscriptions whose ``subscription_types`` include
        ``entity_type`` (https://docs.gusto.com/embedded-payroll/docs/webhooks)."""
        return [dict(s) for s in self.subscriptions.values()
                if s["status"] == "verified" and entity_type in s["subscription_types"]]
