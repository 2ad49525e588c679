"""``tally-worker``: run the local agent, or check that TallyPrime answers."""
from __future__ import annotations

import json
import sys

import click


@click.group()
def main() -> None:
    """The TallyPrime agent of ml-connector."""


@main.command()
@click.option("--connection", required=True, help="the Tally connection's name (queue tally.<name>)")
@click.option("--loglevel", default="INFO", show_default=True)
def run(connection: str, loglevel: str) -> None:
    """Serve queue ``tally.<connection>`` with one process, one task at a time."""
    from connector_tasks.celery_app import app
    from connector_tasks.connectors.tallyprime.target import tally_queue

    app.worker_main(["worker", "-Q", tally_queue(connection), "-c", "1", "--prefetch-multiplier", "1",
                     "-n", f"tally-{connection}@%h", "--without-gossip", "--without-mingle",
                     "-l", loglevel])


@main.command()
@click.option("--company", required=True, help="the company that must be loaded in TallyPrime")
@click.option("--url", help="TallyPrime's XML port (default TALLY_URL)")
def check(company: str, url: str | None) -> None:
    """Report whether TallyPrime answers and the company is loaded (exit 1 when not)."""
    from connector_tasks import runtime
    from connector_tasks.connectors.tallyprime.client import TallyClient

    report = TallyClient(url or runtime.app_settings("tallyprime").url, company).check()
    click.echo(json.dumps(report, indent=2))
    sys.exit(0 if report.get("reachable") and report.get("company_loaded") else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
