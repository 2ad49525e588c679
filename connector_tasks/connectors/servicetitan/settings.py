"""A ServiceTitan connection's settings (:class:`ServiceTitanSettings`; the tenant id is the
connection's ``account``; client id, client secret and app key are its encrypted credentials),
the process-wide settings read from the environment (:class:`ServiceTitanAppSettings`) and the
beat schedule.

====================================  ========================================================
SERVICETITAN_CATALOG_SECONDS          how often beat refreshes every connection's vendor and
                                      material cache (900)
====================================  ========================================================

Sources: hosts per environment, https://developer.servicetitan.io/docs/get-going-first-api-call
(integration: ``api-integration.servicetitan.io`` / ``auth-integration.servicetitan.io``);
credentials per tenant and app key per application,
https://developer.servicetitan.io/docs/faqs-app-key-client-id-secret/.
"""
from __future__ import annotations

import datetime as dt

from dataclasses import dataclass
from typing import ClassVar, Literal

from connector_tasks.connectors.servicetitan.client import (
    API_URL, AUTH_URL, INTEGRATION_API_URL, INTEGRATION_AUTH_URL, SYSTEM,
)
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.core.schema import TypedSettings

#: poll interval bounds in minutes (issue 13: "default 10 min, 5–15 configurable per connection")
POLL_MIN, POLL_DEFAULT, POLL_MAX = 5, 10, 15


@dataclass(frozen=True)
class ServiceTitanSettings(TypedSettings):
    """One ServiceTitan connection (``account`` = the tenant id).

    * ``environment``: ``integration`` (the sandbox hosts, default) or ``production``;
      ``api_url`` / ``auth_url`` override the hosts (an emulator, a proxy);
    * ``business_unit``, ``po_type``, ``inventory_location``: what every purchase order uses,
      each an id (digits) or the exact name of an active record; unset = the tenant's only
      active one (refused when it has several);
    * ``match_items_by``: a source stock item matches the pricebook material whose ``code``
      equals its ``part_number`` (default) or its ``name``, exactly;
    * ``poll_interval_minutes``: how often a purchase source feeding this connection is polled
      (5–15, default 10);
    * ``page_size``: ``pageSize`` of list calls (1..5000, default 500).
    """

    TITLE: ClassVar[str] = "ServiceTitan connection"

    environment: Literal["integration", "production"] = "integration"
    api_url: str | None = None
    auth_url: str | None = None
    business_unit: str | None = None
    po_type: str | None = None
    inventory_location: str | None = None
    match_items_by: Literal["part_number", "name"] = "part_number"
    poll_interval_minutes: int = POLL_DEFAULT
    page_size: int = 500

    def validate(self) -> None:
        """The interval is 5–15 minutes; URLs are http(s); the page size 1..5000. Raises
        ConfigurationError naming the setting."""
        if not POLL_MIN <= self.poll_interval_minutes <= POLL_MAX:
            raise ConfigurationError(f"{self.TITLE} setting 'poll_interval_minutes' must be {POLL_MIN}..{POLL_MAX}, "
                                     f"got {self.poll_interval_minutes}", system=SYSTEM)
        for name in ("api_url", "auth_url"):
            value = getattr(self, name)
            if value and not value.startswith(("http://", "https://")):
                raise ConfigurationError(f"{self.TITLE} setting {name!r} must be an http(s) URL", system=SYSTEM)
        if not 1 <= self.page_size <= 5000:
            raise ConfigurationError(f"{self.TITLE} setting 'page_size' must be 1..5000", system=SYSTEM)

    def hosts(self) -> tuple[str, str]:
        """``(API base URL, token URL)`` of the environment, or the overrides."""
        api, auth = (API_URL, AUTH_URL) if self.environment == "production" else (INTEGRATION_API_URL,
                                                                                   INTEGRATION_AUTH_URL)
        return (self.api_url or api).rstrip("/"), self.auth_url or auth


@dataclass(frozen=True)
class ServiceTitanAppSettings:
    """Process-wide: ``catalog_seconds`` between scheduled refreshes of the vendor/material
    caches."""

    catalog_seconds: int = 900

    @classmethod
    def from_settings(cls, settings) -> "ServiceTitanAppSettings":
        """Read ``SERVICETITAN_CATALOG_SECONDS``; a bad value is a ConfigurationError naming it."""
        return cls(catalog_seconds=settings.positive("SERVICETITAN_CATALOG_SECONDS", 900))


def beat_schedule(app: ServiceTitanAppSettings) -> dict:
    """Beat's entry: the catalogue refresh (``servicetitan.refresh_catalogs`` every
    ``SERVICETITAN_CATALOG_SECONDS``). The purchase sources feeding a connection poll on their
    own clock, every ``poll_interval_minutes`` of the connection."""
    return {"refresh-servicetitan-catalogs": {"task": "servicetitan.refresh_catalogs",
                                              "schedule": dt.timedelta(seconds=app.catalog_seconds)}}
