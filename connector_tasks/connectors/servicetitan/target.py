"""ServiceTitan as an inventory target (see :mod:`connector_tasks.flows.targets`): what the
purchase flow hands over, built in the flow's prepare step (cloud, store and ServiceTitan in
reach) and carried out by the ``servicetitan`` queue's workers (:mod:`.tasks`).

Matching happens here, before anything is written: the vendor whose name equals the party's
exactly and one pricebook material per inventory line whose ``code`` equals the stock item's
part number (or name), against the connection's cache (refreshed on a miss). A document with
any miss raises :class:`~connector_tasks.core.errors.MappingError` whose text names every
missing vendor name and SKU (``unmatched in ServiceTitan: …``): the job is parked and can be
replayed once they exist.
"""
from __future__ import annotations

from connector_tasks.connectors.servicetitan import service
from connector_tasks.connectors.servicetitan.client import SYSTEM
from connector_tasks.core.errors import MappingError
from connector_tasks.domain.purchases import Purchase
from connector_tasks.store.models import Connection

#: the cloud queue of ServiceTitan's tasks (its registry entry's ``queues``)
QUEUE = "servicetitan"
PURCHASE_TASK = "servicetitan.sync_purchase"
TITLE = "ServiceTitan"


class Unmatched(MappingError):
    """A purchase names a vendor or SKU ServiceTitan does not hold exactly (parked as
    ``unmatched``; ``missing_vendors`` / ``missing_skus`` name them)."""

    def __init__(self, message: str, vendors=(), skus=()):
        super().__init__(message, system=SYSTEM)
        self.missing_vendors = tuple(vendors)
        self.missing_skus = tuple(skus)


def purchase_payload(target: Connection, purchase: Purchase, *, key: str,
                     known: dict | None, since: str, source_label: str) -> dict:
    """The payload of ``servicetitan.sync_purchase`` for ``purchase``: ``{"action":
    "purchase"|"return", "key", "purchase", "vendor_id", "lines", "business_unit_id",
    "po_type_id", "inventory_location_id", "ship_to", "known_id", "known_type", "since",
    "source_label", "connection", "dispatch"}``. ``known`` is the recorded external reference
    (``{"type", "id"}``) or ``None``; ``since`` the ISO time the job began.

    Raises :class:`Unmatched` (parked, replayable) naming every missing vendor and SKU,
    ConfigurationError (settings, credentials, a business unit / PO type / location that does
    not resolve) and the client's errors."""
    client = service.client_for(target)
    try:
        vendor_id, lines, unmatched = service.match(target, client, purchase)
        if unmatched:
            raise Unmatched(unmatched.describe(TITLE), unmatched.vendors, unmatched.skus)
        setup = service.setup_of(target, client)
    finally:
        client.session.close()
    return {"action": "return" if purchase.kind == "return" else "purchase", "key": key,
            "purchase": purchase.to_dict(), "vendor_id": vendor_id, "lines": [x.to_dict() for x in lines],
            "business_unit_id": setup["business_unit"]["id"], "po_type_id": setup["po_type"]["id"],
            "inventory_location_id": setup["inventory_location"]["id"],
            "ship_to": setup["inventory_location"]["name"], "known_id": (known or {}).get("id"),
            "known_type": (known or {}).get("type"), "since": since, "source_label": source_label,
            "connection": target.name, "dispatch": {"task": PURCHASE_TASK, "queue": QUEUE}}


def cancel_payload(target: Connection, purchase: Purchase, *, key: str, known: dict | None,
                   since: str, reason: str, number: str = "") -> dict:
    """The payload of ``servicetitan.sync_purchase`` cancelling what ``key`` made: ``{"action":
    "cancel", "key", "reason", "known_id", "known_type", "since", "number", "connection",
    "dispatch"}``."""
    return {"action": "cancel", "key": key, "reason": reason, "known_id": (known or {}).get("id"),
            "known_type": (known or {}).get("type"), "since": since, "number": number or purchase.number,
            "connection": target.name, "dispatch": {"task": PURCHASE_TASK, "queue": QUEUE}}


def holds(target: Connection, key: str, known: dict | None, since: str, number: str = "") -> bool:
    """Whether ServiceTitan holds anything ``key`` made (a PO or a return; asked now)."""
    from connector_tasks.connectors.servicetitan import purchasing

    client = service.client_for(target)
    try:
        if (known or {}).get("type") != "return" and purchasing.find_po(
                client, key, known_id=(known or {}).get("id"), since=since) is not None:
            return True
        return purchasing.find_return(client, key, number, since=since) is not None
    finally:
        client.session.close()


__all__ = ["purchase_payload", "cancel_payload", "holds", "Unmatched"]
