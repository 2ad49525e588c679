"""Employees in IFS Cloud: each employee of the payroll source as a customer or as a project resource (a
connection's choice, setting ``employee_sync``), found before it is created, never duplicated,
made inactive on termination (IFS keeps parties; nothing is deleted).

Matching, in order: the record this connection made for the employee before (its
``ExternalRef``, passed in as ``known_id``), then the e-mail address, then the employee number
(the source's employee code, else its employee id). A record matched by e-mail keeps an employee
number it already has.

* **customer** (``CustomerHandling.svc/CustomerInfoSet``, knakit/ifs-mcp-server-local
  ``src/resources/ifs-sales-customers.md``: create with Name, CreationDate, Country,
  CountryCode, DefaultLanguage, PartyType ``Customer``, DefaultDomain ``true``). The e-mail is a
  communication method of the party (``CommMethodArray``, method ``EMail``; filter
  ``CommMethodArray/any(c:c/MethodId eq IfsApp.CustomerHandling.CommMethodCode'EMail' and
  c/Value eq '<e-mail>')``, the enum fully qualified as IFS demands). Employee number and active
  flag are custom attributes (``Cf_EmployeeNo``, ``Cf_Active``; ASSUMPTION: a site adds them,
  IFS exposes custom attributes with a ``Cf_`` prefix). Changes are PATCHed with ``If-Match``
  (:meth:`~.client.IfsClient.patch`: a stale ETag is re-read once).
* **project resource** (``ProjectResourcesHandling.svc/ProjectResourceSet(Company,ResourceId)``,
  ASSUMPTION: no public source names the projection): per company, ResourceId = the employee
  number upper-cased (a reference of the employee id when it has no number that fits 20
  characters), Description, EmpNo, Email; the state changes only through the bound actions
  ``ProjectResource_SetInactive`` / ``_SetActive`` with ``If-Match``.

Both raise the client's errors (:class:`~connector_tasks.core.errors.RejectedError` with IFS's
text, :class:`~connector_tasks.core.errors.ConflictError` after a second 412, …).
"""
from __future__ import annotations

import datetime as dt

from connector_tasks.connectors.ifs_cloud.client import IfsClient, entity_path, enum_literal, literal
from connector_tasks.connectors.ifs_cloud.vouchers import reference_of
from connector_tasks.domain.model import EmployeeMaster

NAME_MAX = 100          # CustomerInfo.Name / ProjectResource.Description, Text(100)
RESOURCE_ID_MAX = 20    # ProjectResource.ResourceId, Text(20) upper case (emulator; ASSUMPTION)


def employee_number(master: EmployeeMaster) -> str:
    """The employee number IFS records: the source's employee code, else its employee id."""
    return master.code or master.key


def _changes(record: dict, wanted: dict) -> dict:
    return {k: v for k, v in wanted.items() if record.get(k) != v}


def sync_customer(client: IfsClient, master: EmployeeMaster, *, known_id: str | None = None,
                  country: str = "US", language: str = "en") -> tuple[str, str]:
    """Create or alter the customer of ``master``; ``(CustomerId, action)`` with action
    ``created``, ``altered`` or ``unchanged``. ``known_id``: the CustomerId this connection
    recorded for the employee. Inactive (``Cf_Active`` false) once the master has a
    deactivation date, active again after a rehire."""
    p = client.projections
    number, active = employee_number(master), master.deactivation_date is None
    record = None
    if known_id:
        record = client.get_entity(p.customers, p.customer_set, {"CustomerId": known_id}, missing_ok=True)
    if record is None and master.email:
        method = enum_literal(p.customers, "CommMethodCode", p.customer_email_method)
        found = client.get_set(p.customers, p.customer_set, top=1,
                               filter=f"{p.customer_comm_array}/any(c:c/MethodId eq {method} and "
                                      f"c/Value eq {literal(master.email)})")
        record = found[0] if found else None
    if record is None:
        found = client.get_set(p.customers, p.customer_set, top=1,
                               filter=f"{p.customer_employee_no} eq {literal(number)}")
        record = found[0] if found else None
    wanted = {"Name": master.name[:NAME_MAX], p.customer_active: active}
    if record is None:
        record = client.create(p.customers, p.customer_set, {
            **wanted, "CreationDate": (master.joining_date or dt.date.today()).isoformat(),
            "Country": country, "CountryCode": country, "DefaultLanguage": language, "PartyType": "Customer",
            "DefaultDomain": True, p.customer_employee_no: number})
        action = "created"
    else:
        if not record.get(p.customer_employee_no):
            wanted[p.customer_employee_no] = number
        changes = _changes(record, wanted)
        if changes:
            client.patch(p.customers, p.customer_set, {"CustomerId": record["CustomerId"]}, changes,
                         etag=record.get("@odata.etag"))
        action = "altered" if changes else "unchanged"
    cid = str(record["CustomerId"])
    if master.email and _add_email(client, cid, master.email) and action == "unchanged":
        action = "altered"
    return cid, action


def _add_email(client: IfsClient, customer_id: str, email: str) -> bool:
    """Add ``email`` as the customer's e-mail method unless it has it; True when added."""
    p = client.projections
    path = entity_path(p.customer_set, {"CustomerId": customer_id}, (p.customer_comm_array, None))
    methods = client.get_set(p.customers, path)
    if any(str(m.get("Value") or "").lower() == email.lower() for m in methods):
        return False
    client.create(p.customers, path,
                  {"MethodId": p.customer_email_method, "Value": email, "Description": "Work e-mail",
                   "MethodDefault": not methods})
    return True


def resource_id(master: EmployeeMaster) -> str:
    """The ResourceId of ``master``: its employee code upper-cased when it fits 20 characters,
    else :func:`~.vouchers.reference_of` its employee id (20 characters)."""
    code = (master.code or "").strip().upper()
    return code if code and len(code) <= RESOURCE_ID_MAX else reference_of(f"employee:{master.key}")


def sync_resource(client: IfsClient, master: EmployeeMaster, company: str, *,
                  known_id: str | None = None) -> tuple[str, str]:
    """Create or alter the project resource of ``master`` in ``company``; ``("<company>:<ResourceId>",
    action)``. ``known_id``: the ``company:ResourceId`` this connection recorded (used when it
    is in the same company). Set inactive (``SetInactive`` with If-Match) once the master has a
    deactivation date, active again after a rehire."""
    p = client.projections
    record = None
    if known_id and known_id.split(":", 1)[0] == company:
        record = client.get_entity(p.resources, p.resource_set,
                                   {"Company": company, "ResourceId": known_id.split(":", 1)[1]}, missing_ok=True)
    base = f"Company eq {literal(company)}"
    if record is None and master.email:
        found = client.get_set(p.resources, p.resource_set, top=1, filter=f"{base} and Email eq {literal(master.email)}")
        record = found[0] if found else None
    if record is None and master.code:
        found = client.get_set(p.resources, p.resource_set, top=1, filter=f"{base} and EmpNo eq {literal(master.code)}")
        record = found[0] if found else None
    if record is None:
        record = client.get_entity(p.resources, p.resource_set, {"Company": company, "ResourceId": resource_id(master)},
                                   missing_ok=True)
    wanted = {"Description": master.name[:NAME_MAX], "Email": master.email}
    action = "unchanged"
    if record is None:
        record = client.create(p.resources, p.resource_set, {
            "Company": company, "ResourceId": resource_id(master), **wanted,
            "EmpNo": (master.code or None) and master.code[:RESOURCE_ID_MAX]})
        action = "created"
    else:
        changes = _changes(record, {k: v for k, v in wanted.items() if v is not None})
        if changes:
            client.patch(p.resources, p.resource_set, {"Company": company, "ResourceId": record["ResourceId"]},
                         changes, etag=record.get("@odata.etag"))
            action = "altered"
    keys = {"Company": company, "ResourceId": record["ResourceId"]}
    state = "Inactive" if master.deactivation_date else "Active"
    if record.get("Objstate") != state:
        client.action(p.resources, p.resource_set, keys, p.resource_type,
                      "SetInactive" if state == "Inactive" else "SetActive", if_match=True)
        action = "altered" if action == "unchanged" else action
    return f"{company}:{record['ResourceId']}", action
