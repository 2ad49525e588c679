"""What every system's emulator kit (``sandbox/<system>/kit.py``, named by its registry entry's
``sandbox``) offers the demo and the shared contract suites, and the handles they share.

A kit module may define:

* ``ledger_contract()`` (or ``ledger_contracts()`` for several variants): a context manager
  yielding a :class:`TargetUnderTest` — the system's LedgerTarget port against its running
  emulator — for the shared ledger-target contract suite (``tests/contract/test_ledger_targets.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class TargetUnderTest:
    """A LedgerTarget port and what its emulator saw: ``name`` (shown in test ids), ``target``
    (find_journal, ensure_ledgers, post_journal), ``requests()`` (requests that reached the
    emulator so far), ``journals_with_key(key)`` (journals the emulator holds carrying
    ``key``)."""

    name: str
    target: object
    requests: Callable[[], int]
    journals_with_key: Callable[[str], int]
