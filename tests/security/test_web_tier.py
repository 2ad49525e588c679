"""Attacks on the web tier, against real gunicorn processes started as the Procfile starts them
(``gunicorn -c python:config.gunicorn``): slow uploads, a malformed ``FERNET_KEYS``, keys that
no longer open the stored credentials, and an unauthenticated Flower."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from config.settings import child_environment
from sandbox.demo import free_port, wait_http

pytestmark = pytest.mark.integration

PROCFILE_WEB = ["-m", "gunicorn", "-c", "python:config.gunicorn"]


@contextlib.contextmanager
def _process(argv: list[str], env: dict, log: Path):
    """Start ``argv`` in its own session; on exit SIGTERM then SIGKILL that session (only it)."""
    out = open(log, "ab")
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        out.close()


class _SlowUploads:
    """``n`` sockets that each POST a webhook announcing a 1 MB body and then send it one byte
    every ``every`` seconds (a slowloris upload), until stopped."""

    def __init__(self, web_url: str, n: int, every: float = 0.5):
        host, port = web_url.removeprefix("http://").split(":")
        self.socks = []
        for _ in range(n):
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"POST /webhooks/gusto/gusto-demo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"X-Gusto-Signature: " + b"0" * 64 + b"\r\nContent-Length: 1000000\r\n\r\n{")
            self.socks.append(s)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, args=(every,), daemon=True)
        self.thread.start()

    def _drip(self, every):
        while not self.stop.wait(every):
            for s in self.socks:
                with contextlib.suppress(OSError):
                    s.sendall(b" ")

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        for s in self.socks:
            s.close()


def _healthz_answers(web_url: str, tries: int = 5, timeout: float = 10.0) -> list[int]:
    return [requests.get(f"{web_url}/healthz", timeout=timeout).status_code for _ in range(tries)]


def test_slow_uploads_do_not_take_healthz_down(deployment):
    """Two slow sockets took /healthz down with sync workers (issue 12). With the Procfile's
    gevent workers, 40 slow uploads (20 per worker) leave it answering."""
    uploads = _SlowUploads(deployment.web_url, 40)
    try:
        time.sleep(1.5)  # the uploads are in: each holds a connection mid-body
        assert _healthz_answers(deployment.web_url) == [200] * 5
    finally:
        uploads.close()


def test_the_same_attack_starves_gunicorns_default_sync_workers(deployment, tmp_path):
    """Control: the attack is real — gunicorn's default (sync) workers, as the Procfile ran them
    before, stop answering /healthz with two slow uploads (one per worker)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _process([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "webapp:create_app()"],
                  child_environment(deployment.settings), tmp_path / "sync.log"):
        wait_http(f"{url}/healthz", timeout=60)
        uploads = _SlowUploads(url, 2)
        try:
            time.sleep(1.5)
            with pytest.raises(requests.exceptions.ReadTimeout):
                requests.get(f"{url}/healthz", timeout=5)
        finally:
            uploads.close()


@pytest.mark.parametrize("bad", ["not-a-fernet-key", "x" * 44, Fernet.generate_key().decode() + ",short"])
def test_a_malformed_fernet_keys_refuses_to_start_web_and_worker(deployment, tmp_path, bad):
    env = child_environment(deployment.settings, FERNET_KEYS=bad)
    port = free_port()
    commands = {
        "procfile-web": [sys.executable, *PROCFILE_WEB, "-b", f"127.0.0.1:{port}", "webapp:create_app()"],
        "ml-connector-web": [sys.executable, "-m", "connector_tasks.cli", "web", "--bind", f"127.0.0.1:{port}"],
        "ml-connector-worker": [sys.executable, "-m", "connector_tasks.cli", "worker", "-n", "bad@%h"],
    }
    for name, argv in commands.items():
        log = tmp_path / f"{name}.log"
        with _process(argv, env, log) as proc:
            try:
                code = proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} started with FERNET_KEYS={bad!r}")
            text = log.read_text(errors="replace")
            assert code != 0 and "FERNET_KEYS" in text, (name, code, text[-2000:])
            assert bad.split(",")[-1] not in text  # the variable is named, its value never shown


def test_healthz_exercises_decryption(deployment, tmp_path):
    """Valid-looking keys that do not open the stored credentials (a key dropped too early):
    /healthz said ok while every webhook answered 500; now it reports the vault down."""
    ok = requests.get(f"{deployment.web_url}/healthz", timeout=10)
    assert ok.status_code == 200 and ok.json()["crypto"] is True
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = child_environment(deployment.settings, FERNET_KEYS=Fernet.generate_key().decode())
    with _process([sys.executable, *PROCFILE_WEB, "-b", f"127.0.0.1:{port}", "webapp:create_app()"], env,
                  tmp_path / "wrong-key-web.log"):
        deadline = time.monotonic() + 60
        while True:
            try:
                r = requests.get(f"{url}/healthz", timeout=20)
                break
            except (requests.ConnectionError, requests.Timeout):  # still booting (a loaded machine)
                assert time.monotonic() < deadline, "web never answered"
                time.sleep(0.3)
        assert r.status_code == 503
        body = r.json()
        assert body["ok"] is False and body["crypto"] is False and body["database"] is True
        assert "FERNET_KEYS" in body["crypto_detail"]


def test_flower_refuses_to_start_without_credentials_and_then_asks_for_them(deployment, tmp_path):
    base = child_environment(deployment.settings)
    base.pop("FLOWER_BASIC_AUTH", None)
    port = free_port()
    argv = [sys.executable, "-m", "connector_tasks.cli", "flower", f"--port={port}", "--address=127.0.0.1"]
    for name, env in (("none", base), ("weak", {**base, "FLOWER_BASIC_AUTH": "admin:admin"})):
        log = tmp_path / f"flower-{name}.log"
        with _process(argv, env, log) as proc:
            assert proc.wait(timeout=60) != 0
        assert "FLOWER_BASIC_AUTH" in log.read_text()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=3)
    secret = "ops:" + "s3cret-enough-" * 2
    with _process(argv, {**base, "FLOWER_BASIC_AUTH": secret}, tmp_path / "flower.log"):
        deadline = time.monotonic() + 90
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, (tmp_path / "flower.log").read_text()[-2000:]
                time.sleep(0.5)
        assert r.status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/api/tasks", timeout=5).status_code == 401
        user, password = secret.split(":", 1)
        assert requests.get(f"http://127.0.0.1:{port}/", auth=(user, "wrong-password-xx"), timeout=5).status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/", auth=(user, password), timeout=10).status_code == 200
    assert secret not in " ".join(argv)
