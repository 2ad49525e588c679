"""Per-connection mappings, as the CLI and the API edit them: which ledger each pay component
and each earning type goes to.

A mapping names a ledger a person keeps in their books, so it is checked against the existing
ledgers of each target that can tell (its target side's ``missing_ledgers``, e.g. through the
agent beside the books, since only the agent can reach them) before it is saved. A mapping to a
ledger that does not exist is refused with the ledger's name.

Every function takes the caller's ``scope`` (:class:`connector_tasks.tenants.Scope`): a
connection of another tenant is "no connection named …", like one that does not exist.
"""
from __future__ import annotations

from connector_tasks import runtime
from connector_tasks.connections import get_connection, targets_of
from connector_tasks.core.errors import ConfigurationError, MappingError
from connector_tasks.domain.ports import Role
from connector_tasks.flows import targets
from connector_tasks.flows.mapping.payroll import COMPONENT_KEYS, COMPONENTS, PayrollMapping
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Mapping

#: mapping kinds a person edits: ``ledger`` (key = pay component), ``earning_type`` (key = name)
KINDS = ("ledger", "earning_type")


def show(connection_name: str, *, scope) -> dict:
    """The connection's effective payroll mapping: ``{"components": [{component, side, ledger,
    group, mapped}], "earning_types": [{earning_type, ledger, mapped}], "cost_category"}``
    (``mapped``: a person chose it; otherwise the default). Raises ConfigurationError for an
    unknown connection (or one outside ``scope``)."""
    from connector_tasks.flows.payroll import payroll_mapping

    with session_scope(runtime.settings().database_url) as s:
        conn = get_connection(s, connection_name, scope=scope)
        mapping: PayrollMapping = payroll_mapping(s, conn)
        overrides = repo.mapping_overrides(s, conn.id)
        earnings = repo.mapping_overrides(s, conn.id, kind="earning_type")
        known = repo.get_state(s, conn.id, "earning_types") or []
    return {
        "connection": connection_name, "cost_category": mapping.cost_category,
        "components": [{"component": c.key, "side": c.side, "ledger": mapping.ledgers[c.key],
                        "group": mapping.groups[mapping.ledgers[c.key]], "mapped": c.key in overrides}
                       for c in COMPONENTS],
        "earning_types": [{"earning_type": name, "ledger": mapping.earning_ledger(name), "mapped": name in earnings}
                          for name in sorted(set(known) | set(earnings))],
    }


def _target_ledgers_missing(connection_name: str, names: list[str], wait: float) -> tuple[list[str], str]:
    """(missing ledger names, where they were looked for) across the connection's ledger
    targets that can tell. Raises ConfigurationError when none can."""
    with session_scope(runtime.settings().database_url) as s:
        conn = get_connection(s, connection_name)
        found = targets_of(s, conn, Role.LEDGER_TARGET)
        if not found:
            raise ConfigurationError(f"connection {connection_name!r} names no target connection")
        checkable = [t for t in found if targets.supports(t, "missing_ledgers")]
        for t in checkable:
            s.expunge(t)
    if not checkable:
        names_ = ", ".join(repr(t.name) for t in found)
        raise ConfigurationError(f"ledger mappings are checked against targets that report their ledgers; "
                                 f"{names_} cannot (map GL accounts on that connection)")
    missing, places = [], []
    for target in checkable:
        lacking, where = targets.missing_ledgers(target, names, wait)
        missing.extend(n for n in lacking if n not in missing)
        places.append(where)
    return missing, " and ".join(places)


def set_mapping(connection_name: str, kind: str, key: str, ledger: str, *, scope, wait: float = 30.0) -> dict:
    """Map ``key`` (a pay component for ``kind="ledger"``, an earning type's name for
    ``kind="earning_type"``) of a payroll source connection to ``ledger``, after checking the ledger
    exists in the target's books. Returns the saved row as a dict.

    Raises MappingError for an unknown kind or component, an empty ledger name, or a ledger
    missing from the target (naming it); ConfigurationError / TransientApiError when the target
    cannot be asked (no agent answering within ``wait`` seconds).
    """
    if kind not in KINDS:
        raise MappingError(f"unknown mapping kind {kind!r}; known: {', '.join(KINDS)}")
    ledger = (ledger or "").strip()
    if not ledger:
        raise MappingError(f"mapping of {key!r} names no ledger")
    if kind == "ledger" and key not in COMPONENT_KEYS:
        raise MappingError(f"unknown pay component {key!r}; known: {', '.join(COMPONENT_KEYS)}")
    with session_scope(runtime.settings().database_url) as s:
        get_connection(s, connection_name, scope=scope)  # ConfigurationError outside the scope
    missing, where = _target_ledgers_missing(connection_name, [ledger], wait)
    if missing:
        raise MappingError(f"ledger {missing[0]!r} does not exist in {where}: create it there first, "
                           f"or map {key!r} to an existing ledger")
    with session_scope(runtime.settings().database_url) as s:
        conn = get_connection(s, connection_name, scope=scope)
        row = repo.set_mapping(s, conn.id, kind, key, ledger)
        return {"connection": connection_name, "kind": row.kind, "key": row.key, "ledger": row.value}


def unset_mapping(connection_name: str, kind: str, key: str, *, scope) -> bool:
    """Drop a mapping (back to the default ledger); returns whether one existed. Raises
    ConfigurationError for an unknown connection (or one outside ``scope``)."""
    from sqlalchemy import delete

    with session_scope(runtime.settings().database_url) as s:
        conn = get_connection(s, connection_name, scope=scope)
        result = s.execute(delete(Mapping).where(Mapping.connection_id == conn.id, Mapping.kind == kind,
                                                 Mapping.key == key))
        return result.rowcount > 0
