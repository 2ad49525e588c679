"""``ml-sandbox``: run an emulator in the foreground (never in production).

``ml-sandbox demo`` (the main job end to end) · ``ml-sandbox gusto --port 8801`` ·
``ml-sandbox tally --port 9000``
"""
from __future__ import annotations

import click

from sandbox import ProductionRefused, refuse_in_production


def _refuse_in_production() -> None:
    try:
        refuse_in_production()
    except ProductionRefused as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """Emulators of the external systems, for tests and demos."""


@main.command()
@click.option("--timeout", default=180.0, show_default=True, help="seconds to wait for the voucher")
@click.option("--keep-running", is_flag=True, help="leave the services up until Ctrl-C")
def demo(timeout: float, keep_running: bool) -> None:
    """Run the main job end to end on the emulators and print the voucher and its audit trail."""
    _refuse_in_production()
    from sandbox.demo import run_demo

    raise SystemExit(run_demo(timeout=timeout, keep_running=keep_running))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8801, show_default=True)
@click.option("--auto-approve", is_flag=True, help="skip the OAuth consent page")
def gusto(host: str, port: int, auto_approve: bool) -> None:
    """The Gusto API emulator."""
    _refuse_in_production()
    from sandbox.gusto.server import serve

    server, thread = serve(host, port, {"auto_approve": auto_approve})
    click.echo(f"Gusto emulator on http://{host}:{server.server_port}")
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True)
def tally(host: str, port: int) -> None:
    """The TallyPrime XML gateway emulator."""
    _refuse_in_production()
    from sandbox.tallyprime.server import serve

    server, thread, bound = serve(host, port)
    click.echo(f"TallyPrime emulator on http://{host}:{bound}")
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":  # pragma: no cover
    main()
