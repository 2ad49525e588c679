"""TallyPrime's settings: per connection (:class:`TallySettings`; the Tally company is the
connection's ``account``) and process-wide for the agent (:class:`TallyAppSettings`), read from
the environment of the machine beside TallyPrime:

=============  ==========================================================================
TALLY_URL      TallyPrime's XML port, ``http://127.0.0.1:9000`` (Help > Settings >
               Connectivity; https://help.tallysolutions.com/pre-requisites-for-integrations/)
TALLY_TIMEOUT  seconds the agent waits for one TallyPrime reply (60)
=============  ==========================================================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from connector_tasks.core.schema import TypedSettings

DEFAULT_URL = "http://127.0.0.1:9000"


@dataclass(frozen=True)
class TallySettings(TypedSettings):
    """A TallyPrime connection's settings (the company is its ``account``; a protected
    company's Tally user name and password are its encrypted credentials ``username`` /
    ``password``). ``targets``: the connections its purchase vouchers go to (as a purchase
    source, polled by its agent; see :mod:`.polling`)."""

    TITLE: ClassVar[str] = "TallyPrime connection"

    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class TallyAppSettings:
    """The agent's settings: ``url`` of TallyPrime's XML port, ``timeout`` seconds per reply."""

    url: str = DEFAULT_URL
    timeout: int = 60

    @classmethod
    def from_settings(cls, settings) -> "TallyAppSettings":
        """Read ``TALLY_URL`` and ``TALLY_TIMEOUT`` from ``settings``; a bad timeout is a
        ConfigurationError naming the variable."""
        return cls(url=settings.var("TALLY_URL", DEFAULT_URL).rstrip("/"),
                   timeout=settings.positive("TALLY_TIMEOUT", 60))
