"""IFS Cloud emulator (sandbox only, never production): IAM client-credentials tokens and OData v4
projections for GL vouchers, accounting master data, customers and project resources.

Start it with :func:`sandbox.ifs_cloud.server.serve` (``serve("127.0.0.1", 0, config, env="test")``
-> ``(server, "http://127.0.0.1:<port>")``). Under that system URL:

* token: ``POST /auth/realms/ifsdemo/protocol/openid-connect/token`` with
  ``grant_type=client_credentials&client_id=ml-connector&client_secret=ifs-demo-secret&scope=openid microprofile-jwt``
* projections: ``/main/ifsapplications/projection/v1/<Projection>.svc/`` (also ``/int/...``)
* admin (not IFS): ``/_sandbox/state|reset|seed|config|requests|faults``

Default seed (see :mod:`sandbox.ifs_cloud.world`): namespace ``ifsdemo``; client
``ml-connector`` / ``ifs-demo-secret``; companies ``10`` (USD) and ``20`` (CAD); voucher types
``M`` and ``Z``; payroll accounts 1000/1090/2100/2200/2300/2310/2320/6000/6100/6200 (+ expired
6900); cost centres (CodeB) 100/200/300 (+ expired 900); projects (CodeC) PRJ1/PRJ2; monthly
periods of the current and previous calendar year, all Open except previous year period 1.

Modules: :mod:`.sources` (every source cited), :mod:`.world` (state + seed), :mod:`.iam`,
:mod:`.odata` (model, $filter & friends, ETags, errors, $metadata), :mod:`.router` (CRUD,
upserts, navigation, bound actions), :mod:`.accounting`, :mod:`.vouchers`, :mod:`.parties`,
:mod:`.admin`, :mod:`.app`, :mod:`.server`. Rules cite their source; what no source confirms is
marked ``ASSUMPTION``.
"""
