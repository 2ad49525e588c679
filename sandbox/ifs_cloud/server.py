"""Run the IFS Cloud emulator as a real HTTP server (threaded werkzeug) in a daemon thread.

``serve()`` is what tests use; ``python -m sandbox.ifs_cloud.server --port 8804`` runs it in the
foreground. Refuses to start when the environment says production.
"""
from __future__ import annotations

import argparse

from werkzeug.serving import BaseWSGIServer

from sandbox import refuse_in_production
from sandbox.ifs_cloud.app import PROJECTION_ROOT, create_app
from sandbox.serving import foreground, start


def serve(host: str = "127.0.0.1", port: int = 0, config: dict | None = None,
          env: str | None = None) -> tuple[BaseWSGIServer, str]:
    """Start the emulator on ``host:port`` (0 = a free port) in a daemon thread.

    Returns ``(server, base_url)``; ``base_url`` is the system URL ``http://host:port`` that
    clients are configured with. Under it: the projections at
    ``/main/ifsapplications/projection/v1/<Projection>.svc`` (also ``/int/...``) and the token
    endpoint at ``/auth/realms/<namespace>/protocol/openid-connect/token``. Stop with
    ``server.shutdown()``; the state is ``server.app.extensions["ifs_cloud"]``. Raises
    :class:`sandbox.ProductionRefused` when ``env`` (default ``ML_CONNECTOR_ENV``) is production.
    """
    refuse_in_production(env, "IFS Cloud emulator")
    server, _ = start(create_app(config), host, port, "ifs-cloud-emulator")
    return server, f"http://{host}:{server.server_port}"


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--host``, ``--port``, ``--token-ttl``."""
    parser = argparse.ArgumentParser(description="IFS Cloud OData emulator (sandbox only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8804)
    parser.add_argument("--token-ttl", type=int, default=180)
    args = parser.parse_args(argv)
    server, base = serve(args.host, args.port, {"token_ttl": args.token_ttl})
    ns = server.app.extensions["ifs_cloud"].config["namespace"]
    foreground(server, f"IFS Cloud emulator on {base}", f"  projections: {base}/main{PROJECTION_ROOT}/<Projection>.svc",
               f"  token:       {base}/auth/realms/{ns}/protocol/openid-connect/token")


if __name__ == "__main__":
    main()
