"""``/Groups``: list, get, create, replace, patch, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..errors import ScimError
from ..protocol import attributes as attrs
from ..protocol.filters import matches, parse_filter
from ..protocol.group_patch import GroupState, apply_operations, parse_patch_request
from ..protocol.listing import GROUP_FILTER_ATTRS, candidates, check_attributes, paging, references
from ..protocol.resources import etag, group_resource, parse_group_body
from ..responses import empty_response, scim_response
from ..store import GroupStore
from .common import Auth, base_url, json_body, resource_id, state_of

router = APIRouter()
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_CASE_EXACT = frozenset({"id", "externalid", "members.value"})


def _store(request: Request) -> GroupStore:
    state = state_of(request)
    assert state.api is not None
    return GroupStore(state.api, state.directory)


def _members(
    request: Request, namespace: str, obj: dict[str, Any], wanted: bool
) -> list[dict[str, Any]] | None:
    """All members (inline and shards) when the response needs them; None skips the work."""
    return state_of(request).directory.group_members(namespace, obj) if wanted else None


def _shards(request: Request, namespace: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    return state_of(request).directory.shards_of(namespace, obj["metadata"]["name"])


def _render(
    request: Request,
    namespace: str,
    obj: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    a = attrs.parse_attribute_list(request.query_params.get("attributes"))
    x = attrs.parse_attribute_list(request.query_params.get("excludedAttributes"))
    members = _members(request, namespace, obj, attrs.wants_members(a, x))
    shards = _shards(request, namespace, obj)
    body = attrs.project(group_resource(obj, base_url(request), members, shards), a, x)
    return scim_response(request, body, status, {"ETag": etag(obj, shards), **(headers or {})})


@router.get("/Groups")
async def list_groups(request: Request, caller: Auth) -> Response:
    state = state_of(request)
    q = request.query_params
    a = attrs.parse_attribute_list(q.get("attributes"))
    x = attrs.parse_attribute_list(q.get("excludedAttributes"))
    start, count = paging(q.get("startIndex"), q.get("count"), state.settings.max_results)
    table = state.directory.group_table(caller.namespace)
    base = base_url(request)
    ids: list[str]
    flt_text = q.get("filter")
    if flt_text is not None:
        node = parse_filter(flt_text)
        check_attributes(node, GROUP_FILTER_ATTRS)
        on_members = references(node, "members")

        def lookup(attr: str, value: str) -> set[str] | None:
            if attr == "id":
                return {value} if value in table.by_id else set()
            if attr in ("displayname", "externalid"):
                return table.lookup("displayName" if attr == "displayname" else "externalId", value)
            return None

        def keep(gid: str) -> bool:
            obj = table.by_id.get(gid)
            if obj is None:
                return False
            resource = group_resource(obj, base, _members(request, caller.namespace, obj, on_members))
            return matches(node, resource, _CASE_EXACT)

        found = candidates(node, lookup)
        ids = [gid for gid in (sorted(found) if found is not None else table.ids) if keep(gid)]
    else:
        ids = table.ids
    page = ids[start - 1 : start - 1 + count] if count else []
    with_members = attrs.wants_members(a, x)
    resources = [
        attrs.project(
            group_resource(
                obj,
                base,
                _members(request, caller.namespace, obj, with_members),
                _shards(request, caller.namespace, obj),
            ),
            a,
            x,
        )
        for obj in (table.by_id[g] for g in page)
    ]
    body = {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(ids),
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
    return scim_response(request, body)


@router.get("/Groups/{gid}")
async def get_group(request: Request, gid: str, caller: Auth) -> Response:
    gid = resource_id(gid, "Group")
    obj = state_of(request).directory.group_table(caller.namespace).by_id.get(gid)
    if obj is None:
        obj = await _store(request).fetch(caller.namespace, gid)  # cache may lag another replica
    tag = etag(obj, _shards(request, caller.namespace, obj))
    inm = request.headers.get("if-none-match")
    if inm and (inm.strip() == "*" or tag in {t.strip() for t in inm.split(",")}):
        return empty_response(304, {"ETag": tag})
    return _render(request, caller.namespace, obj)


@router.post("/Groups")
async def create_group(request: Request, caller: Auth) -> Response:
    group = parse_group_body(await json_body(request))
    obj = await _store(request).create(caller.namespace, group)
    location = f"{base_url(request)}/Groups/{obj['metadata']['name']}"
    return _render(request, caller.namespace, obj, 201, {"Location": location})


@router.put("/Groups/{gid}")
async def replace_group(request: Request, gid: str, caller: Auth) -> Response:
    gid = resource_id(gid, "Group")
    wanted = parse_group_body(await json_body(request))

    def replace(_: GroupState) -> GroupState:
        return wanted

    obj, _changed = await _store(request).update(
        caller.namespace, gid, replace, request.headers.get("if-match")
    )
    return _render(request, caller.namespace, obj)


@router.patch("/Groups/{gid}")
async def patch_group(request: Request, gid: str, caller: Auth) -> Response:
    gid = resource_id(gid, "Group")
    ops = parse_patch_request(await json_body(request), gid)

    def change(current: GroupState) -> GroupState:
        return apply_operations(current, ops, gid)

    obj, _changed = await _store(request).update(
        caller.namespace, gid, change, request.headers.get("if-match")
    )
    if request.query_params.get("attributes") or request.query_params.get("excludedAttributes"):
        return _render(request, caller.namespace, obj)
    return empty_response(204, {"ETag": etag(obj, _shards(request, caller.namespace, obj))})


@router.delete("/Groups/{gid}")
async def delete_group(request: Request, gid: str, caller: Auth) -> Response:
    gid = resource_id(gid, "Group")
    await _store(request).delete(caller.namespace, gid, request.headers.get("if-match"))
    return empty_response(204)


@router.api_route("/Groups", methods=["PUT", "PATCH", "DELETE"], include_in_schema=False)
async def groups_collection_write(request: Request, caller: Auth) -> Response:
    raise ScimError(405, "Use /Groups/{id} to change or delete a group", headers={"Allow": "GET, POST"})
