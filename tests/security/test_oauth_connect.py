"""Attack: unauthenticated OAuth re-connect. On a running deployment (gunicorn web, worker,
agent, the Gusto emulator's real consent flow; SQLite and PostgreSQL) whose Gusto connection
``demo`` (tenant ``default``) is connected to the example company: a stranger cannot start
OAuth for it (401), an operator of another tenant cannot (404); a callback carrying a state
issued to another browser session is refused (403); an approval of a different company is
refused (409) unless the operator chose ``replace=1``; a state is single use; a token revoked
between start and callback ends the authorization. Every refusal leaves the connection's
company and its stored tokens exactly as they were."""
from __future__ import annotations

import pytest
import requests

from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection
from connector_tasks.tenants import add_tenant, create_token, revoke_token
from sandbox.gusto.app import COMPANY_UUID, OTHER_COMPANY_UUID
from sandbox.gusto.kit import approve_consent
from tests.harness import GUSTO_CONN, deployment_on

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory, redis_server, postgres_admin_url):
    """The deployment (``demo`` connected by the harness through OAuth), tenant ``acme`` with its
    own Gusto connection, and tokens: ``a`` (operator of default), ``b`` (operator of acme)."""
    folder = tmp_path_factory.mktemp(f"oauth-{request.param}")
    with deployment_on(request.param, folder, redis_server.url, postgres_admin_url) as dep:
        with session_scope(dep.settings.database_url) as s:
            acme = add_tenant(s, "acme")
            s.add(Connection(name="acme-gusto", system="gusto", tenant_id=acme.id, settings={}))
            tokens = {"a": create_token(s, "default", "operator")[1], "b": create_token(s, "acme", "operator")[1]}
        yield dep, tokens


def start(dep, browser, token=None, connection=GUSTO_CONN, replace=False):
    """GET our start URL in ``browser`` (with ``token`` as Bearer when given)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"connection": connection, **({"replace": "1"} if replace else {})}
    return browser.get(f"{dep.web_url}/oauth/gusto/start", params=params, headers=headers, allow_redirects=False)


def connected(dep, name=GUSTO_CONN):
    """(account, status, the stored OAuth tokens) of connection ``name``."""
    from connector_tasks import runtime

    with session_scope(dep.settings.database_url) as s:
        conn = s.query(Connection).filter_by(name=name).one()
        return conn.account, conn.status, repo.read_credentials(conn, runtime.vault()).get("oauth")


def test_a_stranger_cannot_start_oauth_for_a_connection(world):
    dep, _tokens = world
    before = connected(dep)
    for headers in ({}, {"Authorization": "Bearer mlc_" + "x" * 43}, {"Authorization": "Basic YTpi"}):
        r = requests.get(f"{dep.web_url}/oauth/gusto/start", params={"connection": GUSTO_CONN}, headers=headers,
                         allow_redirects=False, timeout=30)
        assert r.status_code == 401 and "Location" not in r.headers
    assert connected(dep) == before


def test_an_operator_of_another_tenant_cannot_start_it_and_learns_nothing(world):
    dep, tokens = world
    theirs = start(dep, requests.Session(), tokens["b"])
    nobody = start(dep, requests.Session(), tokens["b"], connection="no-such-connection")
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.json()["error"].replace(GUSTO_CONN, "X") == nobody.json()["error"].replace("no-such-connection", "X")
    assert start(dep, requests.Session(), tokens["b"], connection="acme-gusto").status_code == 302  # its own


def test_a_callback_from_another_browser_session_is_refused_and_changes_nothing(world):
    dep, tokens = world
    before = connected(dep)
    assert before[0] == COMPANY_UUID and before[2]["access_token"]
    # the attacker, an operator of acme, starts for their own connection and approves their company …
    attacker = requests.Session()
    callback = approve_consent(start(dep, attacker, tokens["b"], connection="acme-gusto").headers["Location"],
                               OTHER_COMPANY_UUID)
    # … and has the operator of demo open that callback in their own (authenticated) session
    victim = requests.Session()
    assert start(dep, victim, tokens["a"]).status_code == 302  # the victim has a session
    r = victim.get(callback, allow_redirects=False)
    assert r.status_code == 403 and "another browser session" in r.json()["error"]
    # a state of the victim's own start, completed in a browser without the victim's cookie
    victims_consent = start(dep, victim, tokens["a"]).headers["Location"]
    stolen = approve_consent(victims_consent, OTHER_COMPANY_UUID)
    assert requests.get(stolen, allow_redirects=False, timeout=30).status_code == 403
    assert victim.get(stolen, allow_redirects=False).status_code == 400  # spent: single use
    assert connected(dep) == before
    assert connected(dep, "acme-gusto")[0] is None


def test_a_different_company_without_replace_is_refused_and_changes_nothing(world):
    dep, tokens = world
    before = connected(dep)
    browser = requests.Session()
    callback = approve_consent(start(dep, browser, tokens["a"]).headers["Location"], OTHER_COMPANY_UUID, browser)
    r = browser.get(callback, allow_redirects=False)
    assert r.status_code == 409 and "replace=1" in r.json()["error"] and COMPANY_UUID in r.json()["error"]
    assert connected(dep) == before
    # the same company again (a routine re-authorisation) needs no replace
    callback = approve_consent(start(dep, browser, tokens["a"]).headers["Location"], COMPANY_UUID, browser)
    r = browser.get(callback, allow_redirects=False)
    assert r.status_code == 200 and r.json()["account"] == COMPANY_UUID
    after = connected(dep)
    assert after[0] == COMPANY_UUID and after[2]["access_token"] != before[2]["access_token"]


def test_a_token_revoked_before_the_callback_ends_the_authorisation(world):
    dep, _tokens = world
    with session_scope(dep.settings.database_url) as s:
        row, token = create_token(s, "default", "operator", label="leaving")
        s.flush()
        token_id = row.id
    before = connected(dep)
    browser = requests.Session()
    callback = approve_consent(start(dep, browser, token).headers["Location"], COMPANY_UUID, browser)
    with session_scope(dep.settings.database_url) as s:
        revoke_token(s, token_id)
    assert browser.get(callback, allow_redirects=False).status_code == 401
    assert start(dep, browser).status_code == 401  # the session it opened is gone with it
    assert connected(dep) == before


def test_a_session_opened_with_a_token_can_start_and_replace_only_when_chosen(world):
    dep, tokens = world
    browser = requests.Session()
    assert browser.post(f"{dep.web_url}/oauth/session").status_code == 401
    opened = browser.post(f"{dep.web_url}/oauth/session", headers={"Authorization": f"Bearer {tokens['a']}"})
    assert opened.status_code == 200 and opened.json() == {"tenant_id": 1, "role": "operator"}
    try:
        r = start(dep, browser, replace=True)  # the cookie alone, no Bearer
        assert r.status_code == 302
        r = browser.get(approve_consent(r.headers["Location"], OTHER_COMPANY_UUID, browser), allow_redirects=False)
        assert r.status_code == 200 and r.json()["account"] == OTHER_COMPANY_UUID
        assert connected(dep)[0] == OTHER_COMPANY_UUID
    finally:  # back to the example company for the module's other tests
        r = start(dep, browser, replace=True)
        browser.get(approve_consent(r.headers["Location"], COMPANY_UUID, browser), allow_redirects=False)
    assert connected(dep)[0] == COMPANY_UUID
