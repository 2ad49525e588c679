"""Process-wide wiring: settings (with the embedded Redis resolved, every system's own settings
checked), the vault, the Redis client. Built lazily, once per process (store sessions:
:func:`connector_tasks.store.db.session_scope` on ``settings().database_url``)."""
from __future__ import annotations

import functools

import redis as redis_lib

from config.redis_server import ensure_redis
from config.settings import Settings, get_settings, set_settings
from connector_tasks.core.crypto import Vault


def settings() -> Settings:
    """The settings; outside production an unset ``REDIS_URL`` starts the embedded Redis. The
    first call also reads every registered system's own settings, so a missing or bad variable
    stops the start with its name (ConfigurationError)."""
    s = get_settings()
    if s.redis_url is None:
        if s.is_production:  # pragma: no cover - from_env already refuses this
            raise RuntimeError("REDIS_URL must be set in production")
        s = s.with_overrides(redis_url=ensure_redis(s.instance_path))
        set_settings(s)
    if id(s) not in _checked:
        from connector_tasks.connectors import registry

        for spec in registry.with_part("app_settings"):
            _app_settings(s, spec.name)
        _checked.add(id(s))  # the Settings stays referenced by _app_cache
    return s


_checked: set[int] = set()
#: (id of the Settings, system) → (the Settings, kept so its id is not reused; its settings)
_app_cache: dict[tuple[int, str], tuple[Settings, object]] = {}


def _app_settings(s: Settings, system: str):
    key = (id(s), system)
    if key not in _app_cache:
        from connector_tasks.connectors import registry

        _app_cache[key] = (s, registry.get(system).load("app_settings").from_settings(s))
    return _app_cache[key][1]


def app_settings(system: str):
    """``system``'s process-wide settings (its registry entry's ``app_settings`` read from the
    environment of :func:`settings`). Raises ConfigurationError naming a bad variable."""
    return _app_settings(settings(), system)


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
