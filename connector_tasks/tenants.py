"""Tenants, operator API tokens and the scope every caller-facing query runs in.

* A :class:`~connector_tasks.store.models.Tenant` is one customer's workspace. Connections and
  jobs carry its id; everything else belongs to the tenant of its connection or job.
* An operator token is ``mlc_`` + 32 random bytes (URL-safe base64, :func:`secrets.token_urlsafe`);
  the store keeps only its SHA-256 (hex), so a leaked store reveals no usable token. The token
  is shown once, when created. A token has a role: ``operator`` (its own tenant only) or
  ``admin`` (the service's administrator: every tenant). A revoked token is refused.
* A :class:`Scope` is what a caller may see: one tenant, or every tenant (admin). Caller-facing
  queries (the operator API, the CLI) take one and filter with it; a row outside the scope is
  answered exactly like a row that does not exist (404, "no such job"), so a tenant cannot
  learn what other tenants have.

SHA-256 without a salt or a slow hash is enough here because the token is 256 bits of
randomness, not a password (no dictionary to try; OWASP "Password Storage Cheat Sheet" applies
to low-entropy secrets, https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from connector_tasks.core.errors import ConfigurationError
from connector_tasks.store.models import DEFAULT_TENANT, DEFAULT_TENANT_ID, ApiToken, Tenant, utcnow

ROLES = ("operator", "admin")
TOKEN_PREFIX = "mlc_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Scope:
    """What a caller may see: ``tenant_id`` (one tenant) or ``None`` (every tenant: the
    service admin, or the CLI run without ``--tenant`` by whoever holds ``DATABASE_URL``)."""

    tenant_id: int | None

    @property
    def everything(self) -> bool:
        """True for the admin's scope (every tenant)."""
        return self.tenant_id is None

    def allows(self, tenant_id: int | None) -> bool:
        """Whether a row of tenant ``tenant_id`` is visible in this scope (a row of no tenant,
        e.g. an event for no connection, only to the admin)."""
        return self.tenant_id is None or tenant_id == self.tenant_id

    def where(self, column):
        """A WHERE clause limiting ``column`` (a tenant id column) to this scope."""
        return true() if self.tenant_id is None else column == self.tenant_id


#: every tenant (the admin's scope)
ALL_TENANTS = Scope(None)


@dataclass(frozen=True)
class Caller:
    """An authenticated operator: ``token_id`` (0 for the legacy ``API_TOKEN``), ``tenant_id``,
    ``role`` (``operator`` or ``admin``)."""

    token_id: int
    tenant_id: int
    role: str

    @property
    def scope(self) -> Scope:
        """The caller's :class:`Scope`: every tenant for an admin, else its own tenant."""
        return ALL_TENANTS if self.role == "admin" else Scope(self.tenant_id)


def hash_token(token: str) -> str:
    """The hex SHA-256 of ``token`` (UTF-8): what the store keeps."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """A fresh operator token: ``mlc_`` and 43 URL-safe characters (32 random bytes)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def add_tenant(session: Session, name: str) -> Tenant:
    """Create tenant ``name`` (flushed). Raises ConfigurationError for a bad or taken name."""
    if not _NAME.match(name or ""):
        raise ConfigurationError(f"tenant name {name!r}: letters, digits, '-' and '_', at most 64")
    if session.scalar(select(Tenant).where(Tenant.name == name)) is not None:
        raise ConfigurationError(f"tenant {name!r} exists")
    tenant = Tenant(name=name)
    session.add(tenant)
    session.flush()
    return tenant


def get_tenant(session: Session, name: str) -> Tenant:
    """Tenant ``name``. Raises ConfigurationError when there is none."""
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        raise ConfigurationError(f"no tenant named {name!r}")
    return tenant


def tenant_id_of(session: Session, name: str | None) -> int:
    """The id of tenant ``name`` (``None``: the default tenant). Raises ConfigurationError."""
    return DEFAULT_TENANT_ID if name in (None, DEFAULT_TENANT) else get_tenant(session, name).id


def scope_of(session: Session, name: str | None) -> Scope:
    """The scope of tenant ``name``, or every tenant for ``None``. Raises ConfigurationError."""
    return ALL_TENANTS if name is None else Scope(get_tenant(session, name).id)


def create_token(session: Session, tenant: str, role: str, label: str | None = None) -> tuple[ApiToken, str]:
    """A new token of tenant ``tenant`` (a name) with ``role``; returns (row, token). The token
    is not stored (only its hash): show it once. Raises ConfigurationError for an unknown
    tenant or role."""
    if role not in ROLES:
        raise ConfigurationError(f"role {role!r}: one of {', '.join(ROLES)}")
    token = new_token()
    row = ApiToken(tenant_id=get_tenant(session, tenant).id, role=role, token_hash=hash_token(token),
                   label=label)
    session.add(row)
    session.flush()
    return row, token


def revoke_token(session: Session, token_id: int) -> bool:
    """Revoke token ``token_id`` (from now on it is refused); returns False when there is no
    such token or it was already revoked."""
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True


def authenticate(session: Session, token: str) -> Caller | None:
    """The :class:`Caller` of ``token``, or ``None`` when it is unknown or revoked. One lookup
    by the token's hash (unique index); the hash is compared in constant time once found."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return Caller(token_id=row.id, tenant_id=row.tenant_id, role=row.role)


def token_active(session: Session, token_id: int) -> bool:
    """Whether token ``token_id`` exists and is not revoked (0, the legacy ``API_TOKEN``, is
    active while it is configured: the caller checks that)."""
    if token_id == 0:
        return True
    row = session.get(ApiToken, token_id)
    return row is not None and row.revoked_at is None
