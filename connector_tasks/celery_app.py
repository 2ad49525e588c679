"""The Celery application: configuration from :mod:`config.celery`; queues, routes, the beat
schedule and the task modules of every system from the connector registry.

Run the cloud workers with ``ml-connector worker`` (every cloud queue the registry declares, and
``default``); an agent runs its own lane (its system's agent command).
"""
from __future__ import annotations

from celery import Celery

from config.celery import celery_config
from config.logging import configure_logging
from connector_tasks import runtime
from connector_tasks.connectors import registry

#: the generic task modules (pipeline, job machinery), before every system's own
GENERIC_TASKS = ["connector_tasks.pipeline.tasks", "connector_tasks.jobs.results", "connector_tasks.jobs.sweeper",
                 "connector_tasks.jobs.retention", "connector_tasks.agents.collector"]

_settings = runtime.settings()
configure_logging(_settings.log_level)


def _beat() -> dict:
    schedule: dict = {}
    for spec in registry.with_part("beat"):
        schedule.update(spec.load("beat")(runtime.app_settings(spec.name)))
    return schedule


app = Celery("ml_connector")
app.conf.update(celery_config(_settings, queues=registry.cloud_queues(), routes=registry.task_routes(),
                              beat=_beat()))
app.conf.include = [*GENERIC_TASKS, *registry.task_modules()]
