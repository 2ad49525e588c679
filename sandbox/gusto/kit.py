"""The Gusto emulator's kit (see :mod:`sandbox.kit`): start it, point a deployment at it,
connect the demo company through the OAuth authorization-code flow and the webhook
subscription's verification handshake, and process the payroll example published in Gusto's
spec (the "Processed" example of ``GET /v1/companies/{company_id}/payrolls/{payroll_id}``)."""
from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

import requests

from sandbox.kit import EmulatorKit

#: the published "Processed" payroll example (``sandbox/gusto/data``)
DEMO_PAYROLL = "b50e611d-8f3d-4f24-b001-46675f7b5777"
GUSTO_CONN = "demo"
DEMO_CLIENT_ID, DEMO_CLIENT_SECRET = "demo-client-id", "demo-client-secret"


class _Form(HTMLParser):
    """The consent page's form: its action and fields."""

    def __init__(self):
        super().__init__()
        self.action, self.fields = None, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag in ("input", "button") and a.get("name"):
            self.fields.setdefault(a["name"], a.get("value", ""))


def operator_token(connection: str, role: str = "operator") -> str:
    """A new API token of the tenant that owns ``connection`` (as ``ml-connector tokens create
    --tenant <its tenant>`` makes one), from the store of the current settings."""
    from connector_tasks import runtime
    from connector_tasks.connections import get_connection
    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import Tenant
    from connector_tasks.tenants import create_token

    with session_scope(runtime.settings().database_url) as s:
        tenant = s.get(Tenant, get_connection(s, connection).tenant_id)
        _row, token = create_token(s, tenant.name, role, label=f"sandbox connect {connection}")
    return token


def approve_consent(consent_url: str, company: str | None = None,
                    browser: requests.Session | None = None) -> str:
    """Act as the Gusto user on the consent page at ``consent_url``: choose ``company`` (a
    company uuid; default the page's first) and press "Allow". Returns the callback URL the
    provider redirects to (with ``code`` and ``state``). Raises RuntimeError naming the step
    that answered unexpectedly."""
    browser = browser or requests.Session()
    page = browser.get(consent_url, allow_redirects=False)
    if page.status_code == 302:  # provider approved without a page
        return page.headers["Location"]
    form = _Form()
    form.feed(page.text)
    if company is not None:
        form.fields["company_uuid"] = company
    action = requests.compat.urljoin(consent_url, form.action or consent_url)
    r = browser.post(action, data=form.fields, allow_redirects=False)
    if r.status_code != 302:
        raise RuntimeError(f"consent page answered {r.status_code}: {r.text[:300]}")
    return r.headers["Location"]


def connect_gusto_company(web_url: str, connection: str, token: str | None = None, *,
                          replace: bool = False, company: str | None = None) -> dict:
    """Act as the operator's browser through the OAuth authorization-code flow: our start URL
    (authenticated with ``token``, an operator token of the connection's tenant: a new one
    from :func:`operator_token` when not given; ``replace``: re-point a connected connection)
    → the provider's consent page → "Allow" (``company``: the company chosen there) → our
    callback, in the same cookie session. Returns the callback's JSON. Raises RuntimeError
    naming the step that answered unexpectedly."""
    browser = requests.Session()
    token = token or operator_token(connection)
    params = {"connection": connection, **({"replace": "1"} if replace else {})}
    r = browser.get(f"{web_url}/oauth/gusto/start", params=params, allow_redirects=False,
                    headers={"Authorization": f"Bearer {token}"})
    if r.status_code != 302:
        raise RuntimeError(f"OAuth start answered {r.status_code}: {r.text[:300]}")
    callback = approve_consent(r.headers["Location"], company, browser)
    r = browser.get(callback, allow_redirects=False)
    if r.status_code != 200:
        raise RuntimeError(f"OAuth callback answered {r.status_code}: {r.text[:300]}")
    return r.json()


@dataclass
class GustoKit(EmulatorKit):
    """The Gusto emulator as the demo's and the harness's payroll source."""

    system: str = "gusto"
    connection: str = GUSTO_CONN

    def start(self, config: dict | None = None, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start the emulator (webhook retries after 0.5 s unless ``config`` says otherwise)."""
        from sandbox.gusto.server import serve

        self.server, _ = serve(host, port, {"delivery_backoff": 0.5, **(config or {})})
        self.url = f"http://{host}:{self.server.server_port}"
        return self.url

    def environ(self) -> dict[str, str]:
        """The emulator as Gusto's API host, with the demo application's OAuth client."""
        return {"GUSTO_BASE_URL": self.url, "GUSTO_CLIENT_ID": DEMO_CLIENT_ID,
                "GUSTO_CLIENT_SECRET": DEMO_CLIENT_SECRET}

    def add_connection(self, session, *, targets: list[str] = ()) -> None:
        """The demo's Gusto connection, feeding ``targets``."""
        from connector_tasks.store.models import Connection

        session.add(Connection(name=self.connection, system=self.system,
                               settings={"targets": list(targets), "base_url": self.url}))

    def connect(self, web_url: str) -> str:
        """OAuth (as the user's browser) and the webhook subscription with its handshake."""
        from connector_tasks.connectors.gusto.service import register_webhook

        result = connect_gusto_company(web_url, self.connection)
        sub = register_webhook(self.connection)
        return (f"OAuth: connection {result['connection']} → Gusto company {result['account']}; webhook "
                f"subscription {sub['uuid']} {sub.get('status')} (verification-token handshake)")

    def fire(self) -> str:
        """Process the published example payroll: the emulator sends a signed
        ``payroll.processed`` webhook. Returns the payroll's uuid."""
        r = requests.post(f"{self.url}/_sandbox/payrolls/{DEMO_PAYROLL}/process", timeout=10)
        r.raise_for_status()
        return DEMO_PAYROLL


KIT = GustoKit
