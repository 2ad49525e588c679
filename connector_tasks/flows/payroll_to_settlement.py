"""Flow: a payroll the source has funded → the settlement entry: the accrued liabilities the
source paid out are debited, the bank (or clearing) account it debited is credited.

A payroll source funds a run by debiting the company's bank account once
(``totals.company_debit``) and pays employees, tax agencies and garnishment recipients out of it.
The accrual (:mod:`connector_tasks.flows.payroll_to_journal`) credited those liabilities; the
settlement clears what the debit paid:

====================  ======  ==============================================================
component             side    amount
====================  ======  ==============================================================
net_pay               Dr      ``net_pay_debit + reimbursement_debit`` (direct deposits and
                              reimbursements the source paid)
payroll_taxes         Dr      ``tax_debit`` (employee and employer taxes the source remits)
other_deductions      Dr      ``child_support_debit`` (garnishments the source remits)
company_debit         Cr      ``company_debit`` (the bank or clearing account)
====================  ======  ==============================================================

Lines use the same ledgers as the accrual (:class:`~connector_tasks.flows.mapping.payroll.PayrollMapping`),
plus :data:`~connector_tasks.flows.mapping.payroll.SETTLEMENT_COMPONENT`'s ledger. The entry
balances exactly when the funding identity holds (``company_debit = net_pay_debit + tax_debit +
reimbursement_debit + child_support_debit``, checked by
:func:`~connector_tasks.flows.payroll_to_journal.check_identities`; the source's published
"Processed" example satisfies it: 121,747.71 = 79,283.80 + 42,463.91). What the debit does not
pay stays in its liability until it is paid some other way, and the entry says so in a warning:
paper checks (net pay − net pay debit − reimbursement debit; 2,469.14 = ``check_amount`` in the
example) and benefit deductions (paid to benefit providers, not by the source's debit).
ASSUMPTION: the source pays every debited amount on the day it debits the company, so one entry
on the debit date settles it (``PayrollRun.debit_date``, else the check date).
"""
from __future__ import annotations

from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import ZERO, JournalEntry, JournalLine, PayrollRun
from connector_tasks.flows.mapping.payroll import SETTLEMENT_COMPONENT, PayrollMapping
from connector_tasks.flows.payroll_to_journal import check_identities

FLOW = "payroll_settlement"
SUFFIX = "-settlement"


def settlement_key(journal_key: str) -> str:
    """The settlement's key: the accrual journal's key + ``-settlement`` (so a payroll posted
    again under ``<key>-r<revision>`` settles under ``<key>-r<revision>-settlement``)."""
    return f"{journal_key}{SUFFIX}"


def build_settlement(run: PayrollRun, mapping: PayrollMapping, *, key: str,
                     source_label: str) -> JournalEntry | None:
    """The balanced settlement entry of processed ``run`` under ``key``, dated the run's debit
    date (else its check date); ``None`` when the source debits nothing for it (a zero
    ``company_debit``). ``source_label`` names the source in the narration.

    Raises :class:`MappingError` when the run is not processed, its totals or debits do not
    reconcile (naming the difference; nothing is plugged), or a debit is negative.
    """
    if not run.processed:
        raise MappingError(f"payroll {run.source_id} is not processed; only processed payrolls are settled")
    check_identities(run)
    t = run.totals
    figures = (("net_pay", t.net_pay_debit + t.reimbursement_debit), ("payroll_taxes", t.tax_debit),
               ("other_deductions", t.child_support_debit), (SETTLEMENT_COMPONENT.key, t.company_debit))
    for name, amount in figures:
        if amount < ZERO:
            raise MappingError(f"payroll {run.source_id}: {name} debit is negative ({amount})")
    if t.company_debit == ZERO:
        return None
    lines = tuple(JournalLine(ledger=mapping.ledgers[name], component=name,
                              debit=amount if name != SETTLEMENT_COMPONENT.key else ZERO,
                              credit=amount if name == SETTLEMENT_COMPONENT.key else ZERO)
                  for name, amount in figures if amount != ZERO)
    warnings = []
    unpaid = t.net_pay - t.net_pay_debit - t.reimbursement_debit
    if unpaid > ZERO:
        warnings.append(f"{unpaid} of net pay was not in the company debit (paper checks): it stays in "
                        f"{mapping.ledgers['net_pay']!r} until the checks clear")
    deductions = t.employee_benefits_deductions - t.other_deductions + t.employer_benefits
    if deductions > ZERO:
        warnings.append(f"{deductions} of benefit deductions and contributions is paid to the providers, not by "
                        f"the company debit: it stays in {mapping.ledgers['benefit_deductions']!r}")
    when = run.debit_date or run.check_date
    narration = (f"Settlement of payroll for pay period {run.period_start.isoformat()} to "
                 f"{run.period_end.isoformat()}, check date {run.check_date.isoformat()}: company debit of "
                 f"{t.company_debit} on {when.isoformat()}; {source_label} payroll {run.source_id}")
    entry = JournalEntry(key=key, date=when, narration=narration, lines=lines, source_ref=run.source_id,
                         warnings=tuple(warnings))
    entry.check_balanced()
    return entry
