"""What every system's emulator kit (``sandbox/<system>/kit.py``, named by its registry entry's
``sandbox``) offers the demo, the test harness and the shared contract suites, and the handles
they share.

A kit module defines ``KIT``, an :class:`EmulatorKit`: it starts the system's emulator, tells
the deployment how to reach it (environment variables, a connection row), and — for the demo —
how to make the source produce something (:meth:`EmulatorKit.fire`) or how to read back what
the target holds (:meth:`EmulatorKit.describe`). A ledger target's kit also defines
``ledger_contracts() -> {name: factory}``, each factory a context manager yielding a
:class:`TargetUnderTest` for the shared ledger-target contract suite (the registry entry's
``contract`` names it).

The demo (:mod:`sandbox.demo`) pairs every kit whose system is a payroll source with every kit
whose system is a ledger target, from the registry: adding a system with a kit adds its
integration to the demo with no other change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Callable


@dataclass
class TargetUnderTest:
    """A LedgerTarget port and what its emulator saw: ``name`` (shown in test ids), ``target``
    (find_journal, ensure_ledgers, post_journal), ``requests()`` (requests that reached the
    emulator so far), ``journals_with_key(key)`` (journals the emulator holds carrying
    ``key``)."""

    name: str
    target: object
    requests: Callable[[], int]
    journals_with_key: Callable[[str], int]


@dataclass
class Posted:
    """What a target holds for one job, as the demo prints it: ``summary`` (one line, e.g.
    ``voucher 1 balanced 137,553.08``), ``balanced`` (debits equal credits there) and
    ``details`` (a longer rendering, as the target reports it)."""

    summary: str
    balanced: bool
    details: str = ""


@dataclass
class EmulatorKit:
    """Base of a system's kit. ``system`` is the registry name; ``connection`` the name of the
    demo's connection of that system; ``url`` is set by :meth:`start`."""

    system: str
    connection: str
    url: str | None = None
    server: object = field(default=None, repr=False)

    def start(self, config: dict | None = None, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start the emulator on ``host:port`` (0: a free port); returns its base URL."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the emulator."""
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def environ(self) -> dict[str, str]:
        """Environment variables a deployment needs to reach the emulator (e.g. a base URL and
        the demo application's credentials). Default: none."""
        return {}

    def add_connection(self, session, *, targets: list[str] = ()) -> None:
        """Create the demo's connection row of this system in ``session`` (a source gets
        ``targets``)."""
        raise NotImplementedError

    def connect(self, web_url: str) -> str:
        """Finish connecting the demo's connection through the running web app (OAuth, webhook
        subscription); returns a line describing it. Default: nothing to do."""
        return f"connection {self.connection} ready"

    #: the variables (name prefixes) of the agent's own environment (see ``agent_environment``)
    agent_env_prefixes: ClassVar[tuple[str, ...]] = ()

    def agent_argv(self, config=None) -> list[str] | None:
        """The command of the agent serving the connection's lane, with its credential file
        ``config``, when the system is reached through an agent (run beside the emulator, as on
        a customer's LAN). Default: none."""
        return None

    def agent_register_argv(self, code: str, url: str, config) -> list[str]:
        """The command that registers the agent with one-time ``code`` at cloud ``url`` and
        writes its credential to ``config``."""
        raise NotImplementedError

    def fire(self) -> str:
        """(A source) make the emulator produce the demo's object and its event; returns the
        object's source id."""
        raise NotImplementedError

    def describe(self, job: dict) -> Posted:
        """(A target) what the emulator holds for ``job`` (a job summary with ``target_ref``)."""
        raise NotImplementedError
