"""An IFS Cloud connection's settings (:class:`IfsSettings`); the IAM client id and secret are
its encrypted credentials, apart from these.

Sources: URLs and the IAM namespace, docs.ifs.com 23r2 "Projections and OData Provider"
(https://docs.ifs.com/techdocs/23r2/040_tailoring/300_extensibility/100_odata_provider/200_projections_and_odp/)
and 26r1 "Authenticate external integration"
(https://docs.ifs.com/techdocs/26r1/030_administration/010_security/040_iam_settings/035_iam_clients/020_authenticate_external_integration/);
company codes and code parts B…J, the public IFS Cloud 21R1 ACCRUL model files (repository
prashweenet/demoproj2, ``accrul/model/accrul/``); rate limits: none published, throughput is
the customer's sizing (IFS "API Usage in IFS Cloud", https://docs.ifs.com/policy/APIUsageCloud.pdf).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from connector_tasks.connectors.ifs_cloud.client import SYSTEM, TOKEN_MARGIN, Projections
from connector_tasks.connectors.ifs_cloud.mapping import CODE_PART_LETTERS, COST_CENTRE_CODE_PART
from connector_tasks.connectors.ifs_cloud.vouchers import ROUTES
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.core.rate_limit import budget_from_settings
from connector_tasks.core.schema import TypedSettings

#: Requests per window a connection spends at most by default: ``{"per_second": 10}``.
#: ASSUMPTION: IFS publishes no limit (API Usage policy above); a polite default that a
#: customer's sizing may raise or lower (setting ``rate_limit``).
DEFAULT_RATE_LIMIT = {"per_second": 10}


@dataclass(frozen=True)
class IfsSettings(TypedSettings):
    """One IFS Cloud connection (the connection's ``account`` is the IAM namespace).

    Reaching IFS: ``system_url`` (``https://<system>``, no path), ``namespace`` (the IAM realm),
    ``projections`` (overrides of :class:`~.client.Projections` names, e.g. ``{"tier": "int"}``),
    ``token_margin`` (seconds before expiry a token is renewed), ``timeout`` (read timeout, s),
    ``rate_limit`` (requests per window for :func:`~connector_tasks.core.rate_limit.budget_from_settings`,
    e.g. ``{"per_second": 10}``; ``{}`` = none).

    Vouchers: ``voucher_route`` (``external``, the default, or ``assistant``; see
    :mod:`.vouchers`), ``voucher_type`` (default the route's: Z for External Vouchers, M for the
    assistant), ``currency`` (the payroll's currency: a company keeping its books in another is
    refused before any write).

    Companies: ``default_company`` (the company code for everything not mapped, e.g. the
    ``Unallocated`` remainder); ``company_by_employee`` (source employee id or employee code →
    company), ``company_by_job`` (job title → company), ``company_by_department`` (department →
    company), tried in that order. Cost centres: ``cost_centre_by_department`` (department →
    code part value), ``default_cost_centre`` (value for the rest; default
    :data:`~.mapping.DEFAULT_CODE_B`), ``cost_centre_code_part`` (the letter, default B); per
    cost-centre name mappings are rows ``kind="ifs_cost_centre"`` (:mod:`.mapping`).

    Settlement: ``settlement`` (post a settlement voucher when the payroll source debits the company; false =
    accrual only, settlement jobs end with a note), ``bank_account`` (the bank or clearing
    account credited; default the mapping's for the ``Payroll Bank Account`` ledger, 1000).

    Employees: ``employee_sync`` (``customer`` or ``project_resource``), ``customer_country``
    and ``customer_language`` (mandatory attributes of a new customer).
    """

    TITLE: ClassVar[str] = "IFS Cloud connection"

    system_url: str | None = None
    namespace: str | None = None
    projections: dict = field(default_factory=dict)
    token_margin: float = TOKEN_MARGIN
    timeout: float = 30.0
    rate_limit: dict = field(default_factory=lambda: dict(DEFAULT_RATE_LIMIT))
    voucher_route: Literal["external", "assistant"] = "external"
    voucher_type: str | None = None
    currency: str = "USD"
    default_company: str | None = None
    company_by_employee: dict = field(default_factory=dict)
    company_by_job: dict = field(default_factory=dict)
    company_by_department: dict = field(default_factory=dict)
    cost_centre_by_department: dict = field(default_factory=dict)
    default_cost_centre: str | None = None
    cost_centre_code_part: str = COST_CENTRE_CODE_PART
    settlement: bool = True
    bank_account: str | None = None
    employee_sync: Literal["customer", "project_resource"] = "customer"
    customer_country: str = "US"
    customer_language: str = "en"

    def validate(self) -> None:
        """The URL is http(s) without a path; projection names are known; mapped companies and
        code part values are non-empty text; the code part letter is B…J; the rate limit and the
        margins are valid. Raises ConfigurationError naming the setting."""
        if self.system_url:
            rest = self.system_url.split("://", 1)[-1]
            if not self.system_url.startswith(("http://", "https://")) or "/" in rest.rstrip("/"):
                raise ConfigurationError(f"{self.TITLE} setting 'system_url' must be https://<system> (no path), "
                                         f"got {self.system_url!r}", system=SYSTEM)
        Projections.from_settings(self.projections)
        for name in ("company_by_employee", "company_by_job", "company_by_department", "cost_centre_by_department"):
            for key, value in getattr(self, name).items():
                if not str(key).strip() or not isinstance(value, str) or not value.strip():
                    raise ConfigurationError(f"{self.TITLE} setting {name!r}: {key!r} → {value!r} must map a name "
                                             "to a non-empty code", system=SYSTEM)
        if self.cost_centre_code_part.upper() not in CODE_PART_LETTERS:
            raise ConfigurationError(f"{self.TITLE} setting 'cost_centre_code_part' must be one of B-J, got "
                                     f"{self.cost_centre_code_part!r}", system=SYSTEM)
        if self.voucher_route not in ROUTES:
            raise ConfigurationError(f"{self.TITLE} setting 'voucher_route' must be one of {sorted(ROUTES)}",
                                     system=SYSTEM)
        if self.rate_limit:
            budget_from_settings(SYSTEM, self.rate_limit)
        if self.token_margin < 0 or self.timeout <= 0:
            raise ConfigurationError(f"{self.TITLE}: token_margin must be >= 0 and timeout > 0", system=SYSTEM)

    def require(self, name: str) -> "IfsSettings":
        """``self`` once ``system_url``, ``namespace`` and ``default_company`` are set; else a
        ConfigurationError naming the connection ``name`` and the missing setting."""
        for key in ("system_url", "namespace", "default_company"):
            if not getattr(self, key):
                raise ConfigurationError(f"IFS Cloud connection {name!r} has no {key!r} setting", system=SYSTEM)
        return self

    def companies(self) -> list[str]:
        """Every company code the connection maps to (the default first, then sorted)."""
        mapped = {*self.company_by_employee.values(), *self.company_by_job.values(),
                  *self.company_by_department.values()}
        first = [self.default_company] if self.default_company else []
        return first + sorted(mapped - set(first))

    def projection_names(self) -> Projections:
        """The :class:`~.client.Projections` of this installation."""
        return Projections.from_settings(self.projections)
