"""Gusto connector: :class:`GustoClient` (HTTP, OAuth, paging) and the adapter to the domain.

See ``README.md`` beside this file and ``shared/reference/external-apis.md`` §1.
"""
from connector_tasks.connectors.gusto.adapter import (  # noqa: F401
    GustoPayrollSource, employee_from_gusto, payroll_from_gusto,
)
from connector_tasks.connectors.gusto.client import (  # noqa: F401
    GustoClient, InMemoryTokenStore, TokenSet, TokenStore, parse_json,
)
