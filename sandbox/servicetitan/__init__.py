"""ServiceTitan v2 API emulator (sandbox only, never production): :func:`create_app`, :func:`serve`.

Built from the public v2 OpenAPI specs (``shared/specs/servicetitan/tenant-{inventory,pricebook,
settings,accounting}-v2.yml``, cited as "OAS <operation id or schema>") and
https://developer.servicetitan.io/docs/ (operations newer than the spec snapshot: see
``common.py``); what neither settles is marked
``ASSUMPTION`` where it is implemented. It serves a purchase flow from an accounting system:
vendors (matched by exact name), pricebook materials (matched by SKU ``code``), purchase
orders, receipts, returns, stock on hand and the inventory bills generated from receipts.

Modules: :mod:`.world` (state, config, default seed), :mod:`.gateway` (credentials, tenant,
rate limit, faults, request log), :mod:`.auth` (``POST /connect/token``), :mod:`.inventory`,
:mod:`.pricebook`, :mod:`.settings`, :mod:`.accounting`, :mod:`.admin` (``/_sandbox/…``),
:mod:`.common` (errors, validation, paging), :mod:`.app`, :mod:`.server`.

Pointing a client at it (both hosts are one origin)::

    server, base = serve(port=0, env="test")          # base = "http://127.0.0.1:<port>"
    auth URL     = f"{base}/connect/token"            # real: https://auth.servicetitan.io/connect/token
    API base URL = base                               # real: https://api.servicetitan.io
    e.g. GET {base}/inventory/v2/tenant/1000123456/vendors
         headers: Authorization: Bearer <access_token>, ST-App-Key: <app key>

Default seed (every configured tenant starts with it; ``POST /_sandbox/seed`` adds more):

- tenant ``1000123456`` "Demo Mechanical Inc" — client id ``cid.demo-servicetitan-tenant``,
  client secret ``cs1.demo-servicetitan-secret``; app key ``ak1.demo-servicetitan-app-key``
  (values in :mod:`.world`: ``DEMO_TENANT``, ``DEMO_CLIENT_ID``, ``DEMO_CLIENT_SECRET``,
  ``DEMO_APP_KEY``);
- business unit "HVAC Service"; purchase-order type "Standard" (not auto-received);
  warehouse "Main Warehouse" and truck "Truck 101" (inventory locations);
- vendors "Ferguson Enterprises" and "Johnstone Supply";
- materials ``CU-PIPE-075`` (Copper pipe 3/4in, Ferguson), ``FLT-16252`` (Air filter
  16x25x2, Johnstone), ``CAP-45-5`` (Run capacitor 45/5 uF, Johnstone).

Ids are int64 and start above 2**31 on purpose (see :mod:`.world`).
"""
from sandbox.servicetitan.app import create_app  # noqa: F401
from sandbox.servicetitan.world import (DEMO_APP_KEY, DEMO_CLIENT_ID,  # noqa: F401
                                        DEMO_CLIENT_SECRET, DEMO_TENANT)


def __getattr__(name: str):
    """``serve`` is imported on first use, so ``python -m sandbox.servicetitan.server`` does
    not find its module already imported by the package."""
    if name == "serve":
        from sandbox.servicetitan.server import serve
        return serve
    raise AttributeError(name)
