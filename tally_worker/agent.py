"""The agent's own Celery app and its credential file.

The credential (written by ``tally-worker register``, read by ``tally-worker run``) is a JSON file
``{"agent_id", "broker_url", "key_prefix", "connections", "lanes", "cloud_url"}``, created
owner-only (0600). It is the only secret on the agent's host: the broker URL carries the agent's
own Redis user, which may touch only keys under ``key_prefix`` (its lanes, its outbox, its Tally
lock) with the few commands kombu needs (:mod:`connector_tasks.agents.acl`).

The app consumes only the agent's lanes, under its key prefix (kombu ``global_keyprefix``), with
remote control, events, gossip, mingle and heartbeats off (they would need pub/sub or keys
outside the prefix), and reports through its outbox (:mod:`connector_tasks.agents.outbox`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT_CONFIG = Path("~/.config/ml-connector/tally-agent.json")


def write_credential(path: Path, credential: dict) -> Path:
    """Write ``credential`` to ``path`` as JSON, owner-only (0600; its folder 0700 when
    created). Returns the path."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(credential, f, indent=2)
    os.chmod(path, 0o600)
    return path


def read_credential(path: Path) -> dict:
    """The credential at ``path``. Raises FileNotFoundError (say to run ``register``) or
    ValueError for a file that is not one, or one readable by others."""
    path = path.expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `tally-worker register <code> --url <cloud>` first")
    if path.stat().st_mode & 0o077:
        raise ValueError(f"{path} is readable by others; chmod 600 it")
    data = json.loads(path.read_text())
    for key in ("agent_id", "broker_url", "key_prefix", "lanes"):
        if key not in data:
            raise ValueError(f"{path} is not an agent credential (no {key!r})")
    return data


def agent_settings(credential: dict, environ: dict):
    """The :class:`~config.settings.Settings` of the agent: ``environ`` (its own variables,
    e.g. ``TALLY_URL``) with ``REDIS_URL`` its broker URL and ``ML_AGENT_ID`` its id. The store
    and the vault are never used here: ``DATABASE_URL`` points nowhere and the Fernet key is a
    throwaway drawn now (the agent decrypts nothing)."""
    from cryptography.fernet import Fernet

    from config.settings import Settings

    env = {k: v for k, v in environ.items() if k not in ("DATABASE_URL", "FERNET_KEYS", "SECRET_KEY")}
    env.update(REDIS_URL=credential["broker_url"], ML_AGENT_ID=str(credential["agent_id"]),
               FERNET_KEYS=Fernet.generate_key().decode(), DATABASE_URL="sqlite:///:memory:")
    return Settings.from_env(env)


def agent_app(credential: dict, environ: dict, connections: list[str] | None = None):
    """The agent's Celery app for ``credential`` (settings installed process-wide) and the
    queues it serves (``connections``' lanes, default all of the credential's)."""
    from celery import Celery

    from config.celery import celery_config
    from config.settings import set_settings
    from connector_tasks.connectors import registry

    settings = agent_settings(credential, environ)
    set_settings(settings)
    lanes = credential["lanes"]
    wanted = connections or list(lanes)
    unknown = [c for c in wanted if c not in lanes]
    if unknown:
        raise ValueError(f"this agent is not registered for {', '.join(unknown)} (only {', '.join(lanes)})")
    queues = [lanes[c] for c in wanted]
    conf = celery_config(settings, queues=queues)
    conf["task_queues"] = [q for q in conf["task_queues"] if q.name in queues]
    conf["broker_transport_options"] = {**conf["broker_transport_options"],
                                        "global_keyprefix": credential["key_prefix"]}
    conf.update(worker_enable_remote_control=False, worker_send_task_events=False, task_send_sent_event=False,
                beat_schedule={}, task_default_queue=queues[0], task_routes={},
                include=[m for spec in registry.BUILTIN if spec.agent_queue for m in spec.tasks])
    app = Celery("tally_agent", set_as_current=True)
    app.conf.update(conf)
    return app, queues
