"""TallyPrime as a ledger target (see :mod:`connector_tasks.targets`): the journal goes to the
site's local agent on queue ``tally.<connection>`` with the masters it needs."""
from __future__ import annotations

from sqlalchemy.orm import Session

from config.celery import tally_queue
from connector_tasks.domain.model import JournalEntry, LedgerMaster
from connector_tasks.store.models import Connection


def journal_payload(session: Session, target: Connection, entry: JournalEntry,
                    ledgers: list[LedgerMaster]) -> dict:
    """``{"entry", "company", "ledgers", "cost_centres", "dispatch"}`` for ``tally.post_journal``:
    ``company`` is the Tally company (the connection's account); ``cost_centres`` the
    ``[category, centre]`` pairs the entry allocates to."""
    centres = sorted({(a.cost_category, a.cost_centre) for line in entry.lines for a in line.allocations})
    return {"entry": entry.to_dict(), "company": target.account,
            "ledgers": [m.to_dict() for m in ledgers],
            "cost_centres": [list(c) for c in centres],
            "dispatch": {"task": "tally.post_journal", "queue": tally_queue(target.name)}}
