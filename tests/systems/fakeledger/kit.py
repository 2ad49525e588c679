"""The fake ledger's kit: its emulator on a free port and the contract suite's factory."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import requests
from werkzeug.serving import make_server

from sandbox.kit import TargetUnderTest
from tests.systems.fakeledger.connector import FakeLedgerTarget
from tests.systems.fakeledger.emulator import create_app


@contextlib.contextmanager
def _ledger_contract() -> Iterator[TargetUnderTest]:
    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    def state() -> dict:
        return requests.get(f"{base}/_state", timeout=10).json()

    try:
        yield TargetUnderTest("fakeledger", FakeLedgerTarget(base), lambda: state()["requests"],
                              lambda key: sum(1 for j in state()["journals"] if j["key"] == key))
    finally:
        server.shutdown()


def ledger_contracts() -> dict:
    """``{"fakeledger": factory}`` for the shared ledger-target contract suite."""
    return {"fakeledger": _ledger_contract}
