"""``connector.route_events``: a relay batch is routed event by event; a store failure part-way
retries only the rest of the batch, and the jobs routed before it are still published.

Unit level: the store and the broker are replaced by in-process fakes (the real path, relay →
worker → job, runs in tests/integration/test_relay.py); the task runs eagerly, so Celery's
``retry`` re-runs it at once with the arguments it was given.
"""
from __future__ import annotations

import pytest

from config.settings import Settings, set_settings
from connector_tasks.pipeline import tasks


@pytest.fixture
def routing(monkeypatch, tmp_path):
    set_settings(Settings.from_env({"INSTANCE_PATH": str(tmp_path)}).with_overrides(redis_url="redis://unused"))
    published: list[list[int]] = []
    seen: list[int] = []
    monkeypatch.setattr(tasks, "_publish_jobs", lambda routed: published.append(list(routed)))
    return published, seen


def test_every_routed_event_becomes_one_job_message_and_ignored_events_none(routing, monkeypatch):
    published, seen = routing

    def route(event_id):
        seen.append(event_id)
        return [] if event_id % 2 else [100 + event_id]

    monkeypatch.setattr(tasks, "route", route)
    result = tasks.route_events.apply(args=[[1, 2, 3, 4]]).get()
    assert result == {"events": 4, "jobs": 2}
    assert seen == [1, 2, 3, 4]
    assert published == [[102, 104]]


def test_a_store_failure_retries_only_the_rest_of_the_batch(routing, monkeypatch):
    published, seen = routing
    failures = iter([True])

    def route(event_id):
        seen.append(event_id)
        if event_id == 3 and next(failures, False):
            raise OSError("database is locked")
        return [200 + event_id]

    monkeypatch.setattr(tasks, "route", route)
    result = tasks.route_events.apply(args=[[1, 2, 3, 4]])
    assert result.get() == {"events": 2, "jobs": 2}  # the retry's share: events 3 and 4
    assert seen == [1, 2, 3, 3, 4]  # 1 and 2 were not routed twice
    assert published == [[201, 202], [203, 204]]
