"""The Celery application: configuration from :mod:`config.celery`, tasks of every connector.

Run a worker with ``celery -A connector_tasks.celery_app worker -Q gusto,default``; the Tally
agent runs ``tally-worker run`` (its own queue, concurrency 1).
"""
from __future__ import annotations

from celery import Celery

from config.celery import celery_config
from config.logging import configure_logging
from connector_tasks import runtime

_settings = runtime.settings()
configure_logging(_settings.log_level)

app = Celery("ml_connector")
app.conf.update(celery_config(_settings))
app.conf.include = [
    "connector_tasks.jobs",
    "connector_tasks.connectors.gusto.tasks",
    "connector_tasks.connectors.tallyprime.tasks",
    "connector_tasks.connectors.acumatica.tasks",
    "connector_tasks.connectors.tallyprime.reference",
]
