"""Where each rule of the IFS Cloud emulator comes from (cited by name in the other modules).

Facts only were taken from these; no code. IFS's own technical documentation
(https://docs.ifs.com/techdocs/, "OData Provider") settles most of them. Anything the emulator does that none of these confirm is marked
``ASSUMPTION`` where it is implemented.
"""
from __future__ import annotations

#: docs.ifs.com "Entity Upserts and *ETag Support": PATCH without If-Match = upsert (insert
#: ignoring non-insertable attributes, else update ignoring non-updatable ones; keys taken from the
#: URL, body keys ignored; fails if a key is not insertable); ``If-Match: *`` skips the ETag check;
#: no If-None-Match support.
UPSERTS = ("https://docs.ifs.com/techdocs/25r1/060_development/022_user_interface/030_aurena_dev/"
           "140_resources/010_entity_upserts (same text in 23r2)")

#: docs.ifs.com "Supported Functionalities" of the OData Provider: $select, $expand (one-to-one
#: only), $orderby, $filter (all comparison operators except ``has``; all string functions;
#: no collection functions; no arithmetic on dates), $top/$skip, $count.
ODP_SUPPORTED = ("https://docs.ifs.com/techdocs/21r2/060_tailoring/300_extensibility/"
                 "101_odata_provider/1000_supported_functionalities/")

#: docs.ifs.com "Projections and OData Provider" 21r2: stale metadata cache -> HTTP 500
#: ``{"error":{"code":"MI_MODIFIED_ERROR","message":"Service metadata already modified."}}``; retry.
MI_MODIFIED_21R2 = ("https://docs.ifs.com/techdocs/21r2/050_development/050_development_tools/"
                    "022_user_interface/030_aurena_dev/140_resources/100_odata_provider/"
                    "200_projections_and_odp/")

#: The same page in 23r2: HTTP **503**, message "Cached Service metadata is outdated. Please try
#: again.", with a Retry-After header.
MI_MODIFIED_23R2 = ("https://docs.ifs.com/techdocs/23r2/040_tailoring/300_extensibility/"
                    "100_odata_provider/200_projections_and_odp/")

#: docs.ifs.com "IFS OData Provider" response codes: 404 unknown resource/key, 400 malformed
#: request, 405 wrong HTTP verb for an endpoint, 423 locked.
ODP_RESPONSE_CODES = "https://docs.ifs.com/techdocs/24r2/040_tailoring/300_extensibility/040_ifs_odata"

#: Projections are served under /main/ifsapplications/projection/v1 and, for integration
#: projections, /int/... (same page family, 23r2 "Services and OData Provider").
ODP_ENDPOINTS = ("https://docs.ifs.com/techdocs/23r2/040_tailoring/300_extensibility/"
                 "100_odata_provider/200_projections_and_odp/")

#: Novacura "Errors from IFS": ODP_MISSING_PRECONDITION (update without If-Match),
#: ODP_DESERIALIZATION_ERROR "Error while de-serializing contents." (bad JSON / content type),
#: ODP_RESOURCE_NOTFOUND, MI_MODIFIED_ERROR (500). Novacura "Update" page: ETag =
#: W/"<base64 of objid:objversion>".
NOVACURA_ERRORS = ("https://docs.novacura.com/flow-ifs-cloud-development-guidelines/"
                   "flow-development-with-odata/implementation/response-status-handling/errors-from-ifs")

#: IFS IAM client-credentials token endpoint and reply fields (sample expires_in 180,
#: refresh_expires_in 1800), via api-evangelist/ifs ``authentication/ifs-authentication.yml``.
IAM_CLIENTS = ("https://docs.ifs.com/techdocs/26r1/030_administration/010_security/040_iam_settings/"
               "035_iam_clients/020_authenticate_external_integration/")

#: Keycloak (IFS IAM is Keycloak-shaped) ``AuthenticationProcessor.handleClientAuthException``:
#: unknown client, disabled client or bad secret -> 401
#: ``{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}``.
#: Keycloak 20 answered ``unauthorized_client`` with the same description (keycloak/keycloak#16923).
KEYCLOAK_CLIENT_AUTH = "keycloak/keycloak services/.../AuthenticationProcessor.java; issue #16923"

#: Public IFS Cloud 21R1 ACCRUL model files: projection, entity and enumeration definitions.
MODEL = "prashweenet/demoproj2 accrul/model/accrul/"

#: Enum filters must be fully qualified ``IfsApp.<Projection>.<EnumType>'Value'``; plain strings
#: "will return an error"; IFS wants ``((...))`` around some filter expressions.
KNAKIT_ODATA = "knakit/ifs-mcp-server-local src/resources/ifs-common-odata-reference.md"

#: ``POST CustomerHandling.svc/CustomerInfoSet`` with Name, CreationDate, Country, CountryCode,
#: DefaultLanguage, PartyType "Customer", DefaultDomain true; 201 with the auto-assigned CustomerId;
#: GET by ``CustomerInfoSet(CustomerId='…')``; $filter contains(Name,'…').
KNAKIT_CUSTOMERS = "knakit/ifs-mcp-server-local src/resources/ifs-sales-customers.md"

#: Bound actions: ``<Set>(<keys>)/IfsApp.<Projection>.<EntityType>_<Action>``; virtual entity
#: sets keyed ``Objkey``; entity actions sent with If-Match (third-party client code, e.g.
#: ``RequestHandling.svc/SrvRequestVirtualSet(Objkey='…')/IfsApp.RequestHandling.SrvRequestVirtual_Finish``
#: and ``CustomerOrderSet(OrderNo='…')/IfsApp.CustomerOrderHandling.CustomerOrder_PrintResultKey``).
BOUND_ACTIONS = "third-party IFS client code found by find_string ')/IfsApp.'"

#: IFS docs on External Vouchers: a load (Load ID) groups transactions; Check marks erroneous
#: transactions with an error text (same Load Group Item stays Loaded); Create makes vouchers in the
#: hold table, marks the load Created and writes voucher number/type/date on the transactions;
#: without "Allow Partial Create" the create stops at the first error; load-type parameters decide
#: whether transactions must balance and the voucher date (load date or transaction date).
EXTERNAL_VOUCHERS = ("https://docs.ifs.com/ifsclouddocs/21r2/JournalEntry/ActivityCheckExternalVoucher.htm; "
                     "IFS 10 JournalEntry/ActivityCreateVoucher.htm; ActivityEnterExternalParam.htm")

#: Communication methods of a party: METHOD_ID E_MAIL / TELEPHONE / FAX with VALUE and DESCRIPTION.
COMM_METHODS = ("https://docs.ifs.com/techdocs/21r2/045_administration_aurena/240_integration/"
                "330_ifs_applications_business_components/070_ifs_financial_connector/appendixc.zip")

#: Business-rule errors read ``ORA-20110: <Entity>.<TAG>: <message>`` (third-party blog).
ORA_20110 = ("https://www.erp-control.com/blog/ifs-guides-8/ora-20110-in-ifs-cloud-data-migration-"
             "the-violated-business-rule-how-to-read-the-code-and-fix-it-4-real-cases-33")

#: Entities carry ``@odata.etag`` plus IFS fields ``luname`` and ``keyref``; the sample ETag
#: decodes to ``AACIMGAAFAABpIHAAA:20191031132400`` (objid:objversion); no idempotency, a retried
#: POST creates twice.
CONVENTIONS = "api-evangelist/ifs conventions/ifs-conventions.yml (summarising https://docs.ifs.com/techdocs/, OData Provider)"
