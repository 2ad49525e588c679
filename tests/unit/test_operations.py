"""Key rotation over the store, on SQLite and PostgreSQL."""
import pytest
from sqlalchemy import select

from config.settings import Settings, set_settings
from connector_tasks import runtime
from connector_tasks.core.crypto import Vault
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.operations import rotate_credentials
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection


def test_rotate_keys_reencrypts_everything_under_the_new_key(database_url, tmp_path):
    old, new = Vault.generate_key(), Vault.generate_key()
    base = Settings.from_env({"INSTANCE_PATH": str(tmp_path)}).with_overrides(database_url=database_url,
                                                                              redis_url="redis://unused")
    set_settings(base.with_overrides(fernet_keys=(old,)))
    with session_scope(database_url) as s:
        for i in range(3):
            conn = Connection(name=f"c{i}", system="gusto", settings={})
            repo.write_credentials(conn, runtime.vault(), {"oauth": {"refresh_token": f"r{i}"}})
            s.add(conn)
    set_settings(base.with_overrides(fernet_keys=(new, old)))
    assert rotate_credentials() == 3
    only_new = Vault([new])
    with session_scope(database_url) as s:
        creds = [only_new.decrypt(c.credentials) for c in s.scalars(select(Connection).order_by(Connection.name))]
    assert [c["oauth"]["refresh_token"] for c in creds] == ["r0", "r1", "r2"]
    set_settings(base.with_overrides(fernet_keys=(Vault.generate_key(),)))
    with pytest.raises(ConfigurationError):
        rotate_credentials()
