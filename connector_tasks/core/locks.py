"""A Redis lock with a lease that is renewed while the holder works.

Used where at most one holder may act at a time across every process and machine (one
request in flight per instance of a single-threaded system, even with two agents started on
one queue by mistake). If the holder dies, the lease runs out and the next waiter gets the lock.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from typing import Iterator

import redis as redis_lib

from connector_tasks.core.errors import TransientApiError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def leased_lock(client: redis_lib.Redis, name: str, *, lease: float = 30.0, wait: float = 60.0,
                system: str | None = None) -> Iterator[None]:
    """Hold Redis lock ``name`` with a ``lease`` (seconds) renewed every ``lease/3`` seconds.

    Waits up to ``wait`` seconds for it; raises :class:`TransientApiError` when it is not had
    in time (a retry later is right: someone else is working).
    """
    lock = client.lock(name, timeout=lease, blocking_timeout=wait, thread_local=False)
    if not lock.acquire():
        raise TransientApiError(f"lock {name} is held elsewhere", system=system)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease / 3):
            try:
                lock.reacquire()
            except Exception:  # lost the lock (Redis restarted, lease ran out): say so
                log.warning("lease of lock %s could not be renewed", name)
                return

    renewer = threading.Thread(target=renew, name=f"lease:{name}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        with contextlib.suppress(Exception):
            lock.release()
