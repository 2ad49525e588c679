"""Process-wide wiring: settings (with the embedded Redis resolved), store sessions, the
vault, the Redis client. Built lazily, once per process."""
from __future__ import annotations

import functools

import redis as redis_lib

from config.redis_server import ensure_redis
from config.settings import Settings, get_settings, set_settings
from connector_tasks.core.crypto import Vault
from connector_tasks.store.db import session_factory


def settings() -> Settings:
    """The settings; outside production an unset ``REDIS_URL`` starts the embedded Redis."""
    s = get_settings()
    if s.redis_url is None:
        if s.is_production:  # pragma: no cover - from_env already refuses this
            raise RuntimeError("REDIS_URL must be set in production")
        s = s.with_overrides(redis_url=ensure_redis(s.instance_path))
        set_settings(s)
    return s


def sessions():
    """The ``sessionmaker`` of the store."""
    return session_factory(settings().database_url)


@functools.lru_cache(maxsize=None)
def _vault(keys: tuple[str, ...]) -> Vault:
    return Vault(keys)


def vault() -> Vault:
    """The credential vault built from ``FERNET_KEYS``."""
    return _vault(settings().fernet_keys)


@functools.lru_cache(maxsize=None)
def _redis(url: str) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def redis_client() -> redis_lib.Redis:
    """The shared Redis client (budgets, locks, OAuth state)."""
    return _redis(settings().redis_url)
