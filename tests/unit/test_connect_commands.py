"""The operator's connect commands over a real store (SQLite and PostgreSQL): a connection is
created or updated once, its settings checked, its credentials stored encrypted and replaced on
a reconnect; a name that belongs to another system is refused."""
from click.testing import CliRunner
from sqlalchemy import select

from config.settings import Settings, set_settings
from connector_tasks import runtime
from connector_tasks.cli import main
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _connections(url: str) -> dict:
    with session_scope(url) as s:
        return {c.name: (c.system, c.account, c.status, dict(c.settings), repo.read_credentials(c, runtime.vault()))
                for c in s.scalars(select(Connection))}


def test_connect_commands_create_update_and_refuse_another_system(database_url, tmp_path):
    set_settings(Settings.from_env({"INSTANCE_PATH": str(tmp_path)}).with_overrides(
        database_url=database_url, redis_url="redis://unused"))
    r = _run("acumatica", "connect", "acu", "--base-url", "https://acme.example/ERP", "--tenant", "Acme",
             "--branch", "HQ", "--client-id", "g@Acme", "--client-secret", "s1", "--username", "api",
             "--password", "pw")
    assert r.exit_code == 0, r.output
    r = _run("ifs_cloud", "connect", "ifs", "--system-url", "https://acme.ifs.cloud", "--namespace", "acme",
             "--client-id", "mlc", "--client-secret", "s2", "--default-company", "10", "--no-settlement")
    assert r.exit_code == 0, r.output
    found = _connections(database_url)
    assert found["acu"][:3] == ("acumatica", "Acme", "connected") and found["acu"][3]["branch"] == "HQ"
    assert found["acu"][4] == {"username": "api", "password": "pw", "client_id": "g@Acme", "client_secret": "s1"}
    assert found["ifs"][:3] == ("ifs_cloud", "acme", "connected")
    assert (found["ifs"][3]["default_company"], found["ifs"][3]["settlement"]) == ("10", False)
    assert found["ifs"][4] == {"client_id": "mlc", "client_secret": "s2"}
    # a reconnect replaces the credentials (tokens of the earlier client go) and keeps one row
    with session_scope(database_url) as s:
        conn = s.scalar(select(Connection).where(Connection.name == "ifs"))
        repo.write_credentials(conn, runtime.vault(), {"client_id": "mlc", "client_secret": "s2",
                                                       "iam_tokens": {"access_token": "t"}})
    assert _run("ifs_cloud", "connect", "ifs", "--system-url", "https://acme.ifs.cloud", "--namespace", "acme",
                "--client-id", "mlc2", "--client-secret", "s3", "--default-company", "20").exit_code == 0
    found = _connections(database_url)
    assert found["ifs"][4] == {"client_id": "mlc2", "client_secret": "s3"} and found["ifs"][3]["default_company"] == "20"
    refused = _run("ifs_cloud", "connect", "acu", "--system-url", "https://x.ifs.cloud", "--namespace", "n",
                   "--client-id", "c", "--client-secret", "s", "--default-company", "10")
    assert refused.exit_code == 1 and "'acu' is a acumatica connection" in refused.output
    bad = _run("ifs_cloud", "connect", "ifs2", "--system-url", "https://x.ifs.cloud/main", "--namespace", "n",
               "--client-id", "c", "--client-secret", "s", "--default-company", "10")
    assert bad.exit_code == 1 and "system_url" in bad.output and "ifs2" not in _connections(database_url)
    assert _run("connections", "add", "g", "--system", "gusto", "--target", "ifs").exit_code == 0
    again = _run("connections", "add", "ifs", "--system", "gusto")
    assert again.exit_code == 1 and "'ifs' is a ifs_cloud connection" in again.output
