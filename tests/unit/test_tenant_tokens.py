"""Operator tokens: only their SHA-256 is stored, a revoked or unknown token is refused, the role
decides the scope (operator: its tenant; admin: every tenant)."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from connector_tasks.core.errors import ConfigurationError
from connector_tasks.store.db import session_scope, upgrade
from connector_tasks.store.models import ApiToken, SyncJob
from connector_tasks.tenants import (
    ALL_TENANTS, Caller, Scope, add_tenant, authenticate, create_token, hash_token, new_token, revoke_token,
    scope_of, tenant_id_of, token_active,
)


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    return url


def test_tokens_are_random_and_only_their_sha256_is_kept(store):
    a, b = new_token(), new_token()
    assert a != b and a.startswith("mlc_") and len(a) == 4 + 43
    assert hash_token(a) == hashlib.sha256(a.encode()).hexdigest()
    with session_scope(store) as s:
        add_tenant(s, "acme")
        row, token = create_token(s, "acme", "operator", label="alice")
    with session_scope(store) as s:
        stored = s.scalar(select(ApiToken))
        assert stored.token_hash == hash_token(token)
        assert token not in (stored.token_hash, stored.label)


def test_authenticate_gives_the_role_and_tenant_and_refuses_revoked_and_unknown(store):
    with session_scope(store) as s:
        acme = add_tenant(s, "acme").id
        op_row, op = create_token(s, "acme", "operator")
        admin_row, admin = create_token(s, "default", "admin")
    with session_scope(store) as s:
        assert authenticate(s, op) == Caller(op_row.id, acme, "operator")
        assert authenticate(s, admin) == Caller(admin_row.id, 1, "admin")
        assert authenticate(s, op[:-1] + ("A" if op[-1] != "A" else "B")) is None
        assert authenticate(s, "not-a-token") is None
        assert authenticate(s, "mlc_" + "x" * 500) is None
        assert revoke_token(s, op_row.id) is True
    with session_scope(store) as s:
        assert authenticate(s, op) is None
        assert token_active(s, op_row.id) is False and token_active(s, admin_row.id) is True
        assert revoke_token(s, op_row.id) is False  # already revoked
        assert revoke_token(s, 999) is False


def test_roles_decide_the_scope():
    operator, admin = Caller(5, 2, "operator"), Caller(6, 2, "admin")
    assert operator.scope == Scope(2) and operator.scope.allows(2) and not operator.scope.allows(3)
    assert not operator.scope.allows(None)  # a row of no tenant: admin only
    assert admin.scope is ALL_TENANTS and admin.scope.allows(3) and admin.scope.allows(None)
    assert str(operator.scope.where(SyncJob.tenant_id).compile()) == "sync_job.tenant_id = :tenant_id_1"


def test_bad_tenant_names_roles_and_unknown_tenants_are_clear_errors(store):
    with session_scope(store) as s:
        with pytest.raises(ConfigurationError, match="letters, digits"):
            add_tenant(s, "bad name; drop")
        add_tenant(s, "acme")
        with pytest.raises(ConfigurationError, match="exists"):
            add_tenant(s, "acme")
        with pytest.raises(ConfigurationError, match="role 'root'"):
            create_token(s, "acme", "root")
        with pytest.raises(ConfigurationError, match="no tenant named 'nope'"):
            create_token(s, "nope", "operator")
        assert tenant_id_of(s, None) == 1 and tenant_id_of(s, "default") == 1
        assert scope_of(s, None) is ALL_TENANTS and scope_of(s, "acme") == Scope(tenant_id_of(s, "acme"))


def test_an_agent_is_enrolled_for_the_connections_of_one_tenant_only(store):
    """Agents belong to the tenant of their connections: enrolling one agent for two tenants'
    Tally connections is refused, nothing is created; one tenant's connections are accepted."""
    from connector_tasks.agents.enrol import enroll
    from connector_tasks.agents.models import Agent
    from connector_tasks.connections import open_connection

    with session_scope(store) as s:
        acme, beta = add_tenant(s, "acme").id, add_tenant(s, "beta").id
        open_connection(s, "acme-tally", "tallyprime", tenant_id=acme)
        open_connection(s, "acme-tally-2", "tallyprime", tenant_id=acme)
        open_connection(s, "beta-tally", "tallyprime", tenant_id=beta)
    with session_scope(store) as s:
        with pytest.raises(ConfigurationError, match="another tenant"):
            enroll(s, ["acme-tally", "beta-tally"])
    with session_scope(store) as s:
        assert s.scalar(select(Agent)) is None
        agent_id, code = enroll(s, ["acme-tally", "acme-tally-2"])
        assert s.get(Agent, agent_id).connections == ["acme-tally", "acme-tally-2"]
