"""TallyPrime's settings: per connection (:class:`TallySettings`; the Tally company is the
connection's ``account``) and process-wide for the agent (:class:`TallyAppSettings`), read from
the environment of the machine beside TallyPrime:

=============  ==========================================================================
TALLY_URL      TallyPrime's XML port, ``http://127.0.0.1:9000`` (Help > Settings >
               Connectivity; https://help.tallysolutions.com/pre-requisites-for-integrations/)
TALLY_TIMEOUT  seconds the agent waits for one TallyPrime reply (60)
TALLY_MAX_REPLY_BYTES  the largest reply the agent reads (bytes, 33554432 = 32 MiB); past it
               the request fails with ``ReplyTooLargeError`` and reading stops
TALLY_REPLY_DEADLINE   seconds one whole reply may take, however slowly it trickles (300);
               past it the request fails with ``ReplyDeadlineError``
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
    """The agent's settings: ``url`` of TallyPrime's XML port, ``timeout`` seconds per read,
    ``max_reply_bytes`` (bytes) and ``reply_deadline`` (seconds) bounding every whole reply
    (:class:`connector_tasks.connectors.tallyprime.client.TallyClient`)."""

    url: str = DEFAULT_URL
    timeout: int = 60
    max_reply_bytes: int = 32 * 1024 * 1024
    reply_deadline: float = 300.0

    @classmethod
    def from_settings(cls, settings) -> "TallyAppSettings":
        """Read ``TALLY_URL``, ``TALLY_TIMEOUT``, ``TALLY_MAX_REPLY_BYTES`` and
        ``TALLY_REPLY_DEADLINE`` from ``settings``; a bad value is a ConfigurationError naming
        the variable."""
        return cls(url=settings.var("TALLY_URL", DEFAULT_URL).rstrip("/"),
                   timeout=settings.positive("TALLY_TIMEOUT", 60),
                   max_reply_bytes=settings.positive("TALLY_MAX_REPLY_BYTES", 32 * 1024 * 1024),
                   reply_deadline=settings.positive("TALLY_REPLY_DEADLINE", 300.0, float))
