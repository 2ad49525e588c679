"""An in-process :class:`~connector_tasks.core.oauth.TokenStore` for tests."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from connector_tasks.core.oauth import TokenSet


class InMemoryTokenStore:
    """A :class:`~connector_tasks.core.oauth.TokenStore` in process memory.

    ``_tokens`` is the current set (tests may set it directly, without counting a save);
    ``history`` keeps every saved set, oldest first; ``saves`` counts them. ``lock()`` is one
    lock shared by every client (thread) using this store, like the Redis lease in production.
    """

    def __init__(self, tokens: TokenSet | None = None):
        self._tokens = tokens
        self._data_lock = threading.Lock()
        self._conn_lock = threading.Lock()
        self.history: list[TokenSet] = []

    @property
    def saves(self) -> int:
        """How many times :meth:`save` was called."""
        return len(self.history)

    def load(self) -> TokenSet | None:
        """The current tokens, or ``None``."""
        with self._data_lock:
            return self._tokens

    def save(self, tokens: TokenSet) -> None:
        """Replace the current tokens and record them in ``history``."""
        with self._data_lock:
            self._tokens = tokens
            self.history.append(tokens)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's refresh lock."""
        with self._conn_lock:
            yield
