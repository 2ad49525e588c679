"""The Gusto emulator's responses against the public Gusto OpenAPI spec (2025-06-15).

Known spec-vs-wire deviations are tolerated only where the spec contradicts itself
(the spec types compensation amounts as numbers while its own examples and the path text say
"string representations of numeric decimals"), and only of that kind.
"""
import json

import requests

from sandbox.gusto.app import COMPANY_UUID, EXAMPLE_PAYROLL_FILE, PAYROLL_UUID

PAYROLL_PATH = f"/v1/companies/{COMPANY_UUID}/payrolls/{PAYROLL_UUID}"
EMPLOYEE_UUIDS = ["187412e1-3dbe-491a-bb2f-2f40323a7067", "187412e1-3dbe-491a-bb2f-2f40323a7012",
                  "187412e1-3dbe-491a-bb2f-2f40323a7781"]
# Schema Payroll-Employee-Compensations-Base-Type says number; the path description of
# get-v1-companies-company_id-payrolls-payroll_id, the example and the wire say string.
COMP_AMOUNTS = [
    (r"employee_compensations\.\*\.(gross_pay|net_pay|check_amount)", "decimal-string"),
    (r"employee_compensations\.\*\.(taxes|deductions)\.\*\.amount", "decimal-string"),
    (r"employee_compensations\.\*\.benefits\.\*\.(employee_deduction|company_contribution)", "decimal-string"),
    # the example's own credit blocker carries wire_in_amount as a number (schema: string)
    (r"credit_blockers\.\*\.unblock_options\.\*\.metadata\.wire_in_amount", "number"),
]


def auth(token):
    return {"Authorization": f"Bearer {token}", "X-Gusto-API-Version": "2025-06-15"}


def test_seed_file_is_the_spec_example(gusto_spec):
    example = (gusto_spec["components"]["responses"]["Payroll-Show-Object"]["content"]
               ["application/json"]["examples"]["Processed"]["value"])
    stored = json.loads(EXAMPLE_PAYROLL_FILE.read_text())
    assert stored == example
    assert stored["payroll_uuid"] == PAYROLL_UUID and stored["company_uuid"] == COMPANY_UUID
    assert [c["employee_uuid"] for c in stored["employee_compensations"]] == EMPLOYEE_UUIDS


def test_payroll_show_matches_spec_and_example(gusto_emulator, gusto_helpers, validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    query = {"include": ["benefits,deductions,taxes,totals,payroll_taxes,payroll_status_meta"]}
    r = requests.get(base + PAYROLL_PATH, params=query, headers=auth(token), timeout=5)
    assert r.status_code == 200
    tolerated = validate_gusto_response("GET", PAYROLL_PATH, r, query=query, allowed=COMP_AMOUNTS)
    assert tolerated, "expected the documented string-vs-number deviation to be present"
    body = r.json()
    example = json.loads(EXAMPLE_PAYROLL_FILE.read_text())
    assert body == example          # everything asked for: the example verbatim
    assert r.headers["X-Total-Count"] == "3"
    assert r.headers["X-Gusto-API-Version"] == "2025-06-15"


def test_payroll_show_include_is_honoured(gusto_emulator, gusto_helpers, validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    r = requests.get(base + PAYROLL_PATH, headers=auth(token), timeout=5)
    assert r.status_code == 200
    validate_gusto_response("GET", PAYROLL_PATH, r, allowed=COMP_AMOUNTS)
    body = r.json()
    assert "totals" in body and len(body["employee_compensations"]) == 3   # processed → returned
    for absent in ("company_taxes", "payroll_taxes", "payroll_status_meta"):
        assert absent not in body
    comp = body["employee_compensations"][0]
    assert "taxes" not in comp and "benefits" not in comp
    assert comp["deductions"] == [{"name": "Child Support", "amount": "80.00"}]  # default in 2025-06-15


def test_payroll_show_paginates_compensations(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    seen = []
    for page in (1, 2):
        r = requests.get(base + PAYROLL_PATH, params={"page": page, "per": 2}, headers=auth(token), timeout=5)
        assert r.status_code == 200
        assert (r.headers["X-Page"], r.headers["X-Per-Page"], r.headers["X-Total-Count"],
                r.headers["X-Total-Pages"]) == (str(page), "2", "3", "2")
        seen += [c["employee_uuid"] for c in r.json()["employee_compensations"]]
    assert seen == EMPLOYEE_UUIDS
    r = requests.get(base + PAYROLL_PATH, params={"page": 1, "per": 500}, headers=auth(token), timeout=5)
    assert r.headers["X-Per-Page"] == "100"


def test_payroll_list_matches_spec(gusto_emulator, gusto_helpers, validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    path = f"/v1/companies/{COMPANY_UUID}/payrolls"
    query = {"processing_statuses": ["processed,unprocessed"], "start_date": ["2021-01-01"],
             "end_date": ["2021-12-31"]}
    r = requests.get(base + path, params=query, headers=auth(token), timeout=5)
    assert r.status_code == 200
    assert validate_gusto_response("GET", path, r, query=query, allowed=COMP_AMOUNTS) == []
    assert [p["processed"] for p in r.json()] == [True, False]
    r = requests.get(base + path, params={"start_date": "2021-01-01", "end_date": "2021-12-31"},
                     headers=auth(token), timeout=5)
    assert [p["payroll_uuid"] for p in r.json()] == [PAYROLL_UUID]      # default: processed only
    r = requests.get(base + path, params={"start_date": "2020-01-01", "end_date": "2021-12-31"},
                     headers=auth(token), timeout=5)
    assert r.status_code == 422                                           # > 1 year apart (OAS)
    assert r.json()["errors"][0]["category"] == "invalid_operation"     # Unprocessable-Entity-Error-Object


def test_employees_match_spec(gusto_emulator, gusto_helpers, validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    path = f"/v1/companies/{COMPANY_UUID}/employees"
    r = requests.get(base + path, headers=auth(token), timeout=5)
    assert r.status_code == 200
    assert validate_gusto_response("GET", path, r) == []
    body = r.json()
    assert sorted(e["uuid"] for e in body) == sorted(EMPLOYEE_UUIDS)
    assert [e["terminated"] for e in body].count(True) == 1
    r = requests.get(base + path, params={"page": 2, "per": 2}, headers=auth(token), timeout=5)
    assert len(r.json()) == 1 and r.headers["X-Total-Pages"] == "2" and r.headers["X-Total-Count"] == "3"
    one = f"/v1/employees/{EMPLOYEE_UUIDS[0]}"
    r = requests.get(base + one, headers=auth(token), timeout=5)
    assert r.status_code == 200
    assert validate_gusto_response("GET", one, r) == []
    assert r.json()["jobs"][0]["primary"] is True


def test_not_found_body_matches_spec(gusto_emulator, gusto_helpers, validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    path = f"/v1/companies/{COMPANY_UUID}/payrolls/00000000-0000-0000-0000-000000000000"
    r = requests.get(base + path, headers=auth(token), timeout=5)
    assert r.status_code == 404
    assert validate_gusto_response("GET", path, r) == []
    assert r.json()["errors"][0]["category"] == "not_found"


def test_token_responses_match_spec(gusto_emulator, gusto_openapi, gusto_spec, validate_gusto_response):
    import jsonschema
    base = gusto_emulator()
    creds = {"client_id": "demo-client-id", "client_secret": "demo-client-secret"}
    r = requests.post(base + "/oauth/token", json={**creds, "grant_type": "system_access"}, timeout=5)
    assert r.status_code == 200
    assert validate_gusto_response("POST", "/oauth/token", r) == []
    assert r.json()["refresh_token"] is None and r.json()["token_type"] == "Bearer"
    # Refresh response: the spec's oneOf(Create, Refresh) matches both for a string refresh_token
    # (a spec ambiguity), so validate against Refresh-Token-Authentication itself.
    from tests.contract.conftest import company_tokens  # noqa: F401 (helper, not a test)
    body = company_tokens(base)
    r = requests.post(base + "/oauth/token", json={**creds, "grant_type": "refresh_token",
                                                  "refresh_token": body["refresh_token"]}, timeout=5)
    assert r.status_code == 200
    schema = {"$ref": "#/components/schemas/Refresh-Token-Authentication", **{"components": gusto_spec["components"]}}
    jsonschema.Draft202012Validator(schema).validate(r.json())
    assert set(r.json()) >= {"access_token", "refresh_token", "token_type", "scope", "created_at", "expires_in"}
    assert isinstance(r.json()["created_at"], int) and r.json()["expires_in"] == 7200


def test_token_info_matches_spec(gusto_emulator, gusto_helpers, validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    r = requests.get(base + "/v1/token_info", headers=auth(token), timeout=5)
    assert validate_gusto_response("GET", "/v1/token_info", r) == []
    assert r.json()["resource"] == {"type": "Company", "uuid": COMPANY_UUID}


def test_webhook_subscription_and_events_match_spec(gusto_emulator, gusto_helpers, webhook_receiver,
                                                     validate_gusto_response):
    base = gusto_emulator({"delivery_backoff": 0.05})
    token = gusto_helpers.system_token(base)
    r = requests.post(base + "/v1/webhook_subscriptions", headers=auth(token), timeout=5,
                      json={"url": webhook_receiver.url, "subscription_types": ["Payroll", "Employee"]})
    assert r.status_code == 201
    assert validate_gusto_response("POST", "/v1/webhook_subscriptions", r) == []
    sub = r.json()
    assert sub["status"] == "pending" and "verification_token" not in sub
    vt = webhook_receiver.wait_for(1)[0]
    verification = json.loads(vt[1])["verification_token"]
    path = f"/v1/webhook_subscriptions/{sub['uuid']}/verify"
    r = requests.put(base + path, json={"verification_token": "wrong"}, headers=auth(token), timeout=5)
    assert r.status_code == 422
    assert validate_gusto_response("PUT", path, r) == []
    assert r.json() == {"errors": [{"error_key": "base", "category": "invalid_attribute_value",
                                    "message": "Invalid verification token"}]}
    r = requests.put(base + path, json={"verification_token": verification}, headers=auth(token), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "verified"
    assert validate_gusto_response("PUT", path, r) == []
    for p in ("/v1/webhook_subscriptions", f"/v1/webhook_subscriptions/{sub['uuid']}",
              f"/v1/webhook_subscriptions/{sub['uuid']}/request_verification_token"):
        r = requests.get(base + p, headers=auth(token), timeout=5)
        assert r.status_code == 200, p
        assert validate_gusto_response("GET", p, r) == []
    requests.post(base + "/_sandbox/events", json={"event_type": "employee.updated",
                                                   "entity_type": "Employee",
                                                   "entity_uuid": EMPLOYEE_UUIDS[0]}, timeout=5)
    r = requests.get(base + "/v1/events", headers=auth(token), timeout=5)
    assert r.status_code == 200
    assert validate_gusto_response("GET", "/v1/events", r) == []
    assert r.json()[-1]["event_type"] == "employee.updated"
    r = requests.delete(base + f"/v1/webhook_subscriptions/{sub['uuid']}", headers=auth(token), timeout=5)
    assert r.status_code == 204
    r = requests.get(base + f"/v1/webhook_subscriptions/{sub['uuid']}", headers=auth(token), timeout=5)
    assert r.status_code == 404


def test_invalid_subscription_is_422_per_spec(gusto_emulator, gusto_helpers, validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.system_token(base)
    r = requests.post(base + "/v1/webhook_subscriptions", headers=auth(token), timeout=5,
                      json={"url": "https://example.com/h", "subscription_types": ["Nonsense"]})
    assert r.status_code == 422
    assert validate_gusto_response("POST", "/v1/webhook_subscriptions", r) == []


def test_reference_data_and_lifecycle_changes_match_spec(gusto_emulator, gusto_helpers, validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    path = f"/v1/companies/{COMPANY_UUID}/earning_types"
    requests.post(base + "/_sandbox/earning_types", json={"name": "Gym Membership Stipend"}, timeout=5)
    r = requests.get(base + path, headers=auth(token), timeout=5)
    assert r.status_code == 200 and validate_gusto_response("GET", path, r) == []
    assert "Bonus" in [e["name"] for e in r.json()["default"]]
    assert [e["name"] for e in r.json()["custom"]] == ["Gym Membership Stipend"]
    path = f"/v1/companies/{COMPANY_UUID}/pay_schedules"
    r = requests.get(base + path, headers=auth(token), timeout=5)
    assert r.status_code == 200 and validate_gusto_response("GET", path, r) == []
    # an employee after a job change and a termination is still a spec-valid Employee
    uid = requests.post(base + "/_sandbox/employees/hire", timeout=5, json={"employees": [
        {"first_name": "Ana", "last_name": "Diaz", "title": "Clerk"}]}).json()["created"][0]
    requests.patch(base + f"/_sandbox/employees/{uid}", json={"title": "Senior Clerk"}, timeout=5)
    requests.post(base + f"/_sandbox/employees/{uid}/terminate", json={"effective_date": "2020-01-31"}, timeout=5)
    one = f"/v1/employees/{uid}"
    r = requests.get(base + one, headers=auth(token), timeout=5)
    assert r.status_code == 200 and validate_gusto_response("GET", one, r) == []
    body = r.json()
    assert body["terminated"] is True and body["jobs"][0]["title"] == "Senior Clerk"
    assert body["terminations"][0]["effective_date"] == "2020-01-31"


# ---------------------------------------------------------------- gaps closed (spec 2025-06-15)
NOT_FOUND_BODY = {"errors": [{"error_key": "request", "category": "not_found",
                              "message": "The requested resource was not found."}]}


def schema_check(spec, name, instance):
    """Validate ``instance`` against ``components.schemas[name]`` (for answers whose operation
    the spec does not list: an unknown route, a 409 the PUT omits, GET /v1/jobs/{job_id})."""
    import jsonschema
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


def test_company_show_matches_spec(gusto_emulator, gusto_helpers, gusto_spec, validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    path = f"/v1/companies/{COMPANY_UUID}"
    r = requests.get(base + path, headers=auth(token), timeout=5)
    assert r.status_code == 200
    assert validate_gusto_response("GET", path, r) == []
    body = r.json()
    example = gusto_spec["components"]["schemas"]["Company"]["x-examples"]["success_status"]
    scoped = {"primary_signatory", "primary_payroll_admin"}      # need scopes the token lacks
    assert set(body) == set(example) - scoped
    assert body["uuid"] == COMPANY_UUID and body["name"] == "Example Payroll Co."
    assert {"name": "Bonus"}.items() <= body["compensations"]["fixed"][0].items()
    assert {"uuid": None, "name": "Reimbursement"} in body["compensations"]["fixed"]
    r = requests.get(base + "/v1/companies/00000000-0000-0000-0000-000000000000", headers=auth(token), timeout=5)
    assert r.status_code == 404 and r.json() == NOT_FOUND_BODY
    assert validate_gusto_response("GET", "/v1/companies/00000000-0000-0000-0000-000000000000", r) == []


def test_job_compensations_match_spec(gusto_emulator, gusto_helpers, gusto_spec, validate_gusto_response,
                                      validate_gusto_request):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    job = requests.get(base + f"/v1/employees/{EMPLOYEE_UUIDS[0]}", headers=auth(token), timeout=5).json()["jobs"][0]
    r = requests.get(base + f"/v1/jobs/{job['uuid']}", headers=auth(token), timeout=5)
    assert r.status_code == 200 and r.json() == job
    schema_check(gusto_spec, "Job", r.json())              # the 2025-06-15 spec lists no GET job
    path = f"/v1/jobs/{job['uuid']}/compensations"
    for query in (None, {"include": ["all_compensations"]}):
        r = requests.get(base + path, params=query, headers=auth(token), timeout=5)
        assert r.status_code == 200
        assert validate_gusto_response("GET", path, r, query=query) == []
        assert [c["uuid"] for c in r.json()] == [job["current_compensation_uuid"]]
    comp = r.json()[0]
    assert comp["title"] == job["title"] and comp["rate"] == job["rate"]
    one = f"/v1/compensations/{comp['uuid']}"
    r = requests.get(base + one, headers=auth(token), timeout=5)
    assert r.status_code == 200 and r.json() == comp
    assert validate_gusto_response("GET", one, r) == []
    update = {"version": comp["version"], "rate": "52.50", "payment_unit": "Hour",
              "flsa_status": "Nonexempt", "title": "Senior Warehouse Lead"}
    r = requests.put(base + one, json=update, headers=auth(token), timeout=5)
    assert r.status_code == 200
    assert validate_gusto_response("PUT", one, r) == []
    validate_gusto_request(requests.get(base + "/_sandbox/requests", timeout=5).json()[-1])
    updated = r.json()
    assert (updated["rate"], updated["title"]) == ("52.50", "Senior Warehouse Lead")
    assert updated["version"] != comp["version"] and len(updated["version"]) == 32
    # the stale version is refused with the spec's Conflict-Error-Object (409)
    r = requests.put(base + one, json=update, headers=auth(token), timeout=5)
    assert r.status_code == 409
    schema_check(gusto_spec, "Conflict-Error-Object", r.json())
    assert r.json() == gusto_spec["components"]["schemas"]["Conflict-Error-Object"]["x-examples"]["invalid_version"]
    # the employee shows the change in its job
    emp = requests.get(base + f"/v1/employees/{EMPLOYEE_UUIDS[0]}", headers=auth(token), timeout=5)
    assert validate_gusto_response("GET", f"/v1/employees/{EMPLOYEE_UUIDS[0]}", emp) == []
    new_job = emp.json()["jobs"][0]
    assert (new_job["rate"], new_job["title"]) == ("52.50", "Senior Warehouse Lead")
    assert new_job["version"] != job["version"] and new_job["compensations"][0]["version"] == updated["version"]
    r = requests.put(base + one, json={"version": updated["version"], "payment_unit": "Fortnight"},
                     headers=auth(token), timeout=5)
    assert r.status_code == 422 and validate_gusto_response("PUT", one, r) == []


def test_unknown_routes_and_methods_answer_the_spec_not_found_body(gusto_emulator, gusto_helpers, gusto_spec):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    for method, path in (("GET", "/v1/no_such_thing"), ("GET", "/nowhere"),
                         ("DELETE", f"/v1/companies/{COMPANY_UUID}/payrolls"),
                         ("POST", f"/v1/employees/{EMPLOYEE_UUIDS[0]}"), ("PUT", "/oauth/token")):
        r = requests.request(method, base + path, headers=auth(token), timeout=5)
        assert r.status_code == 404, (method, path)
        assert r.headers["Content-Type"] == "application/json", (method, path)
        assert r.json() == NOT_FOUND_BODY
        schema_check(gusto_spec, "Not-Found-Error-Object", r.json())


def test_payroll_list_items_carry_uuid_and_reversal_payroll_uuids(gusto_emulator, gusto_helpers,
                                                                 validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    path = f"/v1/companies/{COMPANY_UUID}/payrolls"
    query = {"processing_statuses": ["processed,unprocessed"], "start_date": ["2021-01-01"],
             "end_date": ["2021-12-31"], "include": ["totals"]}
    r = requests.get(base + path, params=query, headers=auth(token), timeout=5)
    assert validate_gusto_response("GET", path, r, query=query) == []
    assert [p["uuid"] for p in r.json()] == [p["payroll_uuid"] for p in r.json()]
    assert r.json()[0]["uuid"] == PAYROLL_UUID
    assert all(p["reversal_payroll_uuids"] == [] for p in r.json())


def test_reverse_and_cancel_leave_the_payroll_as_the_spec_describes(gusto_emulator, gusto_helpers, gusto_spec,
                                                                   validate_gusto_response):
    base = gusto_emulator()
    token = gusto_helpers.company_tokens(base)["access_token"]
    created = [requests.post(base + "/_sandbox/payrolls", timeout=5, json={
        "compensations": 1, "start_date": start, "end_date": end, "check_date": check}).json()["payroll_uuid"]
        for start, end, check in (("2021-04-01", "2021-04-15", "2021-04-20"),
                                  ("2021-04-16", "2021-04-30", "2021-05-05"))]
    reversed_pid, cancelled_pid = created
    r = requests.post(base + f"/_sandbox/payrolls/{reversed_pid}/reverse", timeout=5)
    assert r.json()["event"]["event_type"] == "payroll.reversed"
    one = f"/v1/companies/{COMPANY_UUID}/payrolls/{reversed_pid}"
    r = requests.get(base + one, headers=auth(token), timeout=5)
    assert validate_gusto_response("GET", one, r, allowed=COMP_AMOUNTS)
    body = r.json()
    assert body["processed"] is True and len(body["reversal_payroll_uuids"]) == 1
    schema_check(gusto_spec, "Reversal-Payroll-Uuids-Type", body["reversal_payroll_uuids"])
    assert body["reversal_payroll_uuids"][0] not in (reversed_pid, cancelled_pid)
    requests.post(base + f"/_sandbox/payrolls/{reversed_pid}/reverse", timeout=5)   # one reversal
    assert requests.get(base + one, headers=auth(token), timeout=5).json()["reversal_payroll_uuids"] == \
        body["reversal_payroll_uuids"]

    r = requests.post(base + f"/_sandbox/payrolls/{cancelled_pid}/cancel", timeout=5)
    assert r.json()["event"]["event_type"] == "payroll.cancelled"
    one = f"/v1/companies/{COMPANY_UUID}/payrolls/{cancelled_pid}"
    r = requests.get(base + one, headers=auth(token), timeout=5)
    assert validate_gusto_response("GET", one, r) == []
    body = r.json()
    schema_check(gusto_spec, "Unprocessed-Payroll", body)
    assert (body["processed"], body["processed_date"], body["calculated_at"]) == (False, None, None)
    assert "employee_compensations" not in body and "totals" not in body   # no longer calculated

    path = f"/v1/companies/{COMPANY_UUID}/payrolls"
    query = {"processing_statuses": ["processed,unprocessed"], "start_date": ["2021-04-01"],
             "end_date": ["2021-04-30"]}
    r = requests.get(base + path, params=query, headers=auth(token), timeout=5)
    assert validate_gusto_response("GET", path, r, query=query) == []
    items = {p["uuid"]: p for p in r.json()}
    assert items[reversed_pid]["reversal_payroll_uuids"] == reversal_uuids_of(base, token, reversed_pid)
    assert items[cancelled_pid]["processed"] is False and items[cancelled_pid]["reversal_payroll_uuids"] == []
    r = requests.get(base + path, params={"start_date": "2021-04-01", "end_date": "2021-04-30"},
                     headers=auth(token), timeout=5)
    assert [p["uuid"] for p in r.json()] == [reversed_pid]               # processed only by default


def reversal_uuids_of(base, token, pid):
    return requests.get(base + f"/v1/companies/{COMPANY_UUID}/payrolls/{pid}", headers=auth(token),
                        timeout=5).json()["reversal_payroll_uuids"]
