"""Per-connection mappings, as the CLI and the API edit them: which ledger each pay component
and each earning type goes to.

A mapping names a ledger a person keeps in their books, so it is checked against the target's
existing ledgers before it is saved: for TallyPrime through the site's agent (a fresh masters
snapshot, :mod:`connector_tasks.connectors.tallyprime.reference`), since only the agent can
reach Tally. A mapping to a ledger that does not exist is refused with the ledger's name.
"""
from __future__ import annotations

from connector_tasks import runtime
from connector_tasks.core.errors import ConfigurationError, MappingError
from connector_tasks.flows.mapping.payroll import COMPONENT_KEYS, COMPONENTS, PayrollMapping
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Mapping

#: mapping kinds a person edits: ``ledger`` (key = pay component), ``earning_type`` (key = name)
KINDS = ("ledger", "earning_type")


def show(connection_name: str) -> dict:
    """The connection's effective payroll mapping: ``{"components": [{component, side, ledger,
    group, mapped}], "earning_types": [{earning_type, ledger, mapped}], "cost_category"}``
    (``mapped``: a person chose it; otherwise the default). Raises ConfigurationError for an
    unknown connection."""
    from connector_tasks.connectors.gusto.sync import payroll_mapping

    with session_scope(runtime.settings().database_url) as s:
        conn = repo.get_connection(s, connection_name)
        mapping: PayrollMapping = payroll_mapping(s, conn)
        overrides = repo.mapping_overrides(s, conn.id)
        earnings = repo.mapping_overrides(s, conn.id, kind="earning_type")
        known = (conn.settings or {}).get("earning_types") or []
    return {
        "connection": connection_name, "cost_category": mapping.cost_category,
        "components": [{"component": c.key, "side": c.side, "ledger": mapping.ledgers[c.key],
                        "group": mapping.groups[mapping.ledgers[c.key]], "mapped": c.key in overrides}
                       for c in COMPONENTS],
        "earning_types": [{"earning_type": name, "ledger": mapping.earning_ledger(name), "mapped": name in earnings}
                          for name in sorted(set(known) | set(earnings))],
    }


def _target_ledgers_missing(connection_name: str, names: list[str], wait: float) -> tuple[list[str], str]:
    """(missing ledger names, where they were looked for) in the connection's target."""
    with session_scope(runtime.settings().database_url) as s:
        conn = repo.get_connection(s, connection_name)
        target_name = (conn.settings or {}).get("target")
        if not target_name:
            raise ConfigurationError(f"connection {connection_name!r} names no target connection")
        target = repo.get_connection(s, target_name)
        system, company = target.system, target.account
    if system == "tallyprime":
        from connector_tasks.connectors.tallyprime.reference import missing_ledgers, request_masters_snapshot

        snapshot = request_masters_snapshot(target_name, wait=wait)
        return missing_ledgers(snapshot, names), f"Tally company {company!r}"
    raise ConfigurationError(f"ledger mappings are checked against TallyPrime only; {target_name!r} is "
                             f"a {system} connection (map its GL accounts on that connection)")


def set_mapping(connection_name: str, kind: str, key: str, ledger: str, *, wait: float = 30.0) -> dict:
    """Map ``key`` (a pay component for ``kind="ledger"``, an earning type's name for
    ``kind="earning_type"``) of a Gusto connection to ``ledger``, after checking the ledger
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
    missing, where = _target_ledgers_missing(connection_name, [ledger], wait)
    if missing:
        raise MappingError(f"ledger {missing[0]!r} does not exist in {where}: create it there first, "
                           f"or map {key!r} to an existing ledger")
    with session_scope(runtime.settings().database_url) as s:
        conn = repo.get_connection(s, connection_name)
        row = repo.set_mapping(s, conn.id, kind, key, ledger)
        return {"connection": connection_name, "kind": row.kind, "key": row.key, "ledger": row.value}


def unset_mapping(connection_name: str, kind: str, key: str) -> bool:
    """Drop a mapping (back to the default ledger); returns whether one existed."""
    from sqlalchemy import delete

    with session_scope(runtime.settings().database_url) as s:
        conn = repo.get_connection(s, connection_name)
        result = s.execute(delete(Mapping).where(Mapping.connection_id == conn.id, Mapping.kind == kind,
                                                 Mapping.key == key))
        return result.rowcount > 0
