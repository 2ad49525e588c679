"""OAuth tokens kept in a connection's encrypted credentials, with a per-connection refresh lock.

The token store every OAuth client here takes (``load``, ``save``, ``lock``): Gusto's and
Acumatica's. The lock serialises refreshes across every worker and process (single-flight
refresh; external-apis.md §1.8 pitfall 1): whoever holds it re-reads the stored tokens first
and refreshes only if nobody else already did; the rotated refresh token is saved before the
new access token is used.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

from connector_tasks import runtime
from connector_tasks.core.locks import leased_lock
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection


class StoredTokens:
    """Tokens of connection ``connection_id``, under ``credentials[key]``, as ``token_type`` (a
    dataclass: built with ``token_type(**stored)``, saved as its fields). The refresh lock is
    ``lock:<system>-oauth:<connection_id>``: ``lease`` seconds, ``wait`` seconds to get it
    before a TransientApiError.
    """

    def __init__(self, connection_id: int, token_type: type, *, system: str, key: str = "oauth",
                 lease: float = 30.0, wait: float = 35.0):
        self.connection_id = connection_id
        self.token_type = token_type
        self.system = system
        self.key = key
        self.lease = lease
        self.wait = wait

    def load(self):
        """The stored tokens, or ``None`` before the connection was authorised."""
        with session_scope(runtime.settings().database_url) as s:
            data = repo.read_credentials(s.get(Connection, self.connection_id), runtime.vault()).get(self.key)
        return self.token_type(**data) if data else None

    def save(self, tokens) -> None:
        """Encrypt and commit ``tokens`` (before anyone uses the new access token)."""
        with session_scope(runtime.settings().database_url) as s:
            conn = s.get(Connection, self.connection_id)
            creds = repo.read_credentials(conn, runtime.vault())
            creds[self.key] = dataclasses.asdict(tokens)
            repo.write_credentials(conn, runtime.vault(), creds)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the connection's refresh lock. Raises TransientApiError if not had in time."""
        with leased_lock(runtime.redis_client(), f"lock:{self.system}-oauth:{self.connection_id}",
                         lease=self.lease, wait=self.wait, system=self.system):
            yield
