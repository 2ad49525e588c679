"""Gusto webhook payloads: the verification handshake, event parsing and routing.

Source: external-apis.md §1.5 (docs.gusto.com/embedded-payroll/docs/webhooks). A delivery is
signed with ``X-Gusto-Signature``: lowercase hex HMAC-SHA256 of the raw body keyed by the
subscription's ``verification_token``. Before the subscription is verified Gusto POSTs
``{"verification_token": "..."}`` to the URL (the handshake), which we store and confirm with
``PUT /v1/webhook_subscriptions/{uuid}/verify``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from connector_tasks.core.errors import MappingError

SIGNATURE_HEADER = "X-Gusto-Signature"
SYSTEM = "gusto"

#: event type → flow it starts (issue 2: processed payrolls only; others are recorded, ignored)
#: §1.5 "Event types": the employee events that change an employee's master.
EMPLOYEE_EVENTS = frozenset({
    "employee.created", "employee.updated", "employee.onboarded", "employee.terminated",
    "employee.terminated_effective", "employee.termination_cancelled", "employee.rehired",
    "employee.rehire_effective", "employee.rehire_cancelled",
})
#: §1.5: a payroll undone after processing. ``payroll.partially_reversed`` is not handled (its
#: amounts would be needed); it is stored and ignored.
REVERSAL_EVENTS = frozenset({"payroll.reversed", "payroll.cancelled"})
FLOWS = {"payroll.processed": "payroll_to_journal",
         **{e: "payroll_reversal" for e in REVERSAL_EVENTS},
         **{e: "employee_to_master" for e in EMPLOYEE_EVENTS}}


@dataclass(frozen=True)
class GustoEvent:
    """A parsed event: ``uuid`` (dedupe key), ``event_type``, ``entity_type``,
    ``entity_uuid``, ``company_uuid`` (the payload's ``resource_uuid``), ``timestamp`` (epoch s)."""

    uuid: str
    event_type: str
    entity_type: str | None
    entity_uuid: str | None
    company_uuid: str | None
    timestamp: int | None
    raw: dict

    @property
    def flow(self) -> str | None:
        """The flow this event starts, or ``None``."""
        return FLOWS.get(self.event_type)


def parse_body(body: bytes) -> dict:
    """Decode a JSON object from ``body``. Raises :class:`MappingError` for anything else."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MappingError("webhook body is not valid JSON", system=SYSTEM, detail=str(exc)) from exc
    if not isinstance(data, dict):
        raise MappingError("webhook body is not a JSON object", system=SYSTEM)
    return data


def handshake_token(data: dict) -> str | None:
    """The ``verification_token`` of a handshake body (a body with only that key), else None."""
    if set(data) == {"verification_token"} and isinstance(data["verification_token"], str):
        return data["verification_token"]
    return None


def parse_event(data: dict) -> GustoEvent:
    """A :class:`GustoEvent` from an event body. Raises MappingError naming a missing field."""
    for field in ("uuid", "event_type"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise MappingError(f"webhook event lacks {field!r}", system=SYSTEM)
    ts = data.get("timestamp")
    return GustoEvent(uuid=data["uuid"], event_type=data["event_type"],
                      entity_type=data.get("entity_type"), entity_uuid=data.get("entity_uuid"),
                      company_uuid=data.get("resource_uuid"),
                      timestamp=ts if isinstance(ts, int) else None, raw=data)
