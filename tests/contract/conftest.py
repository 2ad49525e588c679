"""Contract-test fixtures: the public specs (loaded once per session) and emulator servers.

The Gusto spec is read from ``$ML_CONNECTOR_SPECS_DIR/gusto/…`` or ``<checkout>/../shared/specs``
(CI keeps ``shared/`` beside the checkout). A missing spec fails the tests; nothing is skipped.
"""
from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.serving import WSGIRequestHandler, make_server

GUSTO_SPEC_NAME = "gusto/gusto-api-2025-06-15.openapi.yaml"
GUSTO_SPEC_HOST = "https://api.gusto-demo.com"


def specs_dir() -> Path:
    """Directory holding the public specs."""
    env = os.environ.get("ML_CONNECTOR_SPECS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "specs"


@pytest.fixture(scope="session")
def gusto_spec() -> dict:
    """The Gusto OpenAPI 3.1 spec (2025-06-15) as a dict, parsed once per session."""
    path = specs_dir() / GUSTO_SPEC_NAME
    assert path.exists(), f"Gusto spec not found at {path} (set ML_CONNECTOR_SPECS_DIR)"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as fh:
        return yaml.load(fh, Loader=loader)


@pytest.fixture(scope="session")
def gusto_openapi(gusto_spec):
    """An ``openapi_core.OpenAPI`` over the Gusto spec (spec self-validation skipped: slow)."""
    from openapi_core import Config, OpenAPI
    return OpenAPI.from_dict(gusto_spec, config=Config(spec_validator_cls=None))


@dataclass
class SpecRequest:
    """An ``openapi_core`` request built from what a client sent (host = the spec's server)."""

    path: str
    method: str
    parameters: object
    body: bytes | None = None
    content_type: str = "application/json"
    host_url: str = GUSTO_SPEC_HOST


@dataclass
class SpecResponse:
    """An ``openapi_core`` response built from a ``requests`` response."""

    status_code: int
    data: bytes
    headers: Headers
    content_type: str = "application/json"


def spec_request(method: str, path: str, *, query: dict | list | None = None,
                 headers: dict | None = None, body: bytes | None = None):
    """Build a :class:`SpecRequest`; ``query`` is a dict of lists or a list of pairs."""
    from openapi_core.datatypes import RequestParameters
    if isinstance(query, dict):
        pairs = [(k, v) for k, vals in query.items() for v in (vals if isinstance(vals, list) else [vals])]
    else:
        pairs = list(query or [])
    params = RequestParameters(query=ImmutableMultiDict(pairs), header=Headers(headers or {}))
    return SpecRequest(path=path, method=method.lower(), parameters=params, body=body)


def schema_errors(exc: BaseException) -> list:
    """The jsonschema errors behind an openapi-core validation exception (may be empty)."""
    seen, out = set(), []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.extend(getattr(exc, "schema_errors", None) or [])
        exc = exc.__cause__ or exc.__context__
    return out


def path_str(err) -> str:
    """``employee_compensations.*.gross_pay`` style path of a jsonschema error."""
    return ".".join("*" if isinstance(p, int) else str(p) for p in err.absolute_path)


DECIMAL_TEXT = re.compile(r"^-?\d+(\.\d+)?$")


@pytest.fixture(scope="session")
def validate_gusto_response(gusto_openapi):
    """``validate(method, path, resp, query=None, allowed=())`` → list of tolerated deviations.

    Validates a ``requests`` response against the spec operation. ``allowed`` is a list of
    ``(path pattern, kind)`` known spec-vs-wire deviations: kind ``"decimal-string"`` accepts a
    numeric string where the schema says number (https://docs.gusto.com/app-integrations/reference/get-v1-companies-company_id-payrolls-payroll_id (amounts as strings) pitfall), ``"number"``
    a number where it says string. Any other error fails the test.
    """
    def validate(method, path, resp, *, query=None, allowed=()):
        req = spec_request(method, path, query=query,
                           headers={"Authorization": "Bearer x", "X-Gusto-API-Version": "2025-06-15"})
        sresp = SpecResponse(resp.status_code, resp.content, Headers(dict(resp.headers)),
                             resp.headers.get("Content-Type", "application/json"))
        try:
            gusto_openapi.validate_response(req, sresp)
            return []
        except Exception as exc:  # noqa: BLE001 - inspected below
            errors = schema_errors(exc)
            assert errors, f"spec validation failed without schema errors: {exc!r}"
            tolerated, bad = [], []
            for err in errors:
                p = path_str(err)
                ok = False
                for pattern, kind in allowed:
                    if re.fullmatch(pattern, p):
                        if kind == "decimal-string" and isinstance(err.instance, str) \
                                and DECIMAL_TEXT.match(err.instance):
                            ok = True
                        elif kind == "number" and isinstance(err.instance, (int, float)) \
                                and not isinstance(err.instance, bool):
                            ok = True
                (tolerated if ok else bad).append((p, err.message))
            assert not bad, f"{method} {path}: response breaks the spec: {bad}"
            return tolerated
    return validate


@pytest.fixture(scope="session")
def validate_gusto_request(gusto_openapi):
    """``validate(entry)`` for one ``/_sandbox/requests`` log entry: raises on a spec breach."""
    def validate(entry):
        body = entry["body"].encode() if entry.get("body") else None
        req = spec_request(entry["method"], entry["path"], query=entry["query"],
                           headers=entry["headers"], body=body)
        req.content_type = entry["headers"].get("Content-Type", "application/json")
        gusto_openapi.validate_request(req)
    return validate


class _Quiet(WSGIRequestHandler):
    def log_request(self, *a, **k):
        pass


@pytest.fixture
def gusto_emulator():
    """Factory: ``start(config=None) -> base_url``; every server started is shut down after."""
    from sandbox.gusto.server import serve
    servers = []

    def start(config: dict | None = None) -> str:
        server, _ = serve("127.0.0.1", 0, config, env="test")
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for s in servers:
        s.shutdown()


class Receiver:
    """A real HTTP webhook receiver: records ``(headers, raw body)`` and answers the statuses
    queued in ``statuses`` (then 200)."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)

        def app(environ, start_response):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                       if k.startswith("HTTP_")}
            with self.cond:
                self.received.append((headers, raw))
                status = self.statuses.pop(0) if self.statuses else 200
                self.cond.notify_all()
            start_response(f"{status} X", [("Content-Type", "text/plain")])
            return [b"ok"]

        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/gusto"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[dict, bytes]]:
        """Block until ``n`` requests arrived; returns them all (asserts on timeout)."""
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.received) >= n, timeout)
            assert ok, f"expected {n} webhook POSTs, got {len(self.received)}"
            return list(self.received)

    def json_bodies(self) -> list[dict]:
        with self.lock:
            return [json.loads(b) for _, b in self.received]


@pytest.fixture
def webhook_receiver():
    """A started :class:`Receiver`, shut down after the test."""
    r = Receiver()
    yield r
    r.server.shutdown()


def system_token(base: str) -> str:
    """A system access token from the emulator (demo credentials)."""
    r = requests.post(f"{base}/oauth/token", json={"client_id": "demo-client-id",
                                                   "client_secret": "demo-client-secret",
                                                   "grant_type": "system_access"}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def company_tokens(base: str, company_uuid: str | None = None, redirect_uri: str = "http://localhost/cb") -> dict:
    """Run the consent flow (form POST) and exchange the code; returns the token body."""
    from urllib.parse import parse_qs, urlsplit
    form = {"client_id": "demo-client-id", "redirect_uri": redirect_uri, "state": "s1"}
    if company_uuid:
        form["company_uuid"] = company_uuid
    r = requests.post(f"{base}/oauth/authorize", data=form, allow_redirects=False, timeout=5)
    assert r.status_code == 302, r.text
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    r = requests.post(f"{base}/oauth/token", json={
        "client_id": "demo-client-id", "client_secret": "demo-client-secret",
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="session")
def gusto_helpers():
    """Helper functions: ``system_token(base)``, ``company_tokens(base, company_uuid=None)``."""
    class H:
        pass
    H.system_token = staticmethod(system_token)
    H.company_tokens = staticmethod(company_tokens)
    return H


class TallyHandle:
    """A running TallyPrime emulator for contract tests: its ``url``, the in-process
    ``emulator`` object and the sandbox admin calls."""

    COMPANY = "Demo Trading Co"

    def __init__(self, server, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.emulator = server.app.extensions["tally_emulator"]

    def state(self) -> dict:
        return requests.get(f"{self.url}/_sandbox/state", timeout=30).json()

    def fault(self, **spec) -> None:
        assert requests.post(f"{self.url}/_sandbox/faults", json=spec, timeout=5).status_code == 200

    def seed(self, **spec) -> dict:
        r = requests.post(f"{self.url}/_sandbox/seed", json=spec, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def company(self, name: str = COMPANY) -> dict:
        return next(c for c in self.state()["companies"] if c["name"] == name)

    def centres(self) -> dict:
        return {c["name"]: c for c in self.company()["cost_centres"]}

    def vouchers(self) -> list[dict]:
        return self.company()["vouchers"]

    def imports_since(self, n: int) -> list[dict]:
        return [r for r in self.state()["requests"][n:] if r["tallyrequest"] == "Import"]


@pytest.fixture
def tally():
    """A fresh TallyPrime emulator over HTTP (:class:`TallyHandle`), stopped afterwards."""
    from sandbox.tallyprime.server import serve

    server, _thread, port = serve(env="test")
    yield TallyHandle(server, port)
    server.shutdown()
