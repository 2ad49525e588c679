"""Generic OData request handling for every projection: resource paths, CRUD, upserts, ETags,
navigation into arrays and bound actions.

Resource paths (ODP_SUPPORTED, CONVENTIONS, BOUND_ACTIONS)::

    <Proj>.svc/                                   service document
    <Proj>.svc/$metadata                          CSDL (odata.metadata_xml)
    <Proj>.svc/<Set>                              GET (query options) / POST (create)
    <Proj>.svc/<Set>/$count                       plain-text count
    <Proj>.svc/<Set>(<keys>)                      GET / PATCH (update or upsert) / DELETE
    <Proj>.svc/<Set>(<keys>)/<Array>[(<keys>)]... the same one level down, any depth
    <Proj>.svc/<Set>(<keys>)/IfsApp.<Proj>.<Type>_<Action>   POST a bound action

Write rules:

* POST needs ``Create`` in the entity's crud, else 405 (ODP_RESPONSE_CODES: wrong verb -> 405).
  Missing required attributes -> ``ORA-20110 ... NULLVALUE``; a non-insertable attribute with a
  value -> ``ORA-20122 ... Field [X] is not allowed to be inserted`` (ASSUMPTION, ORA_20110 names
  ORA-20122 as IFS's locked-field error). 201 with the entity, ``ETag`` and ``Location``.
* PATCH with ``If-Match``: the tag must be current (else 412) or ``*``; a non-updatable
  attribute whose value changes -> ORA-20122 (ASSUMPTION). PATCH without ``If-Match`` = upsert
  (UPSERTS): insert (keys from the URL, body keys ignored, non-insertable attributes ignored) or
  update (non-updatable attributes ignored); with config ``upsert_without_if_match=False`` it is
  428 ``ODP_MISSING_PRECONDITION`` instead (NOVACURA_ERRORS, older releases). Success: 204 with
  the new ``ETag`` (OData default), or 200 with the entity when the request says
  ``Prefer: return=representation`` (ASSUMPTION: IFS follows the OData default here).
* DELETE needs ``Delete`` in crud and ``If-Match`` (ASSUMPTION: the reference marks DELETE without
  If-Match UNCONFIRMED; the emulator refuses it with 428 ``ODP_MISSING_PRECONDITION``) -> 204.
* Bound actions: an ``If-Match`` sent must be current (412 otherwise); actions declared
  ``etag_required`` refuse a missing one with 428 (ASSUMPTION; third-party code sends the ETag
  for entity actions and none for virtual ones). Value -> 200 ``{"@odata.context", "value"}``,
  void -> 204.
* PUT is not served: 405 (ASSUMPTION).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response

from sandbox.ifs_cloud import odata
from sandbox.ifs_cloud.odata import EntityType, ODataError, Projection
from sandbox.ifs_cloud.world import IfsWorld


@dataclass
class Ctx:
    """One request against one projection."""

    world: IfsWorld
    projection: Projection
    service_url: str          # absolute URL of <Proj>.svc
    registry: dict            # every projection by name
    user: str = "IFSAPP"      # the IFS user behind the bearer token (ASSUMPTION: client id, upper case)

    def etype(self, name: str) -> EntityType:
        return self.projection.types[name]


# ---------------------------------------------------------------------------------------- record access
def visible(ctx: Ctx, etype: EntityType, rec: dict) -> bool:
    return etype.where is None or etype.where(ctx, rec)


def all_records(ctx: Ctx, etype: EntityType) -> list[dict]:
    return [r for r in ctx.world.rows(etype.table) if visible(ctx, etype, r)]


def children_of(ctx: Ctx, owner_type: EntityType, owner: dict, array: odata.Array) -> list[dict]:
    target = ctx.etype(array.target)
    return [r for r in all_records(ctx, target)
            if all(r.get(c) == owner.get(p) for p, c in array.link)]


def _children_fn(ctx: Ctx):
    def children(owner: dict, array: odata.Array) -> list[dict]:
        return [r for r in all_records(ctx, ctx.etype(array.target))
                if all(r.get(c) == owner.get(p) for p, c in array.link)]
    return children


def find(ctx: Ctx, etype: EntityType, keyvals: dict) -> dict | None:
    rec = ctx.world.get(etype.table, tuple(keyvals[p.name] for p in etype.keys))
    return rec if rec is not None and visible(ctx, etype, rec) else None


# ---------------------------------------------------------------------------------------- path resolution
@dataclass
class Target:
    kind: str                     # collection | entity | missing | count | action
    etype: EntityType
    context: str                  # context path, e.g. VoucherSet(...)/VoucherRowArray
    set_name: str = ""
    records: list | None = None   # collection rows
    rec: dict | None = None       # entity
    keyvals: dict | None = None   # missing entity key
    parent: dict | None = None    # owner record of a navigation (for POST into an array)
    parent_type: EntityType | None = None
    array: odata.Array | None = None
    action: odata.Action | None = None
    collection: str = ""          # context path of the collection an entity belongs to


def resolve(ctx: Ctx, rest: str, method: str) -> Target:
    segments = [s for s in odata.split_path(rest) if s != ""]
    name, keys = odata.parse_segment(segments[0])
    type_name = ctx.projection.sets.get(name)
    if type_name is None:
        raise odata.not_found(f"Resource '{name}' not found in projection {ctx.projection.name}.")
    etype = ctx.etype(type_name)
    target = Target("collection", etype, name, set_name=name, records=all_records(ctx, etype))
    target = _select_key(ctx, target, keys, {}, method, last=len(segments) == 1)
    for i, seg in enumerate(segments[1:], start=1):
        last = i == len(segments) - 1
        name, keys = odata.parse_segment(seg)
        if target.kind == "collection" and name == "$count" and last and keys is None:
            target.kind = "count"
            continue
        if target.kind != "entity":
            raise odata.bad_uri(f"Segment '{seg}' cannot follow a collection.")
        owner_type, owner = target.etype, target.rec
        prefix = f"{ctx.projection.namespace}."
        if name.startswith(prefix):
            type_part, _, action_name = name[len(prefix):].partition("_")
            action = owner_type.actions.get(action_name)
            if not last or keys is not None or type_part != owner_type.name or action is None:
                raise odata.not_found(f"Operation '{name}' not found for type {owner_type.name}.")
            target = Target("action", owner_type, target.context, rec=owner, action=action)
            continue
        array = owner_type.arrays.get(name)
        if array is None:
            raise odata.not_found(f"Navigation '{name}' not found on {owner_type.name}.")
        child_type = ctx.etype(array.target)
        fixed = {c: owner.get(p) for p, c in array.link if child_type.prop(c) and child_type.prop(c).key}
        target = Target("collection", child_type, f"{target.context}/{name}",
                        set_name=target.set_name, records=children_of(ctx, owner_type, owner, array),
                        parent=owner, parent_type=owner_type, array=array)
        target = _select_key(ctx, target, keys, fixed, method, last)
    return target


def _select_key(ctx: Ctx, target: Target, keys: str | None, fixed: dict, method: str,
                last: bool) -> Target:
    if keys is None:
        return target
    keyvals = odata.parse_key(target.etype, keys, fixed)
    rec = find(ctx, target.etype, keyvals)
    if rec is not None and target.parent is not None and rec not in target.records:
        rec = None
    context = f"{target.context}({odata.keys_text(target.etype, keyvals)})"
    if rec is None:
        if last and method == "PATCH":
            return Target("missing", target.etype, context, set_name=target.set_name,
                          keyvals=keyvals, parent=target.parent, parent_type=target.parent_type,
                          array=target.array, collection=target.context)
        raise odata.not_found(f"No {target.etype.name} with key ({odata.keys_text(target.etype, keyvals)}).")
    return Target("entity", target.etype, context, set_name=target.set_name, rec=rec,
                  parent=target.parent, parent_type=target.parent_type, array=target.array,
                  collection=target.context)


# ---------------------------------------------------------------------------------------- dispatch
def dispatch(ctx: Ctx, method: str, rest: str, args, headers, raw: bytes) -> Response:
    rest = rest.strip("/")
    if rest == "":
        if method != "GET":
            raise _method_not_allowed(method, "the service document")
        return odata.json_response({
            "@odata.context": f"{ctx.service_url}/$metadata",
            "value": [{"name": s, "kind": "EntitySet", "url": s} for s in ctx.projection.sets]})
    if rest == "$metadata":
        if method != "GET":
            raise _method_not_allowed(method, "$metadata")
        return Response(odata.metadata_xml(ctx.projection), mimetype="application/xml",
                        headers={"OData-Version": "4.0"})
    target = resolve(ctx, rest, method)
    if target.kind == "count":
        if method != "GET":
            raise _method_not_allowed(method, "$count")
        page, _, _ = odata.query_collection(ctx.projection, target.etype, target.records,
                                            {"$filter": args.get("$filter")}, _children_fn(ctx))
        return Response(str(len(page)), mimetype="text/plain")
    if target.kind == "action":
        if method != "POST":
            raise _method_not_allowed(method, "an action")
        return _invoke(ctx, target, headers, raw)
    if target.kind == "collection":
        if method == "GET":
            return _get_collection(ctx, target, args)
        if method == "POST":
            return _create(ctx, target, headers, raw)
        raise _method_not_allowed(method, target.context)
    if method == "GET":
        if target.kind == "missing":
            raise odata.not_found()
        select = odata.select_option(target.etype, args)
        body = {"@odata.context": f"{ctx.service_url}/$metadata#{target.collection}/$entity",
                **odata.render(target.etype, target.rec, select)}
        return odata.json_response(body, headers={"ETag": odata.etag_of(target.rec)})
    if method == "PATCH":
        return _patch(ctx, target, headers, raw)
    if method == "DELETE":
        return _delete(ctx, target, headers)
    raise _method_not_allowed(method, target.context)


def _method_not_allowed(method: str, what: str) -> ODataError:
    """ODP_RESPONSE_CODES: an incorrect HTTP verb for an endpoint answers 405."""
    return ODataError(405, odata.METHOD_NOT_ALLOWED, f"The HTTP method '{method}' is not allowed for {what}.",
                      headers={"Allow": "GET, POST, PATCH, DELETE"})


def _get_collection(ctx: Ctx, target: Target, args) -> Response:
    page, total, select = odata.query_collection(ctx.projection, target.etype, target.records, args,
                                                 _children_fn(ctx))
    context = target.context if not select else f"{target.context}({','.join(select)})"
    body: dict = {"@odata.context": f"{ctx.service_url}/$metadata#{context}"}
    if odata.count_wanted(args):
        body["@odata.count"] = total
    body["value"] = [odata.render(target.etype, r, select) for r in page]
    return odata.json_response(body)


def _entity_response(ctx: Ctx, target: Target, rec: dict, status: int) -> Response:
    collection = target.context if target.kind == "collection" else target.collection
    body = {"@odata.context": f"{ctx.service_url}/$metadata#{collection}/$entity",
            **odata.render(target.etype, rec)}
    headers = {"ETag": odata.etag_of(rec)}
    if status == 201:
        path = target.context if target.kind == "missing" else \
            f"{target.context}({odata.keys_text(target.etype, rec)})"
        headers["Location"] = f"{ctx.service_url}/{path}"
    return odata.json_response(body, status, headers)


def _create(ctx: Ctx, target: Target, headers, raw: bytes) -> Response:
    etype = target.etype
    if "Create" not in etype.crud or etype.create is None:
        raise _method_not_allowed("POST", f"{target.context} (crud = {', '.join(sorted(etype.crud))})")
    body = odata.parse_body(raw, headers.get("Content-Type"))
    values = odata.typed_values(etype, body, ctx.projection)
    for prop in etype.props:
        if not prop.insertable and values.get(prop.name) is not None:
            raise _locked(etype, prop.name, "inserted")
    if target.parent is not None:                 # attributes implied by the parent of a navigation
        for p, c in target.array.link:
            values[c] = target.parent.get(p)
    rec = etype.create(ctx, values, target.parent)
    return _entity_response(ctx, target, rec, 201)


def _locked(etype: EntityType, attr: str, verb: str) -> ODataError:
    """ASSUMPTION: IFS's locked-field error (ORA-20122, named by ORA_20110)."""
    message = f"Field [{attr}] in {etype.luname} is not allowed to be {verb}."
    return ODataError(400, odata.NOT_UPDATABLE, f"ORA-20122: {etype.luname}.{verb.upper()}: {message}",
                      [{"code": "FIELD_NOT_" + ("UPDATABLE" if verb == "updated" else "INSERTABLE"),
                        "message": message}])


def check_required(etype: EntityType, values: dict) -> None:
    """``ORA-20110 ... NULLVALUE`` for a missing mandatory attribute (ASSUMPTION on the wording)."""
    for prop in etype.props:
        if prop.required and prop.insertable and values.get(prop.name) in (None, ""):
            raise odata.business_error(etype.luname, "NULLVALUE",
                                       f"Field [{prop.name}] is mandatory for {etype.luname} and requires a value.")


def _patch(ctx: Ctx, target: Target, headers, raw: bytes) -> Response:
    etype, world = target.etype, ctx.world
    if_match = headers.get("If-Match")
    body = odata.parse_body(raw, headers.get("Content-Type"))
    values = odata.typed_values(etype, body, ctx.projection)
    if "Update" not in etype.crud and target.kind == "entity":
        raise _method_not_allowed("PATCH", f"{target.context} (crud = {', '.join(sorted(etype.crud))})")
    if if_match is None and not world.config.get("upsert_without_if_match", True):
        raise ODataError(428, odata.MISSING_PRECONDITION,
                         "The request must be conditional: send If-Match with the entity's ETag.")
    if target.kind == "missing":
        if if_match is not None:                   # If-Match (even *) needs an existing entity
            raise odata.not_found(f"No {etype.name} with key ({odata.keys_text(etype, target.keyvals)}).")
        # UPSERTS: insert with keys from the URL; fails when a key is not insertable.
        if "Create" not in etype.crud or etype.create is None or any(not p.insertable for p in etype.keys):
            raise _method_not_allowed("PATCH (upsert insert)", f"{target.context}: the entity cannot be created")
        values = {k: v for k, v in values.items()
                  if etype.prop(k).insertable and not etype.prop(k).key}
        values.update(target.keyvals)
        if target.parent is not None:
            for p, c in target.array.link:
                values[c] = target.parent.get(p)
        world.counters["upserts"] += 1
        rec = etype.create(ctx, values, target.parent)
        return _entity_response(ctx, target, rec, 201)
    rec = target.rec
    if if_match is not None:
        if not odata.if_match_ok(if_match, rec):
            world.counters["precondition_failures"] += 1
            raise ODataError(412, odata.PRECONDITION_FAILED,
                             "The entity was modified by another user: the If-Match ETag is not the current one.",
                             headers={"ETag": odata.etag_of(rec)})
        for name, value in values.items():
            prop = etype.prop(name)
            if (prop.key or not prop.updatable) and value != rec.get(name):
                raise _locked(etype, name, "updated")
        changes = {k: v for k, v in values.items() if not etype.prop(k).key and etype.prop(k).updatable}
    else:
        world.counters["upserts"] += 1           # UPSERTS: non-updatable attributes are ignored
        changes = {k: v for k, v in values.items() if not etype.prop(k).key and etype.prop(k).updatable}
    if etype.update is None:
        raise _method_not_allowed("PATCH", target.context)
    etype.update(ctx, rec, changes)
    world.touch(rec)
    if "return=representation" in (headers.get("Prefer") or ""):
        return _entity_response(ctx, target, rec, 200)
    return Response(status=204, headers={"ETag": odata.etag_of(rec), "OData-Version": "4.0"})


def _delete(ctx: Ctx, target: Target, headers) -> Response:
    etype = target.etype
    if "Delete" not in etype.crud or etype.delete is None:
        raise _method_not_allowed("DELETE", f"{target.context} (crud = {', '.join(sorted(etype.crud))})")
    if_match = headers.get("If-Match")
    if if_match is None:
        raise ODataError(428, odata.MISSING_PRECONDITION,
                         "The request must be conditional: send If-Match with the entity's ETag.")
    if not odata.if_match_ok(if_match, target.rec):
        ctx.world.counters["precondition_failures"] += 1
        raise ODataError(412, odata.PRECONDITION_FAILED,
                         "The entity was modified by another user: the If-Match ETag is not the current one.")
    etype.delete(ctx, target.rec)
    return Response(status=204, headers={"OData-Version": "4.0"})


def _invoke(ctx: Ctx, target: Target, headers, raw: bytes) -> Response:
    action, rec = target.action, target.rec
    if_match = headers.get("If-Match")
    if if_match is None and action.etag_required:
        raise ODataError(428, odata.MISSING_PRECONDITION,
                         f"Action {action.name} needs If-Match with the entity's ETag.")
    if if_match is not None and not odata.if_match_ok(if_match, rec):
        ctx.world.counters["precondition_failures"] += 1
        raise ODataError(412, odata.PRECONDITION_FAILED,
                         "The entity was modified by another user: the If-Match ETag is not the current one.")
    params: dict[str, Any] = {}
    if raw and raw.strip():
        body = odata.parse_body(raw, headers.get("Content-Type"))
        for name, value in body.items():
            prop = next((p for p in action.params if p.name == name), None)
            if prop is None:
                raise odata.deserialization_error(f"action {action.name} has no parameter '{name}'")
            try:
                params[name] = odata.coerce(prop, value, ctx.projection)
            except ValueError as exc:
                raise odata.deserialization_error(str(exc)) from None
    value = action.handler(ctx, rec, params)
    if action.returns is None:
        return Response(status=204, headers={"OData-Version": "4.0"})
    return odata.json_response({"@odata.context": f"{ctx.service_url}/$metadata#{odata.EDM[action.returns]}",
                                "value": value})
