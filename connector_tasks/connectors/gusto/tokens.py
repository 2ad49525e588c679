"""Store-backed OAuth token storage for a Gusto connection, with a per-connection Redis lock.

Tokens live encrypted in ``Connection.credentials`` (key ``"oauth"``). The lock serialises
refreshes across every worker and process (single-flight refresh; external-apis.md §1.8
pitfall 1): whoever holds it re-reads the stored tokens first and refreshes only if nobody
else already did; the rotated refresh token is saved before the new access token is used.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from connector_tasks import runtime
from connector_tasks.connectors.gusto.client import TokenSet
from connector_tasks.core.errors import TransientApiError
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection


class DbTokenStore:
    """TokenStore over the store row of connection ``connection_id``.

    ``lock_timeout`` is the lease of the refresh lock in seconds (renewed by nobody: a refresh
    takes one HTTP call), ``wait`` how long to wait for it before a TransientApiError.
    """

    def __init__(self, connection_id: int, *, lock_timeout: float = 30.0, wait: float = 35.0):
        self.connection_id = connection_id
        self.lock_timeout = lock_timeout
        self.wait = wait

    def load(self) -> TokenSet | None:
        """The stored tokens, or ``None`` before the connection was authorised."""
        with session_scope(runtime.settings().database_url) as s:
            conn = s.get(Connection, self.connection_id)
            data = repo.read_credentials(conn, runtime.vault()).get("oauth")
        return TokenSet(**data) if data else None

    def save(self, tokens: TokenSet) -> None:
        """Encrypt and commit ``tokens`` (before anyone uses the new access token)."""
        with session_scope(runtime.settings().database_url) as s:
            conn = s.get(Connection, self.connection_id)
            creds = repo.read_credentials(conn, runtime.vault())
            creds["oauth"] = {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
                              "expires_at": tokens.expires_at, "scope": tokens.scope,
                              "company_uuid": tokens.company_uuid}
            repo.write_credentials(conn, runtime.vault(), creds)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the connection's refresh lock. Raises TransientApiError if not had in time."""
        lock = runtime.redis_client().lock(f"lock:gusto-oauth:{self.connection_id}",
                                           timeout=self.lock_timeout, blocking_timeout=self.wait)
        if not lock.acquire():
            raise TransientApiError("could not acquire the OAuth refresh lock", system="gusto")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                lock.release()
