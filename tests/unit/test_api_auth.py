"""The operator API is guarded by API_TOKEN; in production it stays off until one is set."""
from config.settings import Settings


def client_for(tmp_path, **env):
    from webapp import create_app

    settings = Settings.from_env({"INSTANCE_PATH": str(tmp_path), "ML_CONNECTOR_ENV": "test",
                                  "DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}", **env})
    return create_app(settings).test_client()


def test_with_a_token_every_api_call_needs_it(tmp_path):
    c = client_for(tmp_path, API_TOKEN="s3cret-token")
    assert c.get("/api/jobs").status_code == 401
    assert c.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = c.get("/api/jobs", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and ok.get_json() == {"jobs": []}
    assert c.post("/api/jobs/1/replay").status_code == 401


def test_mapping_route_refuses_a_malformed_body_and_an_unknown_connection(tmp_path):
    c = client_for(tmp_path)
    r = c.put("/api/connections/acme/mappings/ledger/net_pay", json={"ledger": 5})
    assert r.status_code == 400
    assert c.get("/api/connections/nope/mappings").status_code == 404


def test_in_production_the_api_is_off_without_a_token(tmp_path):
    from config.settings import set_settings

    c = client_for(tmp_path)
    test_settings = Settings.from_env({"INSTANCE_PATH": str(tmp_path), "ML_CONNECTOR_ENV": "test",
                                       "DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"})
    set_settings(test_settings.with_overrides(env="production", redis_url="redis://127.0.0.1:1/0")
                 .with_env(GUSTO_CLIENT_ID="cid", GUSTO_CLIENT_SECRET="secret"))
    try:
        r = c.get("/api/jobs")
        assert r.status_code == 403 and "API_TOKEN" in r.get_json()["error"]
    finally:
        set_settings(test_settings)
