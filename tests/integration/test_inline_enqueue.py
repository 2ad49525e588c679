"""WEBHOOK_ENQUEUE=inline: the web process publishes each event itself after the commit; no relay
process runs. (Its own module: one deployment at a time shares the suite's Redis.)"""
from __future__ import annotations

import pytest
from tests.harness import deployment_on, post_example_once

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def inline_dep(tmp_path_factory, redis_server, postgres_admin_url):
    folder = tmp_path_factory.mktemp("inline-sqlite")
    with deployment_on("sqlite", folder, redis_server.url, postgres_admin_url,
                       overrides={"webhook_enqueue": "inline"}) as d:
        yield d


def test_inline_mode_posts_the_example_once_without_a_relay(inline_dep):
    dep = inline_dep
    assert "relay" not in [name for name, _ in dep.services.procs]
    row = post_example_once(dep)
    assert row.status == "processed" and row.enqueued_at is not None
