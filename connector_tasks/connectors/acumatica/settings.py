"""An Acumatica connection's settings (the tenant is the connection's ``account``; credentials
are encrypted apart). Sources: endpoint URLs and versions,
https://github.com/Acumatica/AcumaticaRESTAPIClientForCSharp (``Acumatica.Default_24.200.001``);
licence limits (API users, requests per minute, concurrent requests),
https://help.myob.com.au/advanced/Docs/Published/IntegrationDevelopmentGuide/IS__con_License_Restrictions_API_Users.html .
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from connector_tasks.core.errors import ConfigurationError
from connector_tasks.core.schema import TypedSettings


@dataclass(frozen=True)
class AcumaticaSettings(TypedSettings):
    """``base_url``: the site, ``https://<host>/<instance>``; ``endpoint_version``: e.g.
    ``24.200.001`` (must match the instance); ``branch``: BranchID of the GL batches;
    ``ledger``: LedgerID (``ACTUAL``); ``release``: release each posted batch; ``subaccount``:
    the default subaccount; ``requests_per_minute`` / ``concurrent_requests``: the licence's
    limits (``None``: none); ``auth``: ``oauth`` (identity server) or ``cookie`` (session login);
    ``timeout``: read timeout in seconds."""

    TITLE: ClassVar[str] = "Acumatica connection"

    base_url: str | None = None
    endpoint_version: str | None = None
    branch: str | None = None
    ledger: str = "ACTUAL"
    release: bool = False
    subaccount: str | None = None
    requests_per_minute: int | None = None
    concurrent_requests: int | None = None
    auth: Literal["oauth", "cookie"] = "oauth"
    timeout: float = 30.0

    def validate(self) -> None:
        """Limits are positive; a base URL is http(s)."""
        for name in ("requests_per_minute", "concurrent_requests"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigurationError(f"{self.TITLE} setting {name!r} must be positive, got {value}")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"{self.TITLE} setting 'base_url' must be an http(s) URL")

    def require(self, name: str) -> "AcumaticaSettings":
        """``self`` once ``base_url``, ``endpoint_version`` and ``branch`` are set; else a
        ConfigurationError naming the connection ``name`` and the missing setting."""
        for key in ("base_url", "endpoint_version", "branch"):
            if not getattr(self, key):
                raise ConfigurationError(f"Acumatica connection {name!r} has no {key!r} setting", system="acumatica")
        return self
