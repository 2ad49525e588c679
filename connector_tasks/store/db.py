"""Engine, sessions and schema upgrades (Alembic) for the store.

SQLite (the single-machine default) gets WAL mode and a busy timeout so the web process and
the workers can write side by side; PostgreSQL is used as is. SQLite's ``synchronous`` level
is ``SQLITE_SYNCHRONOUS``: ``FULL`` by default (in WAL mode a commit is fsynced before it
returns, so an acknowledged webhook survives a power loss, not only a process crash) or
``NORMAL`` when chosen (the WAL is fsynced at checkpoints only: a commit survives any process
crash but may be lost with the last moments before a power loss or OS crash).

:func:`hot_connection` is the webhook hot path's own DB-API connection (no pool, no ORM): one
per process, thread and URL, in autocommit mode, so a single ``INSERT`` is one durable commit.
On a SQLite file store at ``FULL`` it keeps FULL's guarantee without holding the writer lock
during the fsync (:meth:`HotConnection.durable_write`): the commit itself runs at ``NORMAL``
under the lock, and the WAL is fsynced after the lock is released, before the caller answers.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")

_engines: dict[str, Engine] = {}


def get_engine(url: str) -> Engine:
    """A cached engine for ``url`` (one per process and URL)."""
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                owner_only(path)
            engine = create_engine(url, connect_args={"timeout": 30})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - driver hook
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA synchronous={_sqlite_synchronous()}")
                cur.close()
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _engines[url] = engine
    return engine


def owner_only(path: str | Path) -> None:
    """Make a SQLite store file owner-only before SQLite opens it: a missing folder is created
    ``0700`` (each level we create), a missing file is created empty ``0600`` (SQLite opens an
    empty file as a new database, and gives its ``-wal``/``-shm``/journal files the database
    file's mode), and an existing file of ours that others could read is narrowed to ``0600``.
    The store holds payroll payloads (employee names and amounts) and encrypted credentials:
    see docs/security.md, "Data at rest"."""
    path = Path(path)
    missing = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for level in reversed(missing):
        try:
            level.mkdir(mode=0o700)
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(level, 0o700)  # mkdir's mode is filtered by the umask
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
    except FileExistsError:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(path, 0o600)


def _sqlite_synchronous() -> str:
    from config.settings import get_settings

    level = get_settings().sqlite_synchronous
    return level if level in ("FULL", "NORMAL") else "FULL"


def _sqlite_path(url: str) -> str:
    return url.split("///", 1)[-1] or ":memory:"


class HotConnection:
    """A raw DB-API connection in autocommit mode for one process and thread (see
    :func:`hot_connection`). ``dialect`` is ``sqlite`` or ``postgresql``; ``param`` the
    driver's placeholder (``?`` or ``%s``); ``write_lock()`` serialises SQLite writers of this
    store across processes (a no-op on PostgreSQL); ``durable_write()`` does that and returns
    once the writes are on disk (see there)."""

    def __init__(self, url: str):
        self.url = url
        self.pid = os.getpid()
        self.used = False  # has served a statement (so it may have gone stale since)
        self._lock_fd = None
        self._wal_path: str | None = None  # set when durable_write() fsyncs the WAL itself
        self._dir_synced = False
        if url.startswith("sqlite"):
            import sqlite3

            path = _sqlite_path(url)
            if path != ":memory:":
                owner_only(path)
            self.dialect, self.param, self.errors = "sqlite", "?", (sqlite3.Error,)
            self.raw = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            level = _sqlite_synchronous()
            if path != ":memory:":
                self._lock_fd = os.open(f"{path}-hotlock", os.O_RDWR | os.O_CREAT, 0o600)
                if level == "FULL":  # FULL's guarantee, kept by durable_write()'s own WAL fsync
                    level, self._wal_path = "NORMAL", f"{path}-wal"
            for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", f"synchronous={level}"):
                self.raw.execute(f"PRAGMA {pragma}")
        else:
            import psycopg

            engine = get_engine(url)
            self.dialect, self.param, self.errors = "postgresql", "%s", (psycopg.Error,)
            self.raw = psycopg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                                       autocommit=True)
        dialect = get_engine(url).dialect  # datetimes stored exactly as SQLAlchemy stores them
        self.bind_datetime = dialect.type_descriptor(DateTime(timezone=True)).bind_processor(dialect) or (lambda v: v)

    @contextlib.contextmanager
    def write_lock(self):
        """Hold the store's writer lock (SQLite file stores): waiting writers of the hot path
        queue in the kernel and wake the moment it is free, instead of polling SQLite's busy
        handler, which sleeps 1, 2, 5 … 25 ms between looks."""
        if self._lock_fd is None:
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def durable_write(self):
        """Hold the writer lock for the statements in the block; on leaving it without an
        error, return only once what they committed is on stable storage.

        PostgreSQL: its own commit already waits for the WAL flush (and groups concurrent
        commits), so this is :meth:`write_lock`. SQLite at ``SQLITE_SYNCHRONOUS=FULL``: the
        commit runs at ``NORMAL`` (its WAL frames reach the OS, not the disk), the lock is
        released, then the WAL file is fdatasync'ed (which flushes every frame written before
        it, other processes' commits included). So no web process waits for the disk while
        holding the writer lock, where ``FULL`` runs one fsync per commit inside it, and the
        others commit meanwhile. The guarantee is FULL's: the caller
        answers only after its row is on disk. The first flush of a connection also fsyncs the
        store's directory, so a WAL file created since is found after a power loss (SQLite
        does the same on a new WAL's first sync). Checkpoints are unchanged: at ``NORMAL``
        SQLite syncs the WAL before one and the database after it, so frames are durable in
        the database file before the WAL is reused. Another connection may read the row in the
        moment between commit and flush; if the machine then loses power the webhook was not
        yet answered, the source delivers it again, and a task published for the lost row finds no
        event and does nothing. Raises the driver's error or OSError; either way the caller
        must not acknowledge.
        """
        with self.write_lock():
            yield
        if self._wal_path is not None:
            self._flush_wal()

    def _flush_wal(self) -> None:
        if not self._dir_synced:
            dfd = os.open(os.path.dirname(os.path.abspath(self._wal_path)), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            self._dir_synced = True
        try:
            fd = os.open(self._wal_path, os.O_RDONLY)
        except FileNotFoundError:  # no WAL: the write went to the database file itself
            fd = os.open(self._wal_path[:-len("-wal")], os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None


def _os_thread_local():
    """A thread-local store per OS thread, also under gevent's monkey-patching (the web
    process's gevent workers, ``config/gunicorn.py``), where ``threading.local`` becomes
    per greenlet: there a hot connection per greenlet would be one per client connection, each
    paying a connect and a directory fsync on its first write. Sharing one per OS thread is safe
    there: SQLite's calls never yield to another greenlet, and a psycopg 3 connection serialises
    its users with its own (gevent-aware) lock."""
    try:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            return monkey.get_original("threading", "local")()
    except ImportError:  # pragma: no cover - gevent is installed with the project
        pass
    return threading.local()


_hot = None


def hot_connection(url: str) -> HotConnection:
    """This thread's :class:`HotConnection` to ``url``, opened on first use (and again after a
    fork or :func:`drop_hot_connection`)."""
    global _hot
    if _hot is None:
        _hot = _os_thread_local()
    conns = getattr(_hot, "conns", None)
    if conns is None:
        conns = _hot.conns = {}
    conn = conns.get(url)
    if conn is None or conn.pid != os.getpid():
        conn = conns[url] = HotConnection(url)
    return conn


def drop_hot_connection(url: str) -> None:
    """Close and forget this thread's hot connection to ``url`` (after a driver error)."""
    conn = getattr(_hot, "conns", {}).pop(url, None) if _hot is not None else None
    if conn is not None and conn.pid == os.getpid():
        conn.close()


def session_factory(url: str) -> sessionmaker[Session]:
    """A ``sessionmaker`` bound to ``url`` (objects stay readable after commit)."""
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextlib.contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at our migrations and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` (idempotent). A SQLite file store is made
    owner-only first (:func:`owner_only`)."""
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path != ":memory:":
            owner_only(path)
    command.upgrade(alembic_config(url), revision)
