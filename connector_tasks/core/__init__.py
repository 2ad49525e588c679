"""Mechanics that never name a vendor: errors, HTTP, retries, budgets, idempotency, crypto."""
