"""Gusto's settings: per connection (:class:`GustoSettings`) and process-wide, from the
environment (:class:`GustoAppSettings`), plus its beat schedule (the ``/v1/events`` poll).

Environment (read by :class:`GustoAppSettings` from ``Settings.environ``):

====================  =======================================================================
GUSTO_BASE_URL        ``https://api.gusto-demo.com`` (production: ``https://api.gusto.com``;
                      https://docs.gusto.com/app-integrations/docs/authentication)
GUSTO_CLIENT_ID       the application's OAuth client id (required in production)
GUSTO_CLIENT_SECRET   its secret (required in production)
GUSTO_API_VERSION     the pinned ``X-Gusto-API-Version`` (``2025-06-15``;
                      https://docs.gusto.com/embedded-payroll/docs/api-versioning)
GUSTO_POLL_SECONDS    how often beat polls ``/v1/events`` per connection (300)
GUSTO_SETTLE_SECONDS  how often beat looks for posted payrolls Gusto has debited the company for
                      (the ``payroll.paid`` stand-in, ``source.settle_due``; 900)
====================  =======================================================================
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from connector_tasks.core.errors import ConfigurationError
from connector_tasks.core.schema import TypedSettings

DEFAULT_BASE_URL = "https://api.gusto-demo.com"
DEFAULT_API_VERSION = "2025-06-15"


@dataclass(frozen=True)
class GustoSettings(TypedSettings):
    """A Gusto connection's settings.

    ``targets``: the connections its payroll journals and employee masters go to (each gets its
    own job per payroll or employee); ``base_url``: overrides ``GUSTO_BASE_URL`` for this
    connection; ``cost_category``: the cost category of employee cost centres (default
    ``Employees``); ``poll``: whether beat polls its ``/v1/events`` (default true).
    """

    TITLE: ClassVar[str] = "Gusto connection"
    LEGACY: ClassVar[Mapping[str, str | None]] = {"target": "targets"}

    targets: tuple[str, ...] = ()
    base_url: str | None = None
    cost_category: str | None = None
    poll: bool = True

    @classmethod
    def upgrade(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """A single ``target`` name (stored by earlier releases) becomes ``targets``."""
        data = dict(data)
        if isinstance(data.get("target"), str) and "targets" not in data:
            data["targets"] = [data.pop("target")]
        return super().upgrade(data)

    def validate(self) -> None:
        """A target may be named once; a base URL must be http(s)."""
        if len(set(self.targets)) != len(self.targets):
            raise ConfigurationError(f"{self.TITLE}: a target is named twice in {list(self.targets)}")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"{self.TITLE} setting 'base_url' must be an http(s) URL")


@dataclass(frozen=True)
class GustoAppSettings:
    """The Gusto application's settings (see the module docstring for the variables)."""

    base_url: str = DEFAULT_BASE_URL
    client_id: str = ""
    client_secret: str = ""
    api_version: str = DEFAULT_API_VERSION
    poll_seconds: int = 300
    settle_seconds: int = 900

    @classmethod
    def from_settings(cls, settings) -> "GustoAppSettings":
        """Read from ``settings`` (a :class:`config.settings.Settings`); in production a missing
        client id or secret is a ConfigurationError naming the variable."""
        if settings.is_production:
            for var in ("GUSTO_CLIENT_ID", "GUSTO_CLIENT_SECRET"):
                if not settings.var(var):
                    raise ConfigurationError(f"{var} must be set in production")
        return cls(base_url=settings.var("GUSTO_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
                   client_id=settings.var("GUSTO_CLIENT_ID"), client_secret=settings.var("GUSTO_CLIENT_SECRET"),
                   api_version=settings.var("GUSTO_API_VERSION", DEFAULT_API_VERSION),
                   poll_seconds=settings.positive("GUSTO_POLL_SECONDS", 300),
                   settle_seconds=settings.positive("GUSTO_SETTLE_SECONDS", 900))


def beat_schedule(app: GustoAppSettings) -> dict:
    """Beat's entries: the polling fallback (``gusto.poll_all`` every ``GUSTO_POLL_SECONDS``) and
    the ``payroll.paid`` stand-in (``gusto.settle_all`` every ``GUSTO_SETTLE_SECONDS``)."""
    return {"poll-gusto-events": {"task": "gusto.poll_all", "schedule": dt.timedelta(seconds=app.poll_seconds)},
            "settle-gusto-payrolls": {"task": "gusto.settle_all",
                                      "schedule": dt.timedelta(seconds=app.settle_seconds)}}
