"""The operator API needs an operator token (stored hashed) or the legacy API_TOKEN (an admin
of the default tenant); without one every route is a 401, in every environment."""
from config.settings import Settings


def client_for(tmp_path, **env):
    from webapp import create_app

    settings = Settings.from_env({"INSTANCE_PATH": str(tmp_path), "ML_CONNECTOR_ENV": "test",
                                  "DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}", **env})
    return create_app(settings).test_client()


def _token(tmp_path, role="operator"):
    from connector_tasks import runtime
    from connector_tasks.store.db import session_scope
    from connector_tasks.tenants import create_token

    with session_scope(runtime.settings().database_url) as s:
        return create_token(s, "default", role)[1]


def test_the_legacy_api_token_is_an_admin_and_every_call_needs_a_token(tmp_path):
    c = client_for(tmp_path, API_TOKEN="s3cret-token")
    assert c.get("/api/jobs").status_code == 401
    assert c.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = c.get("/api/jobs", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and ok.get_json() == {"jobs": []}
    assert c.post("/api/jobs/1/replay").status_code == 401


def test_without_any_token_configured_the_api_is_closed(tmp_path):
    c = client_for(tmp_path)
    r = c.get("/api/jobs")
    assert r.status_code == 401 and "tokens create" in r.get_json()["error"]


def test_mapping_route_refuses_a_malformed_body_and_an_unknown_connection(tmp_path):
    c = client_for(tmp_path)
    auth = {"Authorization": f"Bearer {_token(tmp_path)}"}
    r = c.put("/api/connections/acme/mappings/ledger/net_pay", json={"ledger": 5}, headers=auth)
    assert r.status_code == 400
    assert c.put("/api/connections/acme/mappings/ledger/net_pay", json={"ledger": "x"}, headers=auth).status_code == 404
    assert c.get("/api/connections/nope/mappings", headers=auth).status_code == 404
