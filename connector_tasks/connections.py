"""Connections as the flows, the CLI and the web app see them: the one lookup by name, typed
settings (each system's dataclass from the registry, validated when written), a connection's
targets, and runtime state.

A connection belongs to one tenant (``tenant_id``). Lookups made for a caller (the CLI, the
API, OAuth connect) pass that caller's ``scope``: a connection of another tenant is answered
as "no connection named …", exactly like one that does not exist. A connection's targets must
be connections of its own tenant (checked when the setting is written and when it is read).

Every function takes an open SQLAlchemy ``Session`` and leaves committing to the caller.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector_tasks.connectors import registry
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.core.schema import TypedSettings
from connector_tasks.domain.ports import Role
from connector_tasks.store import repo
from connector_tasks.store.models import Connection


@dataclass(frozen=True)
class Endpoint:
    """A connection as a flow or a client factory sees it, detached from the session:
    ``id``, ``name``, ``system`` (registry name), ``account``, ``settings`` (the system's typed
    settings), ``status`` and ``tenant_id``."""

    id: int
    name: str
    system: str
    account: str | None
    settings: Any
    status: str = "connected"
    tenant_id: int | None = None

    @property
    def spec(self) -> registry.SystemSpec:
        """The system's registry entry."""
        return registry.get(self.system)


def get_connection(session: Session, name: str, *, system: str | None = None, scope=None) -> Connection:
    """The connection called ``name`` (of ``system`` when given; within ``scope``, a
    :class:`connector_tasks.tenants.Scope`, when given: pass the caller's for every lookup
    made on a caller's behalf). Raises :class:`ConfigurationError` when there is none (or it
    is outside ``scope``: the same message), or when it is of another system."""
    conn = session.scalar(select(Connection).where(Connection.name == name))
    if conn is None or (scope is not None and not scope.allows(conn.tenant_id)):
        raise ConfigurationError(f"no connection named {name!r}")
    if system is not None and conn.system != system:
        raise ConfigurationError(f"connection {name!r} is a {conn.system} connection, not a "
                                 f"{registry.get(system).title} one")
    return conn


def find_connection(session: Session, name: str, *, system: str | None = None) -> Connection | None:
    """The connection called ``name`` (and of ``system`` when given), or ``None``."""
    query = select(Connection).where(Connection.name == name)
    if system is not None:
        query = query.where(Connection.system == system)
    return session.scalar(query)


def open_connection(session: Session, name: str, system: str, *, tenant_id: int) -> Connection:
    """The connection called ``name`` of tenant ``tenant_id``, created (empty settings,
    flushed) when there is none. Connection names are unique across tenants (they appear in
    webhook URLs and queue names). Raises :class:`ConfigurationError` when the name is taken
    by another tenant, or exists as a connection of another system."""
    conn = find_connection(session, name)
    if conn is not None and conn.tenant_id != tenant_id:
        raise ConfigurationError(f"connection name {name!r} is taken; choose another")
    if conn is not None and conn.system != system:
        raise ConfigurationError(f"connection {name!r} is a {conn.system} connection")
    if conn is None:
        conn = Connection(name=name, system=system, settings={}, tenant_id=tenant_id)
        session.add(conn)
        session.flush()
    return conn


def save_connection(session: Session, name: str, system: str, *, tenant_id: int, account: str | None,
                    settings: dict[str, Any], credentials: dict | None = None) -> Connection:
    """Create or update connection ``name`` of ``system`` in tenant ``tenant_id`` as an
    operator's ``connect`` command does (see :func:`open_connection`): ``account``, status ``connected``, ``settings`` validated and stored
    (:func:`write_settings`), and ``credentials`` (when given) replacing the encrypted ones (so
    tokens of an earlier client go). Raises :class:`ConfigurationError` naming a bad setting, or
    when ``name`` is a connection of another system; nothing is written then."""
    from connector_tasks import runtime

    conn = open_connection(session, name, system, tenant_id=tenant_id)
    conn.account, conn.status = account, "connected"
    write_settings(session, conn, settings)
    if credentials is not None:
        repo.write_credentials(conn, runtime.vault(), credentials)
    return conn


def settings_type(system: str) -> type[TypedSettings]:
    """The typed settings class of ``system`` (its registry entry's ``settings``)."""
    spec = registry.get(system)
    return spec.load("settings") if spec.settings else TypedSettings


def settings_of(conn) -> Any:
    """``conn``'s settings as its system's dataclass (``conn`` is a ``Connection`` row or an
    :class:`Endpoint`). Keys a newer release wrote are ignored; a stored value of the wrong
    type raises ConfigurationError naming it."""
    if isinstance(conn, Endpoint):
        return conn.settings
    cls = settings_type(conn.system)
    if cls is TypedSettings:
        return None
    return cls.from_dict(conn.settings or {}, strict=False)


def endpoint(conn: Connection) -> Endpoint:
    """The detached :class:`Endpoint` of row ``conn``."""
    return Endpoint(conn.id, conn.name, conn.system, conn.account, settings_of(conn), conn.status, conn.tenant_id)


def write_settings(session: Session, conn: Connection, changes: dict[str, Any]) -> Any:
    """Validate ``changes`` against ``conn``'s settings dataclass and store them (``None``
    resets a field to its default); other settings are left as they are, in one ``UPDATE``
    (:func:`repo.merge_settings`). Returns the new typed settings. Raises ConfigurationError
    naming an unknown setting or a bad value, or a target that is a connection of another
    tenant, before anything is written."""
    cls = settings_type(conn.system)
    if cls is TypedSettings:
        if changes:
            raise ConfigurationError(f"{registry.get(conn.system).title} connections have no settings "
                                     f"({', '.join(changes)})")
        return None
    current = cls.from_dict(conn.settings or {}, strict=False)
    new = current.merged(changes)
    for name in getattr(new, "targets", ()) or ():
        other = session.scalar(select(Connection.tenant_id).where(Connection.name == name))
        if other is not None and other != conn.tenant_id:  # one not created yet is checked when read
            raise ConfigurationError(f"target {name!r} of connection {conn.name!r} is not a connection "
                                     "of its tenant")
    stored = new.to_dict()
    repo.merge_settings(session, conn.id, {k: stored.get(k) for k in changes})
    return new


def target_names(conn) -> tuple[str, ...]:
    """The names of the connections ``conn`` (a source connection) feeds (its ``targets``
    setting; empty for a system without one)."""
    settings = settings_of(conn)
    return tuple(getattr(settings, "targets", ()) or ())


def _same_tenant_target(session: Session, conn, name: str) -> Connection:
    """Target ``name`` of ``conn``, which must be a connection of ``conn``'s tenant (a payroll
    of one tenant never lands in another tenant's books). Raises ConfigurationError naming it
    (the same message for another tenant's connection as for none)."""
    tenant = getattr(conn, "tenant_id", None)
    if tenant is None:  # an Endpoint built without it: its row knows the tenant
        tenant = session.scalar(select(Connection.tenant_id).where(Connection.id == conn.id))
    target = session.scalar(select(Connection).where(Connection.name == name))
    if target is None or target.tenant_id != tenant:
        raise ConfigurationError(f"target {name!r} of connection {conn.name!r} is not a connection "
                                 "of its tenant")
    return target


def targets_of(session: Session, conn, role: Role | None = None) -> list[Connection]:
    """The target connections of source connection ``conn``, in order; with ``role``, only
    those whose system plays it. Raises ConfigurationError naming a target that does not
    exist or belongs to another tenant."""
    out = []
    for name in target_names(conn):
        target = _same_tenant_target(session, conn, name)
        if role is None or registry.get(target.system).plays(role):
            out.append(target)
    return out


def sources_of(session: Session, target: Connection) -> Iterable[Connection]:
    """The connections of ``target``'s tenant that name ``target`` among their targets."""
    for conn in session.scalars(select(Connection).where(Connection.tenant_id == target.tenant_id)
                                .order_by(Connection.id)):
        if conn.id != target.id and target.name in target_names(conn):
            yield conn
