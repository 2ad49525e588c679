"""Celery configuration: queues, routes and the delivery settings that keep tasks safe.

* ``acks_late`` + ``reject_on_worker_lost``: a task is acknowledged only after it ran, and a
  worker process killed mid-task puts it back on the queue (our tasks are idempotent).
* prefetch 1: a worker holds at most one unacknowledged task per process.
* Redis ``visibility_timeout`` longer than the hard time limit of any task, so a running task
  is never handed to a second worker; ``unacked_restore_interval``/``throttle`` of 1 s so a task
  whose whole worker died is restored as soon as its visibility timeout passes (kombu's
  defaults scan only every ~100 s).
* Queues: ``default`` (routing, store bookkeeping, the sweeper), each system's cloud queues
  and routes (from the connector registry: the caller passes them), and the agents' lanes
  (one per connection of a system served by an agent, consumed only by that agent).
"""
from __future__ import annotations

from kombu import Queue

from config.settings import Settings

DEFAULT_QUEUE = "default"


def celery_config(settings: Settings, *, queues: list[str] = (), routes: dict | None = None,
                  beat: dict | None = None) -> dict:
    """The Celery ``conf`` mapping for ``settings`` (broker = ``settings.redis_url``): the
    ``default`` queue plus ``queues`` (every system's cloud queues), ``routes`` (task-name
    pattern → ``{"queue": ...}``; generic ``connector.*`` tasks go to ``default``), and ``beat``
    entries added to the sweeper's."""
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        # Publishing gives up within about a second when the broker is down: a webhook is
        # already committed by then and the sweeper enqueues it later.
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.3,
                                      "interval_max": 0.5},
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.task_time_limit,
        # the soft limit leaves a task a tenth of its time (at most 30 s) to report and retry
        "task_soft_time_limit": settings.task_time_limit - min(30, max(1, settings.task_time_limit // 10)),
        "task_default_queue": DEFAULT_QUEUE,
        "task_queues": [Queue(q) for q in dict.fromkeys([DEFAULT_QUEUE, *queues])],
        "task_create_missing_queues": True,
        "task_routes": {**(routes or {}), "connector.*": {"queue": DEFAULT_QUEUE}},
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "beat_schedule": {
            "sweep-stuck-jobs": {"task": "connector.sweep", "schedule": 60.0},
            # event-id retention (connector_tasks.jobs.retention): daily
            "prune-old-events": {"task": "connector.prune_events", "schedule": 86400.0},
            **(beat or {}),
        },
    }
