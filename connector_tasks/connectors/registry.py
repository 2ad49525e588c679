"""The connector registry: one declaration per system, and the only place outside a system's own
folders that names it.

Everything that used to name systems reads this instead: the Celery include list, queues,
routes and beat schedule (:mod:`connector_tasks.celery_app`), the webhook receivers
(``POST /webhooks/<system>/<connection>``), the OAuth routes (``/oauth/<system>/...``), the
CLI's system groups, the target lookup of the flows, the typed connection settings, the
environment variables a system reads, the demo and the contract suites.

A :class:`SystemSpec` names the system's parts by import path (``"package.module:attribute"``)
so that reading the registry imports nothing of the connectors; :meth:`SystemSpec.load` imports
one part when it is needed. Adding a system is one folder in ``connectors/``, one in
``sandbox/`` and one entry in :data:`BUILTIN` (see ``docs/architecture.md``, "How to add a
system"). Tests and extensions add systems with :func:`register`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from connector_tasks.core.errors import ConfigurationError
from connector_tasks.domain.ports import Role

__all__ = ["Role", "SystemSpec", "BUILTIN", "register", "unregister", "systems", "names", "get", "find",
           "playing", "with_part", "task_modules", "cloud_queues", "task_routes", "system_of_task",
           "check_roles", "load_path"]


@dataclass(frozen=True)
class SystemSpec:
    """One system's declaration. Every ``str`` part is an import path ``"module:attribute"``
    (or ``"module"`` for a module), loaded on demand with :meth:`load`; ``None`` = the system
    has no such part.

    * ``name``: the system's key (``Connection.system``, URL segment, task-name prefix owner);
      ``title``: its name for people.
    * ``roles``: the :class:`Role` values it plays.
    * ``tasks``: modules holding its Celery tasks (added to the worker's include list).
    * ``queues``: the cloud queues its tasks run on (every worker of the Procfile and
      ``ml-connector worker`` consume them); ``task_prefixes``: task-name prefixes routed to the
      first queue (``"<prefix>.*"``).
    * ``agent_queue``: for a system reached through an agent on the customer's side, the
      format of its per-connection lane (``"...{connection}"``); no cloud worker consumes it.
    * ``settings``: the typed connection-settings dataclass (a
      :class:`~connector_tasks.settings_schema.ConnectionSettings`); ``app_settings``: the
      dataclass of the process-wide settings it reads from the environment
      (``from_settings(settings)``); ``beat``: ``fn(app_settings) -> {name: entry}``
      added to Celery beat's schedule.
    * ``client``: ``fn(connection) -> client`` for a connection of this system.
    * ``source``: the module of its source side (``EVENT_FLOWS`` table event type → flow,
      ``event_version(event)``, ports factories); ``target``: the module of its target side
      (``journal_payload``, ``employee_payload``, ``masters_payload``, ``ledger_check``).
    * ``webhook``: the webhook receiver object (``receive(connection, body, headers) ->
      WebhookReply``); ``oauth``: the OAuth provider (``authorization_url(connection,
      redirect_uri, state)``, ``complete(connection, code, redirect_uri, replace=)``; the web
      app authenticates the operator and binds ``state``, see ``webapp/oauth.py``); ``cli``: a click group added to
      ``ml-connector``.
    * ``aliases``: other names the vendor goes by in text (``tally`` for TallyPrime);
      ``folders``: folders outside ``connectors/<name>/`` and ``sandbox/<name>/`` that belong to
      the system (its agent's package); only these, its own two folders and this registry may
      name it (``tests/unit/test_house_rules.py`` enforces it).
    * ``sandbox``: the system's emulator kit (``sandbox/<system>/kit.py``: start the
      emulator, connect a connection to it, fire and read back for the demo); ``contract``:
      ``fn() -> {name: factory}``, each factory a context manager yielding a
      ``sandbox.kit.TargetUnderTest`` for the shared ledger-target contract suite.
    """

    name: str
    title: str
    roles: frozenset[Role]
    tasks: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    task_prefixes: tuple[str, ...] = ()
    agent_queue: str | None = None
    settings: str | None = None
    app_settings: str | None = None
    beat: str | None = None
    client: str | None = None
    source: str | None = None
    target: str | None = None
    webhook: str | None = None
    oauth: str | None = None
    cli: str | None = None
    aliases: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    sandbox: str | None = None
    contract: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def plays(self, role: Role) -> bool:
        """True when the system plays ``role``."""
        return role in self.roles

    def load(self, part: str) -> Any:
        """The object named by part ``part`` (a field name, or a key of ``extra``).

        Raises :class:`ConfigurationError` when the system has no such part, and ImportError /
        AttributeError when the declared path does not exist (a broken declaration).
        """
        path = getattr(self, part, None) if part in self.__dataclass_fields__ else self.extra.get(part)
        if not path:
            raise ConfigurationError(f"system {self.name!r} has no {part}")
        return load_path(path)

    def agent_lane(self, connection: str) -> str:
        """The queue of ``connection``'s agent. Raises ConfigurationError when the system is
        not served by an agent."""
        if not self.agent_queue:
            raise ConfigurationError(f"system {self.name!r} is not served by an agent")
        return self.agent_queue.format(connection=connection)


def load_path(path: str) -> Any:
    """Import ``"module:attribute"`` (``attribute`` may be dotted) or ``"module"``."""
    module_name, _, attribute = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj


#: The built-in systems. Every other file names them through this table.
BUILTIN: tuple[SystemSpec, ...] = (
    SystemSpec(
        name="gusto", title="Gusto",
        roles=frozenset({Role.PAYROLL_SOURCE, Role.EMPLOYEE_SOURCE}),
        tasks=("connector_tasks.connectors.gusto.tasks",),
        queues=("gusto",), task_prefixes=("gusto",),
        settings="connector_tasks.connectors.gusto.settings:GustoSettings",
        app_settings="connector_tasks.connectors.gusto.settings:GustoAppSettings",
        beat="connector_tasks.connectors.gusto.settings:beat_schedule",
        client="connector_tasks.connectors.gusto.service:gusto_client",
        source="connector_tasks.connectors.gusto.source",
        webhook="connector_tasks.connectors.gusto.webhooks:RECEIVER",
        oauth="connector_tasks.connectors.gusto.service:OAUTH",
        cli="connector_tasks.connectors.gusto.cli:gusto",
        sandbox="sandbox.gusto.kit",
    ),
    SystemSpec(
        name="tallyprime", title="TallyPrime",
        roles=frozenset({Role.LEDGER_TARGET, Role.MASTER_TARGET, Role.PURCHASE_SOURCE}),
        tasks=("connector_tasks.connectors.tallyprime.tasks", "connector_tasks.connectors.tallyprime.reference",
               "connector_tasks.connectors.tallyprime.polling"),
        task_prefixes=("tally",),
        agent_queue="tally.{connection}",
        aliases=("tally",), folders=("tally_worker",),
        settings="connector_tasks.connectors.tallyprime.settings:TallySettings",
        app_settings="connector_tasks.connectors.tallyprime.settings:TallyAppSettings",
        beat="connector_tasks.connectors.tallyprime.polling:beat_schedule",
        source="connector_tasks.connectors.tallyprime.source",
        target="connector_tasks.connectors.tallyprime.target",
        cli="connector_tasks.connectors.tallyprime.cli:tallyprime",
        sandbox="sandbox.tallyprime.kit",
        contract="sandbox.tallyprime.kit:ledger_contracts",
    ),
    SystemSpec(
        name="acumatica", title="Acumatica",
        roles=frozenset({Role.LEDGER_TARGET, Role.MASTER_TARGET}),
        tasks=("connector_tasks.connectors.acumatica.tasks",),
        queues=("acumatica",), task_prefixes=("acumatica",),
        settings="connector_tasks.connectors.acumatica.settings:AcumaticaSettings",
        client="connector_tasks.connectors.acumatica.service:client_for",
        target="connector_tasks.connectors.acumatica.target",
        cli="connector_tasks.connectors.acumatica.cli:acumatica",
        sandbox="sandbox.acumatica.kit",
        contract="sandbox.acumatica.kit:ledger_contracts",
    ),
    SystemSpec(
        name="ifs_cloud", title="IFS Cloud",
        roles=frozenset({Role.LEDGER_TARGET, Role.MASTER_TARGET}),
        tasks=("connector_tasks.connectors.ifs_cloud.tasks",),
        queues=("ifs_cloud",), task_prefixes=("ifs_cloud",),
        aliases=("ifs",),
        settings="connector_tasks.connectors.ifs_cloud.settings:IfsSettings",
        client="connector_tasks.connectors.ifs_cloud.service:client_for",
        target="connector_tasks.connectors.ifs_cloud.target",
        cli="connector_tasks.connectors.ifs_cloud.cli:ifs_cloud",
        sandbox="sandbox.ifs_cloud.kit",
        contract="sandbox.ifs_cloud.kit:ledger_contracts",
    ),
    SystemSpec(
        name="servicetitan", title="ServiceTitan",
        roles=frozenset({Role.INVENTORY_TARGET}),
        tasks=("connector_tasks.connectors.servicetitan.tasks",),
        queues=("servicetitan",), task_prefixes=("servicetitan",),
        settings="connector_tasks.connectors.servicetitan.settings:ServiceTitanSettings",
        app_settings="connector_tasks.connectors.servicetitan.settings:ServiceTitanAppSettings",
        beat="connector_tasks.connectors.servicetitan.settings:beat_schedule",
        client="connector_tasks.connectors.servicetitan.service:client_for",
        target="connector_tasks.connectors.servicetitan.target",
        cli="connector_tasks.connectors.servicetitan.cli:servicetitan",
        sandbox="sandbox.servicetitan.kit",
    ),
)

_systems: dict[str, SystemSpec] = {spec.name: spec for spec in BUILTIN}


def register(spec: SystemSpec, *, replace: bool = False) -> SystemSpec:
    """Add ``spec`` to the registry (tests, extensions). Raises ValueError when a system of that
    name exists and ``replace`` is false."""
    if spec.name in _systems and not replace:
        raise ValueError(f"system {spec.name!r} is already registered")
    _systems[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Drop a system added with :func:`register` (built-in systems stay)."""
    if name not in {s.name for s in BUILTIN}:
        _systems.pop(name, None)


def systems() -> tuple[SystemSpec, ...]:
    """Every registered system, built-in ones first."""
    return tuple(_systems.values())


def names() -> tuple[str, ...]:
    """The registered systems' names."""
    return tuple(_systems)


def get(name: str) -> SystemSpec:
    """The system called ``name``. Raises :class:`ConfigurationError` naming the known ones."""
    try:
        return _systems[name]
    except KeyError:
        raise ConfigurationError(f"unknown system {name!r}; known: {', '.join(_systems)}") from None


def find(name: str) -> SystemSpec | None:
    """The system called ``name``, or ``None``."""
    return _systems.get(name)


def playing(role: Role) -> tuple[SystemSpec, ...]:
    """The systems that play ``role``."""
    return tuple(s for s in _systems.values() if s.plays(role))


def with_part(part: str) -> Iterator[SystemSpec]:
    """The systems that declare part ``part`` (e.g. ``"webhook"``, ``"cli"``)."""
    return (s for s in _systems.values() if getattr(s, part, None))


def task_modules() -> list[str]:
    """Every system's task modules (Celery's include list, after the generic ones)."""
    return [m for s in _systems.values() for m in s.tasks]


def cloud_queues() -> list[str]:
    """Every cloud queue a system declares, each once, in declaration order."""
    return list(dict.fromkeys(q for s in _systems.values() for q in s.queues))


def task_routes() -> dict[str, dict]:
    """Celery routes ``{"<prefix>.*": {"queue": <first queue>}}`` of the systems with cloud
    queues (an agent system's tasks are sent to the connection's lane explicitly)."""
    return {f"{p}.*": {"queue": s.queues[0]} for s in _systems.values() if s.queues for p in s.task_prefixes}


def system_of_task(task_name: str) -> SystemSpec | None:
    """The system whose task-name prefix ``task_name`` carries, or ``None`` (generic tasks)."""
    prefix = task_name.split(".", 1)[0]
    return next((s for s in _systems.values() if prefix in s.task_prefixes), None)


def check_roles(spec: SystemSpec, wanted: Iterable[Role], what: str) -> None:
    """Raise ConfigurationError unless ``spec`` plays every role of ``wanted``."""
    missing = [r.value for r in wanted if not spec.plays(r)]
    if missing:
        raise ConfigurationError(f"{spec.title} cannot be {what} (it does not play {', '.join(missing)})")
