"""Parties an employee sync writes: customers and project resources.

``CustomerHandling.svc/CustomerInfoSet(CustomerId)`` (KNAKIT_CUSTOMERS): create with Name,
CreationDate, Country, CountryCode, DefaultLanguage, PartyType ("Customer") and DefaultDomain
(true) -> 201 with the auto-assigned CustomerId (a CustomerId sent is kept); read by key; search
with $filter (``contains(Name,'…')``, ``Country eq 'SE'`` — plain strings, so these are Text
here); update with If-Match (or upsert, router). A CustomerId that exists already ->
``ORA-20112 CustomerInfo.EXIST`` (ASSUMPTION; ORA_20110 names ORA-20112 as the key error).

How an employee is matched:

* e-mail: IFS keeps e-mail addresses as communication methods of the party (COMM_METHODS:
  METHOD_ID ``E_MAIL`` with a VALUE), here the array ``CommMethodArray`` of
  ``CustomerInfoCommMethod(CustomerId, CommId)`` with ``MethodId`` of enum ``CommMethodCode``
  (ASSUMPTION: array, type and member names; ``EMail`` for DB value E_MAIL). Find by e-mail::

      CustomerInfoSet?$filter=CommMethodArray/any(c:c/Value eq 'ann@example.com')

  (ASSUMPTION: lambda support, see odata.FilterParser) or read a customer's
  ``CustomerInfoSet(CustomerId='…')/CommMethodArray``; add one with POST to that array.
* employee number and active flag: ASSUMPTION — IFS has no such attributes on CustomerInfo; a
  site would add *custom attributes*, which IFS projections expose with a ``Cf_`` prefix. Here:
  ``Cf_EmployeeNo`` (Text) and ``Cf_Active`` (Boolean, default true); deactivate = PATCH
  ``{"Cf_Active": false}`` with If-Match.

``ProjectResourcesHandling.svc/ProjectResourceSet(Company, ResourceId)`` — ASSUMPTION from end to
end (no public IFS source names a project-resource projection): Description, EmpNo, Email and
``Objstate`` of enum ``ProjectResourceState`` (Active / Inactive). Like IFS state machines, the
state is not written by PATCH but by bound actions ``ProjectResource_SetInactive`` and
``ProjectResource_SetActive`` (with If-Match, as for entity actions, BOUND_ACTIONS).
"""
from __future__ import annotations

from decimal import Decimal

from sandbox.ifs_cloud import odata
from sandbox.ifs_cloud.odata import BOOLEAN, DATE, ENUM, NUMBER, Action, Array, EntityType, Prop, Projection
from sandbox.ifs_cloud.router import Ctx, check_required


# ---------------------------------------------------------------------------------------- customers
def _customer_create(ctx: Ctx, values: dict, parent) -> dict:
    world = ctx.world
    check_required(ctx.etype("CustomerInfo"), values)
    cid = values.get("CustomerId")
    if cid and world.get("customer", (cid,)) is not None:
        raise odata.business_error("CustomerInfo", "EXIST", f"Customer {cid} already exists.", ora=20112)
    if not cid:
        cid = str(world.next_number(("customer",), 1001))
        while world.get("customer", (cid,)) is not None:
            cid = str(world.next_number(("customer",), 1001))
    rec = {p.name: values.get(p.name) for p in ctx.etype("CustomerInfo").props}
    rec.update({"CustomerId": cid,
                "CustomerCategory": values.get("CustomerCategory") or "Customer",
                "OneTime": bool(values.get("OneTime")), "B2bCustomer": bool(values.get("B2bCustomer")),
                "Cf_Active": True if values.get("Cf_Active") is None else values["Cf_Active"]})
    return world.put("customer", (cid,), rec)


def _customer_update(ctx: Ctx, rec: dict, changes: dict) -> None:
    rec.update(changes)


def _customer_delete(ctx: Ctx, rec: dict) -> None:
    for key in [k for k, r in ctx.world.table("customer_comm").items() if r["CustomerId"] == rec["CustomerId"]]:
        ctx.world.remove("customer_comm", key)
    ctx.world.remove("customer", (rec["CustomerId"],))


def _comm_create(ctx: Ctx, values: dict, parent: dict | None) -> dict:
    world = ctx.world
    if parent is None:
        raise odata.bad_uri("Communication methods are created through CustomerInfoSet(CustomerId='…')/CommMethodArray.")
    check_required(ctx.etype("CustomerInfoCommMethod"), values)
    existing = [r for r in world.rows("customer_comm") if r["CustomerId"] == parent["CustomerId"]]
    comm_id = Decimal(max([int(r["CommId"]) for r in existing] + [0]) + 1)
    rec = {p.name: values.get(p.name) for p in ctx.etype("CustomerInfoCommMethod").props}
    rec.update({"CustomerId": parent["CustomerId"], "CommId": comm_id,
                "MethodDefault": bool(values.get("MethodDefault"))})
    world.touch(parent)
    return world.put("customer_comm", (parent["CustomerId"], comm_id), rec)


def _comm_update(ctx: Ctx, rec: dict, changes: dict) -> None:
    rec.update(changes)


def _comm_delete(ctx: Ctx, rec: dict) -> None:
    ctx.world.remove("customer_comm", (rec["CustomerId"], rec["CommId"]))


def customer_projection() -> Projection:
    customer = EntityType(
        name="CustomerInfo", table="customer", luname="CustomerInfo",
        props=[Prop("CustomerId", key=True, max_length=20, uppercase=True),
               Prop("Name", required=True, max_length=100),
               Prop("CreationDate", DATE, required=True),
               Prop("Country", required=True, max_length=2, uppercase=True),
               Prop("CountryCode", required=True, max_length=2, uppercase=True),
               Prop("DefaultLanguage", required=True, max_length=5),
               Prop("PartyType", required=True, max_length=20),
               Prop("DefaultDomain", BOOLEAN, required=True),
               Prop("CustomerCategory", max_length=20), Prop("OneTime", BOOLEAN),
               Prop("B2bCustomer", BOOLEAN), Prop("AssociationNo", max_length=50),
               Prop("CorporateForm", max_length=8), Prop("IdentifierRefValidation", max_length=20),
               Prop("Cf_EmployeeNo", max_length=50),            # ASSUMPTION: custom attribute
               Prop("Cf_Active", BOOLEAN)],                     # ASSUMPTION: custom attribute
        arrays={"CommMethodArray": Array("CommMethodArray", "CustomerInfoCommMethod",
                                         (("CustomerId", "CustomerId"),))},
        create=_customer_create, update=_customer_update, delete=_customer_delete)
    comm = EntityType(
        name="CustomerInfoCommMethod", table="customer_comm", luname="CustomerInfoCommMethod",
        props=[Prop("CustomerId", key=True, max_length=20, uppercase=True),
               Prop("CommId", NUMBER, key=True, insertable=False, updatable=False),
               Prop("MethodId", ENUM, enum="CommMethodCode", required=True),
               Prop("Value", required=True, max_length=200), Prop("Description", max_length=100),
               Prop("MethodDefault", BOOLEAN)],
        create=_comm_create, update=_comm_update, delete=_comm_delete)
    return Projection(name="CustomerHandling", source="knakit/ifs-mcp-server-local src/resources/ifs-sales-customers.md",
                      sets={"CustomerInfoSet": "CustomerInfo"},
                      types={"CustomerInfo": customer, "CustomerInfoCommMethod": comm},
                      enums={"CommMethodCode": ["Phone", "Mobile", "EMail", "Fax", "Www"]})


# ---------------------------------------------------------------------------------------- project resources
def _resource_create(ctx: Ctx, values: dict, parent) -> dict:
    world = ctx.world
    check_required(ctx.etype("ProjectResource"), values)
    key = (values["Company"], values["ResourceId"])
    if world.company(key[0]) is None:
        raise odata.business_error("CompanyFinance", "NOTEXIST", f"Company {key[0]!r} does not exist.", ora=20111)
    if world.get("project_resource", key) is not None:
        raise odata.business_error("ProjectResource", "EXIST",
                                   f"Resource {key[1]} already exists in company {key[0]}.", ora=20112)
    rec = {p.name: values.get(p.name) for p in ctx.etype("ProjectResource").props}
    rec["Objstate"] = "Active"
    return world.put("project_resource", key, rec)


def _resource_update(ctx: Ctx, rec: dict, changes: dict) -> None:
    rec.update(changes)


def _set_state(state: str):
    def handler(ctx: Ctx, rec: dict, params: dict):
        if rec["Objstate"] == state:
            raise odata.business_error("ProjectResource", "ILLEGALSTATE",
                                       f"Resource {rec['ResourceId']} in company {rec['Company']} is already {state}.")
        rec["Objstate"] = state
        ctx.world.touch(rec)
        return None
    return handler


def resource_projection() -> Projection:
    resource = EntityType(
        name="ProjectResource", table="project_resource", luname="ProjectResource",
        crud=frozenset({"Create", "Read", "Update"}),
        props=[Prop("Company", key=True, required=True, max_length=20, uppercase=True),
               Prop("ResourceId", key=True, required=True, max_length=20, uppercase=True),
               Prop("Description", required=True, max_length=100),
               Prop("EmpNo", max_length=20), Prop("Email", max_length=200),
               Prop("Objstate", ENUM, enum="ProjectResourceState", insertable=False, updatable=False)],
        actions={"SetInactive": Action("SetInactive", _set_state("Inactive"), etag_required=True),
                 "SetActive": Action("SetActive", _set_state("Active"), etag_required=True)},
        create=_resource_create, update=_resource_update)
    return Projection(name="ProjectResourcesHandling", source="ASSUMPTION",
                      sets={"ProjectResourceSet": "ProjectResource"},
                      types={"ProjectResource": resource},
                      enums={"ProjectResourceState": ["Active", "Inactive"]})


def projections() -> list[Projection]:
    return [customer_projection(), resource_projection()]
