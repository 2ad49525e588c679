"""TallyPrime connector: XML envelopes, reply parsing and the HTTP client (see README.md).

Sources named in this package's docstrings by short name:

* "Tally integration prerequisites": https://help.tallysolutions.com/pre-requisites-for-integrations/
* "Tally XML case study 1" (envelopes, exports, change tracking, masters):
  https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/
* "Tally XML integration" ("Response": import counters, LINEERROR):
  https://help.tallysolutions.com/xml-integration/
* "tally-database-loader" (a public client: UTF-16 transport, batching, AlterID and GUID-list
  sync, removal of ``&#4;``): https://github.com/dhananjay1405/tally-database-loader
* "tally-export-config.yaml" (field names of Tally's objects, in tally-database-loader).
"""
from .client import CompanyNotLoadedError, TallyClient
from .replies import ImportResult

__all__ = ["TallyClient", "CompanyNotLoadedError", "ImportResult"]
