"""Acumatica as a ledger target: GL batches (``JournalTransaction``) and employees over the
contract-based REST API (https://help.myob.com.au/advanced/Docs/Published/IntegrationDevelopmentGuide/). See README.md."""
