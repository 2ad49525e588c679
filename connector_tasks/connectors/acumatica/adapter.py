"""Domain ↔ Acumatica: the :class:`~connector_tasks.domain.ports.LedgerTarget` port over
``JournalTransaction`` and employee alignment over ``Employee`` (https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp Model/JournalTransaction.cs).

A journal posts as one GL batch: header ``Module`` GL, ``LedgerID``, ``BranchID``,
``TransactionDate`` (the entry's date, i.e. the payroll's check date), ``Description`` (the
narration, which names the source payroll, plus ``[<entry key>]``), ``Hold`` false; one
``Details[]`` line per journal line with ``Account``, ``Subaccount``, ``DebitAmount`` or
``CreditAmount`` (``Decimal``, cents), ``ReferenceNbr`` (:func:`reference_nbr`) and
``TransactionDescription``. Acumatica has no idempotency key, so the entry key in the header
description is what :meth:`AcumaticaLedgerTarget.find_journal` looks for before anything posts.
"""
from __future__ import annotations

from typing import Iterable

from connector_tasks.connectors.acumatica.client import SYSTEM, AcumaticaClient
from connector_tasks.connectors.acumatica.mapping import GlAccount
from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import EmployeeMaster, JournalEntry, LedgerMaster

REF_LEN = 15  # ASSUMPTION: GL transaction RefNbr holds 15 characters


def key_marker(key: str) -> str:
    """The text that carries ``key`` in a batch's ``Description``: ``[<key>]`` (brackets so
    ``…-p1`` does not match ``…-p10``)."""
    return f"[{key}]"


def reference_nbr(entry: JournalEntry) -> str:
    """The payroll reference on each line: the source id (without dashes when longer than
    :data:`REF_LEN`), cut to :data:`REF_LEN` characters."""
    ref = entry.source_ref or entry.key
    return ref if len(ref) <= REF_LEN else ref.replace("-", "")[:REF_LEN]


def journal_fields(entry: JournalEntry, accounts: dict[str, GlAccount], *, branch: str, ledger: str) -> dict:
    """The plain (unwrapped) ``JournalTransaction`` for ``entry``. Raises :class:`MappingError`
    when the entry is unbalanced or a ledger has no account in ``accounts``."""
    entry.check_balanced()
    marker = key_marker(entry.key)
    description = f"{entry.narration} {marker}"
    if len(description) > 255:  # keep the marker whole
        description = f"{entry.narration[:255 - len(marker) - 2]}… {marker}"
    ref = reference_nbr(entry)
    details = []
    for line in entry.lines:
        gl = accounts.get(line.ledger)
        if gl is None:
            raise MappingError(f"ledger {line.ledger!r} has no Acumatica GL account", system=SYSTEM)
        details.append({"Account": gl.account, "Subaccount": gl.subaccount,
                        "DebitAmount": line.debit, "CreditAmount": line.credit,
                        "ReferenceNbr": ref,
                        "TransactionDescription": f"{line.component.replace('_', ' ')} {entry.source_ref}"[:255]})
    return {"Module": "GL", "BranchID": branch, "LedgerID": ledger,
            "TransactionDate": f"{entry.date.isoformat()}T00:00:00", "Description": description,
            "Hold": False, "Details": details}


class AcumaticaLedgerTarget:
    """The LedgerTarget port on one Acumatica company.

    ``accounts``: ``{ledger name: GlAccount}`` (see :mod:`.mapping`); ``branch``/``ledger``:
    the batch's ``BranchID``/``LedgerID``; ``release``: release each posted batch
    (``ReleaseJournalTransaction``). Acumatica's chart of accounts belongs to the customer:
    :meth:`ensure_ledgers` never creates accounts, it checks them and refuses with the code
    that is missing.
    """

    def __init__(self, client: AcumaticaClient, accounts: dict[str, GlAccount], *, branch: str,
                 ledger: str = "ACTUAL", release: bool = False):
        self.client = client
        self.accounts = dict(accounts)
        self.branch = branch
        self.ledger = ledger
        self.release = release
        self._chart: tuple[set[str], set[str]] | None = None

    def find_journal(self, key: str) -> str | None:
        """The ``BatchNbr`` of the GL batch carrying ``key`` in its description, or ``None``."""
        marker = key_marker(key)
        for batch in self.client.find_journals(marker):
            if marker in str(batch.get("Description") or ""):
                return str(batch["BatchNbr"])
        return None

    def journal_status(self, key: str) -> tuple[str, str] | None:
        """``(BatchNbr, Status)`` of the batch carrying ``key``, or ``None``."""
        marker = key_marker(key)
        for batch in self.client.find_journals(marker):
            if marker in str(batch.get("Description") or ""):
                return str(batch["BatchNbr"]), str(batch.get("Status") or "")
        return None

    def validate_accounts(self, ledger_names: Iterable[str] | None = None) -> None:
        """GL alignment: read the chart of accounts and subaccounts (once per instance) and
        check every mapped account and subaccount of ``ledger_names`` (default: all mapped)
        exists. Raises :class:`MappingError` naming each missing code and its ledger."""
        if self._chart is None:
            self._chart = (self.client.account_codes(), self.client.subaccount_codes())
        accounts, subs = self._chart
        names = list(ledger_names) if ledger_names is not None else list(self.accounts)
        missing = []
        for name in names:
            gl = self.accounts.get(name)
            if gl is None:
                raise MappingError(f"ledger {name!r} has no Acumatica GL account", system=SYSTEM)
            if gl.account not in accounts:
                missing.append(f"account {gl.account} (ledger {name!r})")
            if gl.subaccount not in subs:
                missing.append(f"subaccount {gl.subaccount} (ledger {name!r})")
        if missing:
            raise MappingError("Acumatica has no " + ", no ".join(dict.fromkeys(missing))
                               + "; nothing was posted", system=SYSTEM)

    def ensure_ledgers(self, ledgers: Iterable[LedgerMaster],
                       cost_centres: Iterable[tuple[str, str]] = ()) -> list[str]:
        """Check the mapped accounts of ``ledgers`` exist (see :meth:`validate_accounts`);
        creates nothing, so returns ``[]``. Cost centres have no Acumatica counterpart here."""
        self.validate_accounts([m.name for m in ledgers])
        return []

    def post_journal(self, entry: JournalEntry) -> str:
        """Post ``entry`` as one balanced GL batch (``If-None-Match: *``: insert only) after
        checking its balance and its accounts (no request before those pass), then release it
        when configured. Returns the ``BatchNbr``. Raises :class:`MappingError` (unbalanced,
        unmapped or missing account), :class:`RejectedError` with Acumatica's per-field and
        per-line texts, and the client's other errors."""
        fields = journal_fields(entry, self.accounts, branch=self.branch, ledger=self.ledger)
        self.validate_accounts({line.ledger for line in entry.lines})
        batch = self.client.put_entity("JournalTransaction", fields, insert_only=True, expand="Details")
        batch_nbr = str(batch.get("BatchNbr"))
        if self.release:
            self.client.release_journal(batch_nbr)
        return batch_nbr

    def release_if_needed(self, batch_nbr: str, status: str) -> bool:
        """Release a batch found ``Balanced`` when releasing is configured (a crash between the
        PUT and the release); returns whether it released."""
        if self.release and status == "Balanced":
            self.client.release_journal(batch_nbr)
            return True
        return False


def employee_fields(master: EmployeeMaster, department: str | None) -> dict:
    """The plain ``Employee`` for ``master``: ``EmployeeName``, ``Status`` (``Inactive`` once a
    ``deactivation_date`` is set, else ``Active``), ``ContactInfo.Email``,
    ``EmployeeSettings.DepartmentID`` (ASSUMPTION: field placement in the Default endpoint)."""
    fields: dict = {"EmployeeName": master.name,
                    "Status": "Inactive" if master.deactivation_date else "Active"}
    if master.email:
        fields["ContactInfo"] = {"Email": master.email}
    if department:
        fields["EmployeeSettings"] = {"DepartmentID": department}
    return fields


def _differs(current: dict, wanted: dict) -> bool:
    for k, v in wanted.items():
        if isinstance(v, dict):
            if _differs(current.get(k) or {}, v):
                return True
        elif current.get(k) != v:
            return True
    return False


def sync_employee(client: AcumaticaClient, master: EmployeeMaster, *, department: str | None,
                  known_id: str | None) -> tuple[str, str]:
    """Create or alter the Acumatica ``Employee`` for ``master``: found by ``known_id`` (the
    stored ExternalRef), then by e-mail; never duplicated. Returns ``(EmployeeID, action)``
    with action ``created``, ``altered`` or ``unchanged``. Raises the client's errors
    (a refused department → :class:`RejectedError` with Acumatica's text)."""
    expand = "ContactInfo,EmployeeSettings"
    current = None
    if known_id:
        found = client.list_entities("Employee", filter=f"EmployeeID eq '{known_id.replace(chr(39), chr(39) * 2)}'",
                                     expand=expand)
        current = found[0] if found else None
    if current is None and master.email:
        email = master.email.replace("'", "''")
        found = client.list_entities("Employee", filter=f"ContactInfo/Email eq '{email}'", expand=expand)
        current = found[0] if found else None
    wanted = employee_fields(master, department)
    if current is None:
        rec = client.put_entity("Employee", wanted, insert_only=True, expand=expand)
        return str(rec["EmployeeID"]), "created"
    if not _differs(current, wanted):
        return str(current["EmployeeID"]), "unchanged"
    rec = client.put_entity("Employee", {"EmployeeID": current["EmployeeID"], **wanted}, update_only=True,
                            expand=expand)
    return str(rec["EmployeeID"]), "altered"
