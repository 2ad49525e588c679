"""Connections as the flows, the CLI and the web app see them: the one lookup by name, typed
settings (each system's dataclass from the registry, validated when written), a connection's
targets, and runtime state.

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
    settings) and ``status``."""

    id: int
    name: str
    system: str
    account: str | None
    settings: Any
    status: str = "connected"

    @property
    def spec(self) -> registry.SystemSpec:
        """The system's registry entry."""
        return registry.get(self.system)


def get_connection(session: Session, name: str, *, system: str | None = None) -> Connection:
    """The connection called ``name`` (of ``system`` when given). Raises
    :class:`ConfigurationError` when there is none, or when it is of another system."""
    conn = session.scalar(select(Connection).where(Connection.name == name))
    if conn is None:
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


def open_connection(session: Session, name: str, system: str) -> Connection:
    """The connection called ``name``, created (empty settings, flushed) when there is none.
    Raises :class:`ConfigurationError` when it exists as a connection of another system."""
    conn = find_connection(session, name)
    if conn is not None and conn.system != system:
        raise ConfigurationError(f"connection {name!r} is a {conn.system} connection")
    if conn is None:
        conn = Connection(name=name, system=system, settings={})
        session.add(conn)
        session.flush()
    return conn


def save_connection(session: Session, name: str, system: str, *, account: str | None, settings: dict[str, Any],
                    credentials: dict | None = None) -> Connection:
    """Create or update connection ``name`` of ``system`` as an operator's ``connect`` command
    does: ``account``, status ``connected``, ``settings`` validated and stored
    (:func:`write_settings`), and ``credentials`` (when given) replacing the encrypted ones (so
    tokens of an earlier client go). Raises :class:`ConfigurationError` naming a bad setting, or
    when ``name`` is a connection of another system; nothing is written then."""
    from connector_tasks import runtime

    conn = open_connection(session, name, system)
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
    return Endpoint(conn.id, conn.name, conn.system, conn.account, settings_of(conn), conn.status)


def write_settings(session: Session, conn: Connection, changes: dict[str, Any]) -> Any:
    """Validate ``changes`` against ``conn``'s settings dataclass and store them (``None``
    resets a field to its default); other settings are left as they are, in one ``UPDATE``
    (:func:`repo.merge_settings`). Returns the new typed settings. Raises ConfigurationError
    naming an unknown setting or a bad value, before anything is written."""
    cls = settings_type(conn.system)
    if cls is TypedSettings:
        if changes:
            raise ConfigurationError(f"{registry.get(conn.system).title} connections have no settings "
                                     f"({', '.join(changes)})")
        return None
    current = cls.from_dict(conn.settings or {}, strict=False)
    new = current.merged(changes)
    stored = new.to_dict()
    repo.merge_settings(session, conn.id, {k: stored.get(k) for k in changes})
    return new


def target_names(conn) -> tuple[str, ...]:
    """The names of the connections ``conn`` (a source connection) feeds (its ``targets``
    setting; empty for a system without one)."""
    settings = settings_of(conn)
    return tuple(getattr(settings, "targets", ()) or ())


def targets_of(session: Session, conn, role: Role | None = None) -> list[Connection]:
    """The target connections of source connection ``conn``, in order; with ``role``, only
    those whose system plays it. Raises ConfigurationError naming a target that does not
    exist."""
    out = []
    for name in target_names(conn):
        target = get_connection(session, name)
        if role is None or registry.get(target.system).plays(role):
            out.append(target)
    return out


def sources_of(session: Session, target: Connection) -> Iterable[Connection]:
    """The connections that name ``target`` among their targets."""
    for conn in session.scalars(select(Connection).order_by(Connection.id)):
        if conn.id != target.id and target.name in target_names(conn):
            yield conn
