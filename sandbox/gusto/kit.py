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


def connect_gusto_company(web_url: str, connection: str) -> dict:
    """Act as the user's browser through the OAuth authorization-code flow: our start URL →
    the provider's consent page → "Allow" → our callback. Returns the callback's JSON. Raises
    RuntimeError naming the step that answered unexpectedly."""
    browser = requests.Session()
    r = browser.get(f"{web_url}/oauth/gusto/start", params={"connection": connection}, allow_redirects=False)
    if r.status_code != 302:
        raise RuntimeError(f"OAuth start answered {r.status_code}: {r.text[:300]}")
    consent_url = r.headers["Location"]
    page = browser.get(consent_url, allow_redirects=False)
    if page.status_code == 302:  # provider approved without a page
        callback = page.headers["Location"]
    else:
        form = _Form()
        form.feed(page.text)
        action = requests.compat.urljoin(consent_url, form.action or consent_url)
        r = browser.post(action, data=form.fields, allow_redirects=False)
        if r.status_code != 302:
            raise RuntimeError(f"consent page answered {r.status_code}: {r.text[:300]}")
        callback = r.headers["Location"]
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
