"""The fake ledger's connector: the LedgerTarget port (find_journal, ensure_ledgers,
post_journal) over its HTTP API, in the error tree."""
from __future__ import annotations

from typing import Iterable

import requests

from connector_tasks.core.errors import RejectedError
from connector_tasks.domain.model import JournalEntry, LedgerMaster


class FakeLedgerTarget:
    """The port on one fake ledger at ``base_url``."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def find_journal(self, key: str) -> str | None:
        """The id of the journal carrying ``key``, or ``None``."""
        found = self.session.get(f"{self.base_url}/journals", params={"key": key}, timeout=10).json()
        return found[0]["id"] if found else None

    def ensure_ledgers(self, ledgers: Iterable[LedgerMaster], cost_centres=()) -> list[str]:
        """Create the ledgers the ledger lacks; returns their names."""
        have = set(self.session.get(f"{self.base_url}/ledgers", timeout=10).json())
        created = []
        for ledger in ledgers:
            if ledger.name not in have:
                self.session.post(f"{self.base_url}/ledgers", json={"name": ledger.name, "group": ledger.group},
                                  timeout=10).raise_for_status()
                created.append(ledger.name)
                have.add(ledger.name)
        return created

    def post_journal(self, entry: JournalEntry) -> str:
        """Post ``entry`` (refused before any request when unbalanced); returns its id. Raises
        RejectedError with the ledger's text when it refuses."""
        entry.check_balanced()
        body = {"key": entry.key, "date": entry.date.isoformat(), "narration": entry.narration,
                "lines": [{"ledger": line.ledger, "debit": str(line.debit), "credit": str(line.credit)}
                          for line in entry.lines]}
        resp = self.session.post(f"{self.base_url}/journals", json=body, timeout=10)
        if resp.status_code != 201:
            raise RejectedError("the fake ledger refused the journal", system="fakeledger",
                                status=resp.status_code, lines=[resp.json().get("error", resp.text)])
        return resp.json()["id"]
