"""Ledger targets: how a journal prepared by a flow reaches the target connection's system.

A flow knows only :class:`~connector_tasks.domain.model.JournalEntry` and the ledger masters it
uses; each target system supplies a module ``connector_tasks.connectors.<system>.target`` with

``journal_payload(session, target: Connection, entry: JournalEntry,
ledgers: list[LedgerMaster]) -> dict``

returning a JSON-safe payload that holds at least ``"entry"`` (``entry.to_dict()``) and
``"dispatch"`` (``{"task": <task name>, "queue": <queue>}``): the task that posts it, called as
``task(job_id, payload)``, which reports back through ``connector.record_post_result``. The
payload is stored on the job, so the sweeper and a replay hand the same thing over again.
"""
from __future__ import annotations

import importlib

from sqlalchemy.orm import Session

from connector_tasks.core.errors import ConfigurationError
from connector_tasks.domain.model import JournalEntry, LedgerMaster
from connector_tasks.store.models import Connection


def journal_payload(session: Session, target: Connection, entry: JournalEntry,
                    ledgers: list[LedgerMaster], *, source_system: str, source_type: str) -> dict:
    """The payload that posts ``entry`` to ``target`` (see the module docstring for its shape).

    Raises ConfigurationError when ``target``'s system is not a ledger target, and whatever the
    target's own ``journal_payload`` raises (e.g. MappingError for an unmapped GL account).
    """
    try:
        module = importlib.import_module(f"connector_tasks.connectors.{target.system}.target")
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"connection {target.name!r} is a {target.system!r} connection, "
                                 "which cannot receive journals") from exc
    payload = module.journal_payload(session, target, entry, ledgers)
    payload.update(source_system=source_system, source_type=source_type)
    if "dispatch" not in payload or "entry" not in payload:
        raise ConfigurationError(f"{target.system} target built a payload without entry/dispatch")
    return payload
