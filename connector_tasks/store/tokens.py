"""OAuth tokens kept in a connection's encrypted credentials, with a per-connection refresh lock.

:class:`StoredTokens` is the production :class:`connector_tasks.core.oauth.TokenStore` (``load``,
``save``, ``lock``) of every OAuth client (every connector whose tokens rotate). The lock serialises
refreshes across every worker and process (single-flight refresh, done by
:func:`connector_tasks.core.oauth.refresh_under_lock`): whoever holds it re-reads the stored
tokens first and refreshes only if nobody else already did; the rotated refresh token is saved
before the new access token is used (a vendor that rotates refresh tokens may revoke the previous
one on the first use of the new access token; each client's module cites its vendor's rule).
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

from connector_tasks import runtime
from connector_tasks.core.locks import leased_lock
from connector_tasks.core.oauth import TokenSet
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection


class StoredTokens:
    """Tokens of connection ``connection_id``, under ``credentials[key]``, as ``token_type`` (a
    dataclass, :class:`~connector_tasks.core.oauth.TokenSet` by default: built with
    ``token_type(**stored)``, saved as ``dataclasses.asdict``). ``system`` names the vendor in
    the lock and in errors. The refresh lock is ``lock:<system>-oauth:<connection_id>``:
    ``lease`` seconds, ``wait`` seconds to get it before a TransientApiError.
    """

    def __init__(self, connection_id: int, token_type: type = TokenSet, *, system: str, key: str = "oauth",
                 lease: float = 30.0, wait: float = 35.0):
        self.connection_id = connection_id
        self.token_type = token_type
        self.system = system
        self.key = key
        self.lease = lease
        self.wait = wait

    def load(self):
        """The stored tokens (a ``token_type``), or ``None`` before the connection was
        authorised. Raises ConfigurationError when the credentials cannot be decrypted."""
        with session_scope(runtime.settings().database_url) as s:
            data = repo.read_credentials(s.get(Connection, self.connection_id), runtime.vault()).get(self.key)
        return self.token_type(**data) if data else None

    def save(self, tokens) -> None:
        """Encrypt and commit ``tokens`` (a ``token_type``) under ``credentials[key]``, keeping the
        other credentials (call it before anyone uses the new access token)."""
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
