"""Attack: one operator token sees and replays every tenant's jobs. Two tenants on one running
deployment (gunicorn web, Celery worker, Tally agent, emulators, SQLite and PostgreSQL): tenant
A (``default``) posts the published payroll through the real pipeline; tenant B (``acme``) has
its own connections, a parked job, an event and an external reference in the same store. A's
operator token cannot list, read, audit or replay B's rows (404, as if they did not exist), nor
the other way round; the admin sees and replays every tenant's; a revoked or unknown token is a
401; the CLI's ``--tenant`` scope answers the same."""
from __future__ import annotations

import pytest
import requests
from click.testing import CliRunner

from connector_tasks.cli import main as cli
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncJob
from connector_tasks.tenants import add_tenant, create_token, revoke_token
from tests.harness import DEMO_PAYROLL, TALLY_CONN, deployment_on, post_example_once

pytestmark = pytest.mark.integration

B_PAYROLL = "acme-payroll-0001"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory, redis_server, postgres_admin_url):
    """The deployment with tenant B beside A, and tokens: ``a``/``b`` operators, ``admin`` (of
    A's tenant, role admin), ``revoked`` (B's, revoked)."""
    folder = tmp_path_factory.mktemp(f"tenants-{request.param}")
    with deployment_on(request.param, folder, redis_server.url, postgres_admin_url) as dep:
        post_example_once(dep)  # A's job, done, through the whole pipeline
        url = dep.settings.database_url
        with session_scope(url) as s:
            b = add_tenant(s, "acme")
            s.add_all([Connection(name="acme-gusto", system="gusto", tenant_id=b.id, status="connected",
                                  account="acme-co", settings={"targets": ["acme-tally"]}),
                       Connection(name="acme-tally", system="tallyprime", tenant_id=b.id, status="connected",
                                  account="Acme Books", settings={})])
            s.flush()
            src, tgt = (s.query(Connection).filter_by(name=n).one().id for n in ("acme-gusto", "acme-tally"))
            parked, _ = repo.claim_job(s, flow="gusto.payroll_to_journal", connection_id=src, target_id=tgt,
                                       source_id=B_PAYROLL, key=f"gusto-payroll-{B_PAYROLL}")
            parked.status, parked.last_error = "failed", "Tally said: ledger 'Acme Wages' does not exist"
            # the same payroll id in B as in A: the audit must still keep them apart
            same_id, _ = repo.claim_job(s, flow="gusto.payroll_to_journal", connection_id=src, target_id=tgt,
                                        source_id=DEMO_PAYROLL, key=f"acme-{DEMO_PAYROLL}")
            same_id.status = "failed"
            repo.record_ref(s, connection_id=tgt, source_system="gusto", source_type="payroll", source_id=B_PAYROLL,
                            target_system="tallyprime", target_type="voucher", target_id="acme-voucher-1")
            tokens = {"a": create_token(s, "default", "operator")[1], "b": create_token(s, "acme", "operator")[1],
                      "admin": create_token(s, "default", "admin")[1]}
            row, tokens["revoked"] = create_token(s, "acme", "operator")
            s.flush()
            revoke_token(s, row.id)
            ids = {"b_parked": parked.id, "b_same": same_id.id, "b_source": src}
        repo.ingest_event(url, system="gusto", connection_id=src, payload={"entity_uuid": B_PAYROLL},
                          event_uuid="acme-event-1", event_type="payroll.processed", entity_type="Payroll",
                          entity_id=B_PAYROLL)
        with session_scope(url) as s:
            ids["a_done"] = s.query(SyncJob).filter_by(source_id=DEMO_PAYROLL, tenant_id=1).one().id
        yield dep, tokens, ids


def api(dep, token, method, path):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{dep.web_url}/api{path}", headers=headers, timeout=30)


def status_of(dep, job_id):
    with session_scope(dep.settings.database_url) as s:
        return s.get(SyncJob, job_id).status


def test_each_operator_lists_only_its_own_tenants_jobs_and_connections(world):
    dep, tokens, ids = world
    a_jobs = {j["id"]: j for j in api(dep, tokens["a"], "GET", "/jobs").json()["jobs"]}
    b_jobs = {j["id"]: j for j in api(dep, tokens["b"], "GET", "/jobs").json()["jobs"]}
    assert ids["a_done"] in a_jobs and not {ids["b_parked"], ids["b_same"]} & set(a_jobs)
    assert {ids["b_parked"], ids["b_same"]} <= set(b_jobs) and not set(a_jobs) & set(b_jobs)
    assert {j["tenant_id"] for j in a_jobs.values()} == {1}
    assert {j["tenant_id"] for j in b_jobs.values()} == {2}  # with the job B's own event made
    assert [j["id"] for j in api(dep, tokens["a"], "GET", "/jobs?status=failed").json()["jobs"]] == []
    a_conns = {c["name"] for c in api(dep, tokens["a"], "GET", "/connections").json()["connections"]}
    b_conns = {c["name"] for c in api(dep, tokens["b"], "GET", "/connections").json()["connections"]}
    assert b_conns == {"acme-gusto", "acme-tally"} and not b_conns & a_conns and TALLY_CONN in a_conns


def test_another_tenants_job_audit_and_mapping_are_not_found_and_its_job_is_not_replayed(world):
    dep, tokens, ids = world
    for path in (f"/jobs/{ids['b_parked']}", f"/audit/{B_PAYROLL}", "/connections/acme-gusto/mappings"):
        r = api(dep, tokens["a"], "GET", path)
        assert r.status_code == 404, (path, r.text)
        assert list(r.json()) == ["error"]  # nothing of B's rows leaks
        assert not any(secret in r.text for secret in ("Acme Wages", "acme-voucher", "acme-event", "acme-tally"))
    r = api(dep, tokens["a"], "POST", f"/jobs/{ids['b_parked']}/replay")
    assert r.status_code == 404 and r.json()["reason"] == "no such job"
    assert status_of(dep, ids["b_parked"]) == "failed"
    # the other way round: B cannot read or replay A's job
    assert api(dep, tokens["b"], "GET", f"/jobs/{ids['a_done']}").status_code == 404
    assert api(dep, tokens["b"], "POST", f"/jobs/{ids['a_done']}/replay").status_code == 404
    # an id that does not exist answers the same as another tenant's
    assert api(dep, tokens["a"], "GET", "/jobs/99999").json() == api(dep, tokens["a"], "GET",
                                                                      f"/jobs/{ids['b_parked']}").json()


def test_an_audit_of_one_source_id_shows_only_the_callers_tenant(world):
    dep, tokens, ids = world
    a = api(dep, tokens["a"], "GET", f"/audit/{DEMO_PAYROLL}").json()
    b = api(dep, tokens["b"], "GET", f"/audit/{DEMO_PAYROLL}").json()
    assert ids["b_same"] not in [j["id"] for j in a["jobs"]] and a["events"] and a["external_refs"]
    assert [j["id"] for j in b["jobs"]] == [ids["b_same"]] and b["events"] == [] and b["external_refs"] == []
    assert a["jobs"] and all(j["connection_id"] != ids["b_source"] for j in a["jobs"])
    b_own = api(dep, tokens["b"], "GET", f"/audit/{B_PAYROLL}").json()
    assert [e["uuid"] for e in b_own["events"]] == ["acme-event-1"]
    assert [r["target_id"] for r in b_own["external_refs"]] == ["acme-voucher-1"]


def test_the_admin_sees_every_tenant_and_replays_anothers_job(world):
    dep, tokens, ids = world
    every = {j["id"] for j in api(dep, tokens["admin"], "GET", "/jobs").json()["jobs"]}
    assert {ids["a_done"], ids["b_parked"], ids["b_same"]} <= every
    assert api(dep, tokens["admin"], "GET", f"/audit/{B_PAYROLL}").status_code == 200
    r = api(dep, tokens["admin"], "POST", f"/jobs/{ids['b_same']}/replay")
    assert r.status_code == 200 and r.json() == {"job": ids["b_same"], "replayed": True}


def test_an_over_long_job_id_is_a_400_not_a_500(world):
    dep, tokens, _ids = world
    for method, path in (("GET", "/jobs/99999999999999999999"), ("POST", "/jobs/99999999999999999999/replay"),
                         ("GET", "/jobs/2147483648")):
        r = api(dep, tokens["admin"], method, path)
        assert r.status_code == 400 and "job id" in r.json()["error"]
    replay = CliRunner().invoke(cli, ["jobs", "replay", "99999999999999999999"])
    assert '"reason": "no such job"' in replay.output


def test_revoked_unknown_and_missing_tokens_are_refused(world):
    dep, tokens, _ids = world
    for token in (tokens["revoked"], "mlc_" + "x" * 43, "", None):
        for method, path in (("GET", "/jobs"), ("GET", f"/audit/{B_PAYROLL}"), ("POST", "/jobs/1/replay")):
            assert api(dep, token, method, path).status_code == 401


def test_the_cli_scope_answers_like_the_api(world):
    dep, _tokens, ids = world
    run = CliRunner().invoke
    listed = run(cli, ["jobs", "list", "--tenant", "acme"])
    assert listed.exit_code == 0 and f"#{ids['b_parked']} " in listed.output
    assert f"#{ids['a_done']} " not in listed.output
    replay = run(cli, ["jobs", "replay", str(ids["a_done"]), "--tenant", "acme"])
    assert '"reason": "no such job"' in replay.output
    audit = run(cli, ["audit", B_PAYROLL, "--tenant", "default"])
    assert audit.exit_code != 0 and "nothing is known" in audit.output
    conns = run(cli, ["connections", "list", "--tenant", "acme"])
    assert "acme-gusto" in conns.output and TALLY_CONN not in conns.output
    assert run(cli, ["jobs", "list", "--tenant", "nope"]).exit_code != 0


def test_a_connection_cannot_target_another_tenants_books(world):
    dep, _tokens, _ids = world
    r = CliRunner().invoke(cli, ["connections", "add", "acme-gusto", "--system", "gusto", "--tenant", "acme",
                                 "--target", TALLY_CONN])
    assert r.exit_code != 0 and "not a connection of its tenant" in r.output
    r = CliRunner().invoke(cli, ["connections", "add", "acme-gusto", "--system", "gusto", "--tenant", "default"])
    assert r.exit_code != 0 and "is taken" in r.output  # a name of B's cannot be taken over from A
    with session_scope(dep.settings.database_url) as s:
        assert s.query(Connection).filter_by(name="acme-gusto").one().settings["targets"] == ["acme-tally"]
    # settings edited behind the connector's back: the workers' read refuses the target too
    from connector_tasks.connections import endpoint, get_connection, targets_of
    from connector_tasks.core.errors import ConfigurationError

    with session_scope(dep.settings.database_url) as s:
        conn = get_connection(s, "acme-gusto")
        repo.merge_settings(s, conn.id, {"targets": [TALLY_CONN]})
        for source in (conn, endpoint(conn)):
            with pytest.raises(ConfigurationError, match="not a connection of its tenant"):
                targets_of(s, source)
        repo.merge_settings(s, conn.id, {"targets": ["acme-tally"]})
        assert [t.name for t in targets_of(s, conn)] == ["acme-tally"]


def test_tokens_cli_shows_a_token_once_and_revokes_it(world):
    dep, _tokens, _ids = world
    run = CliRunner().invoke
    made = run(cli, ["tokens", "create", "--tenant", "acme", "--role", "operator", "--label", "bob"])
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    token_id = made.output.split("#", 1)[1].split(" ", 1)[0]
    assert api(dep, token, "GET", "/jobs").status_code == 200
    listing = run(cli, ["tokens", "list", "--tenant", "acme"]).output
    assert "bob" in listing and token not in listing
    assert run(cli, ["tokens", "revoke", token_id]).exit_code == 0
    assert api(dep, token, "GET", "/jobs").status_code == 401
    assert run(cli, ["tokens", "revoke", token_id]).exit_code != 0
    assert "acme" in run(cli, ["tenants", "list"]).output
