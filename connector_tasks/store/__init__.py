"""The store: SQLAlchemy models, sessions and Alembic migrations."""

# the agent table lives with the agents' code but belongs to the store's metadata
from connector_tasks.agents import models as _agent_models  # noqa: E402,F401
