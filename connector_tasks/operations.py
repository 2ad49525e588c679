"""Operator operations on the store as a whole (jobs have theirs in :mod:`connector_tasks.jobs.replay`)."""
from __future__ import annotations

from sqlalchemy import select

from connector_tasks import runtime
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection


def rotate_credentials() -> int:
    """Re-encrypt every connection's credentials under the newest Fernet key (MultiFernet
    rotation) in one transaction; returns how many were re-encrypted. Raises
    ConfigurationError when a stored secret opens with none of the configured keys."""
    vault = runtime.vault()
    count = 0
    with session_scope(runtime.settings().database_url) as s:
        for conn in s.scalars(select(Connection).where(Connection.credentials.is_not(None))):
            conn.credentials = vault.rotate(conn.credentials)
            count += 1
    return count
