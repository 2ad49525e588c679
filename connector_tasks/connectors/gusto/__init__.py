"""Gusto connector: :class:`GustoClient` (HTTP, OAuth, paging) and the adapter to the domain.

See ``README.md`` beside this file and Gusto's documentation, https://docs.gusto.com/app-integrations/docs/authentication
(OAuth tokens: :mod:`connector_tasks.core.oauth`).
"""
from connector_tasks.connectors.gusto.adapter import (  # noqa: F401
    GustoPayrollSource, employee_from_gusto, payroll_from_gusto,
)
from connector_tasks.connectors.gusto.client import GustoClient  # noqa: F401
