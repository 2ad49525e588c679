"""``tally-worker``: register the local agent, run it, or check that TallyPrime answers."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tally_worker.agent import DEFAULT_CONFIG

_config_option = click.option("--config", "config", type=click.Path(path_type=Path), envvar="TALLY_AGENT_CONFIG",
                              default=DEFAULT_CONFIG, show_default=True,
                              help="the agent's credential file (env TALLY_AGENT_CONFIG)")


@click.group()
def main() -> None:
    """The TallyPrime agent of ml-connector."""


@main.command()
@click.argument("code")
@click.option("--url", required=True, help="the cloud's public URL (PUBLIC_BASE_URL), https in production")
@_config_option
def register(code: str, url: str, config: Path) -> None:
    """Exchange the one-time CODE (from `ml-connector agents enroll`) for this agent's credential
    and write it to the credential file, owner-only."""
    import requests

    from tally_worker.agent import write_credential

    try:
        reply = requests.post(f"{url.rstrip('/')}/agents/register", json={"code": code}, timeout=30)
    except requests.RequestException as exc:
        raise click.ClickException(f"could not reach {url}: {exc}") from exc
    if reply.status_code != 200:
        try:
            reason = reply.json().get("error")
        except ValueError:
            reason = reply.text[:200]
        raise click.ClickException(f"registration refused ({reply.status_code}): {reason}")
    credential = {**reply.json(), "cloud_url": url.rstrip("/")}
    path = write_credential(config, credential)
    click.echo(f"agent {credential['agent_id']} registered for {', '.join(credential['connections'])}; "
               f"credential in {path}")


@main.command()
@_config_option
@click.option("--connection", "connections", multiple=True,
              help="serve only this connection's lane (default: every connection of the credential)")
@click.option("--loglevel", default="INFO", show_default=True)
def run(config: Path, connections: tuple[str, ...], loglevel: str) -> None:
    """Serve this agent's lanes with one process, one task at a time."""
    from config.settings import process_environment
    from tally_worker.agent import agent_app, read_credential

    try:
        credential = read_credential(config)
        app, queues = agent_app(credential, process_environment(), list(connections) or None)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    app.worker_main(["worker", "-Q", ",".join(queues), "-c", "1", "--prefetch-multiplier", "1",
                     "-n", f"tally-agent-{credential['agent_id']}@%h", "--without-gossip", "--without-mingle",
                     "--without-heartbeat", "-l", loglevel])


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
