"""The ``agent`` table: one row per enrolled agent (migration ``0006_agents``).

Kept in its own module (on the store's :class:`~connector_tasks.store.models.Base`) so the
agent's trust boundary stays in one package.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from connector_tasks.store.models import Base, utcnow


class Agent(Base):
    """An agent beside a customer's books: ``connections`` (the names of the connections whose
    commands it may receive, a JSON list), ``state`` (``pending`` until it registers with its
    one-time code, ``active``, ``revoked``), ``code_sha256``/``code_expires_at`` (the one-time
    enrolment code, stored hashed, single use), ``password_sha256`` (the SHA-256 of its broker
    password: what Redis keeps; the password itself is shown once, to the agent),
    ``refused_reports`` (outbox reports refused: forged, foreign, oversized, malformed)."""

    __tablename__ = "agent"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connections: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    state: Mapped[str] = mapped_column(String(16), default="pending", nullable=False)
    code_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    password_sha256: Mapped[str | None] = mapped_column(String(64))
    refused_reports: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    registered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
