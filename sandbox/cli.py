"""``ml-sandbox``: the demo, or one system's emulator in the foreground (never in production).

``ml-sandbox demo`` (every integration end to end) · ``ml-sandbox serve <system> --port N``
(any system with an emulator kit in the registry)
"""
from __future__ import annotations

import time

import click

from sandbox import ProductionRefused, refuse_in_production


def _refuse_in_production() -> None:
    try:
        refuse_in_production()
    except ProductionRefused as exc:
        raise click.ClickException(str(exc)) from None


def _systems() -> list[str]:
    from connector_tasks.connectors import registry

    return [s.name for s in registry.with_part("sandbox")]


@click.group()
def main() -> None:
    """Emulators of the external systems, for tests and demos."""


@main.command()
@click.option("--timeout", default=180.0, show_default=True, help="seconds to wait for each posting")
@click.option("--keep-running", is_flag=True, help="leave the services up until Ctrl-C")
def demo(timeout: float, keep_running: bool) -> None:
    """Run every integration end to end on the emulators and print what each target holds."""
    _refuse_in_production()
    from sandbox.demo import run_demo

    raise SystemExit(run_demo(timeout=timeout, keep_running=keep_running))


@main.command()
@click.argument("system", type=click.Choice(_systems()))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="0: a free port")
def serve(system: str, host: str, port: int) -> None:
    """Run SYSTEM's emulator in the foreground until Ctrl-C."""
    _refuse_in_production()
    from connector_tasks.connectors import registry

    kit = registry.get(system).load("sandbox").KIT()
    url = kit.start(host=host, port=port)
    click.echo(f"{registry.get(system).title} emulator on {url}")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        kit.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
