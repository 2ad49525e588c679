"""ServiceTitan connector (v2 API).

Modules: :mod:`.client` (:class:`~.client.ServiceTitanClient`: client-credentials tokens per
tenant, ``ST-App-Key`` on every call, paging, the error mapping), :mod:`.wire` (exact-decimal
JSON, error bodies, and the pure request builders ``purchase_order_request``,
``purchase_order_update_request``, ``receipt_request``, ``return_request``,
``cancellation_request``, ``vendor_request``, ``material_request``), :mod:`.budget` (60 requests
per second per app key x tenant) and :mod:`.limits` (``budget_for`` and the client's budget
hooks). Nothing is imported here, so importing the budget stays cheap.
"""
