"""Acumatica as a ledger target: GL batches (``JournalTransaction``) and employees over the
contract-based REST API (external-apis.md §3). See README.md."""
