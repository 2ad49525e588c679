"""TallyPrime connector: XML envelopes, reply parsing and the HTTP client (see README.md)."""
from .client import CompanyNotLoadedError, TallyClient
from .replies import ImportResult

__all__ = ["TallyClient", "CompanyNotLoadedError", "ImportResult"]
