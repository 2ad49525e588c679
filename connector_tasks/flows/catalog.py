"""The flows the connector runs, by name: what each reads, writes, and how its jobs are keyed.

A source's event table (``EVENT_FLOWS`` in its ``source`` module) maps each event type to one
of these names; routing (:mod:`connector_tasks.pipeline.routing`) claims one job per (source
connection, target connection, flow, source object) for every target of the connection whose
system plays the flow's ``target_role``, and the job's prepare step is the flow's ``prepare``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from connector_tasks.connectors.registry import load_path
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.domain.ports import Role
from connector_tasks.flows.employee_to_master import FLOW as EMPLOYEE_FLOW, employee_key
from connector_tasks.flows.payroll_to_journal import FLOW as PAYROLL_FLOW, journal_key
from connector_tasks.flows.payroll_to_settlement import FLOW as SETTLEMENT_FLOW, settlement_key
from connector_tasks.flows.purchase_to_order import FLOW as PURCHASE_FLOW, purchase_key

REVERSAL_FLOW = "payroll_reversal"
REFERENCE_FLOW = "reference_data"


@dataclass(frozen=True)
class Flow:
    """One flow.

    * ``source_role`` / ``target_role``: what the source and target systems must play;
    * ``source_type``: the kind of source object (``ExternalRef.source_type``);
    * ``key(source_system, source_id) -> str``: the job's idempotency key, also the reference
      the target is asked about before any write;
    * ``prepare``: import path of ``fn(job_id) -> payload | None``, the job's source step;
    * ``reopen_always``: every event about the object re-opens its job (the object is kept in
      step with the source, e.g. an employee's master); otherwise a job is re-opened only for a
      newer source version.
    """

    name: str
    source_role: Role
    target_role: Role
    source_type: str
    key: Callable[[str, str], str]
    prepare: str
    reopen_always: bool = False

    def prepare_step(self) -> Callable[[int], object]:
        """The prepare function (imported on first use)."""
        return load_path(self.prepare)


FLOWS: dict[str, Flow] = {f.name: f for f in (
    Flow(PAYROLL_FLOW, Role.PAYROLL_SOURCE, Role.LEDGER_TARGET, "payroll",
         lambda system, sid: journal_key(system, sid), "connector_tasks.flows.payroll:prepare_journal"),
    Flow(REVERSAL_FLOW, Role.PAYROLL_SOURCE, Role.LEDGER_TARGET, "payroll_reversal",
         lambda system, sid: journal_key(system, sid) + "-reversal", "connector_tasks.flows.payroll:prepare_reversal"),
    Flow(SETTLEMENT_FLOW, Role.PAYROLL_SOURCE, Role.LEDGER_TARGET, "payroll_settlement",
         lambda system, sid: settlement_key(journal_key(system, sid)),
         "connector_tasks.flows.payroll:prepare_settlement"),
    Flow(EMPLOYEE_FLOW, Role.EMPLOYEE_SOURCE, Role.MASTER_TARGET, "employee",
         employee_key, "connector_tasks.flows.employees:prepare_master", reopen_always=True),
    Flow(REFERENCE_FLOW, Role.PAYROLL_SOURCE, Role.LEDGER_TARGET, "reference_data",
         lambda system, sid: f"{system}-reference-data-{sid.rsplit(':reference-data', 1)[0]}",
         "connector_tasks.flows.reference:prepare_reference_data", reopen_always=True),
    Flow(PURCHASE_FLOW, Role.PURCHASE_SOURCE, Role.INVENTORY_TARGET, "purchase_voucher",
         purchase_key, "connector_tasks.flows.purchases:prepare_purchase"),
)}


def get_flow(name: str) -> Flow:
    """The flow called ``name``. Raises ConfigurationError for an unknown one."""
    try:
        return FLOWS[name]
    except KeyError:
        raise ConfigurationError(f"unknown flow {name!r}; known: {', '.join(FLOWS)}") from None
