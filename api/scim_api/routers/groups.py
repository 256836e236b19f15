"""``/Groups``: list, get, create, replace, patch, delete."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..auth import authenticate
from ..directory import Table
from ..errors import ScimError
from ..observation import counting_members, observation
from ..protocol.filters import parse_filter
from ..protocol.group_patch import GroupState, apply_operations, check_member_cap
from ..protocol.listing import GROUP_FILTER_ATTRS, check_attributes, references, select
from ..protocol.patch import parse_patch_request
from ..protocol.resources import etag, group_resource, parse_group_body
from ..responses import empty_response, scim_response
from ..store import OFF_LOOP_MEMBERS, GroupStore
from .common import (
    base_url,
    index_lookup,
    json_body,
    list_response,
    not_modified,
    read_query,
    resource_id,
    state_of,
)

router = APIRouter()
_INDEXED = {"displayname": "displayName", "externalid": "externalId"}
_CASE_EXACT = frozenset({"id", "externalid", "members.value"})


def _store(request: Request) -> GroupStore:
    state = state_of(request)
    assert state.api is not None
    return GroupStore(state.api, state.directory, state.group_commits, state.noter)


def _members(
    request: Request, namespace: str, obj: dict[str, Any], wanted: bool
) -> list[dict[str, Any]] | None:
    """All members (inline and shards) when the response needs them; None skips the work."""
    return state_of(request).directory.group_members(namespace, obj) if wanted else None


def _shards(request: Request, namespace: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    return state_of(request).directory.shards_of(namespace, obj["metadata"]["name"])


async def _render(
    request: Request,
    namespace: str,
    obj: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The group as SCIM JSON. Its members are taken from the cache here, on the event loop;
    for a large group the rest (a dict and a URL per member, the projection and the encoding:
    1-3.5 s for 50,000 members at load 10) runs in a worker thread on that snapshot, so the
    loop keeps answering ``/healthz`` and other requests meanwhile."""
    query = read_query(request)
    shards = _shards(request, namespace, obj)
    members = _members(request, namespace, obj, query.wants("members"))
    base = base_url(request)
    head = {"ETag": etag(obj, shards), **(headers or {})}

    def build() -> Response:
        return scim_response(request, query.project(group_resource(obj, base, members, shards)), status, head)

    return await asyncio.to_thread(build) if len(members or ()) > OFF_LOOP_MEMBERS else build()


@router.get("/Groups")
async def list_groups(request: Request) -> Response:
    caller = await authenticate(request)
    query = read_query(request)
    ns = caller.namespace
    table = state_of(request).directory.group_table(ns)
    base = base_url(request)
    ids = table.ids
    if query.filter is not None:
        node = parse_filter(query.filter)
        check_attributes(node, GROUP_FILTER_ATTRS)
        on_members = references(node, "members")  # assemble members only if the filter looks at them

        def resource_of(gid: str) -> dict[str, Any] | None:
            obj = table.by_id.get(gid)
            return None if obj is None else group_resource(obj, base, _members(request, ns, obj, on_members))

        ids = select(node, table.ids, _lookup(table), resource_of, _CASE_EXACT)
    with_members = query.wants("members")
    directory = state_of(request).directory

    def render(gid: str) -> dict[str, Any]:
        obj = table.by_id[gid]
        return group_resource(obj, base, _members(request, ns, obj, with_members), _shards(request, ns, obj))

    def cost(gid: str) -> int:
        return directory.member_count(ns, table.by_id[gid])

    budget = state_of(request).settings.max_list_members
    return list_response(request, query, ids, render, cost if with_members else None, budget)


def _lookup(table: Table) -> Callable[[str, str], set[str] | None]:
    """The indexes a Groups filter can use; ``members.value eq`` (case-exact) from the
    member index, so finding a person's groups never assembles every group's members."""
    indexed = index_lookup(table, _INDEXED)

    def lookup(attr: str, value: str) -> set[str] | None:
        if attr == "members.value":
            return set(table.member_of.get(value, ()))
        return indexed(attr, value)

    return lookup


@router.get("/Groups/{gid}")
async def get_group(request: Request, gid: str) -> Response:
    caller = await authenticate(request)
    gid = resource_id(gid, "Group")
    obj = state_of(request).directory.group_table(caller.namespace).by_id.get(gid)
    if obj is None:  # the cache may lag another replica: read the group and its shards fresh
        obj, _shards_read = await _store(request).fetch_all(caller.namespace, gid)
    unchanged = not_modified(request, etag(obj, _shards(request, caller.namespace, obj)))
    return unchanged or await _render(request, caller.namespace, obj)


@router.post("/Groups")
async def create_group(request: Request) -> Response:
    caller = await authenticate(request)
    group = parse_group_body(await json_body(request))
    check_member_cap(None, group, state_of(request).settings.max_group_members)
    observation(request).members_changed(None, group)
    obj = await _store(request).create(caller.namespace, group)
    location = f"{base_url(request)}/Groups/{obj['metadata']['name']}"
    return await _render(request, caller.namespace, obj, 201, {"Location": location})


@router.put("/Groups/{gid}")
async def replace_group(request: Request, gid: str) -> Response:
    caller = await authenticate(request)
    gid = resource_id(gid, "Group")
    wanted = parse_group_body(await json_body(request))
    cap = state_of(request).settings.max_group_members

    def replace(current: GroupState) -> GroupState:
        return check_member_cap(current, wanted, cap)

    obj, _changed = await _store(request).update(
        caller.namespace, gid, counting_members(request, replace), request.headers.get("if-match")
    )
    return await _render(request, caller.namespace, obj)


@router.patch("/Groups/{gid}")
async def patch_group(request: Request, gid: str) -> Response:
    caller = await authenticate(request)
    gid = resource_id(gid, "Group")
    ops = parse_patch_request(await json_body(request), gid)
    observation(request).patch_operations = len(ops)
    cap = state_of(request).settings.max_group_members

    def change(current: GroupState) -> GroupState:
        return check_member_cap(current, apply_operations(current, ops, gid), cap)

    obj, _changed = await _store(request).update(
        caller.namespace, gid, counting_members(request, change), request.headers.get("if-match")
    )
    if request.query_params.get("attributes") or request.query_params.get("excludedAttributes"):
        return await _render(request, caller.namespace, obj)
    return empty_response(204, {"ETag": etag(obj, _shards(request, caller.namespace, obj))})


@router.delete("/Groups/{gid}")
async def delete_group(request: Request, gid: str) -> Response:
    caller = await authenticate(request)
    gid = resource_id(gid, "Group")
    cached = state_of(request).directory.group_table(caller.namespace).by_id.get(gid)
    if cached is not None:  # the audit line counts the members the group took with it
        observation(request).members_removed = state_of(request).directory.member_count(
            caller.namespace, cached
        )
    await _store(request).delete(caller.namespace, gid, request.headers.get("if-match"))
    return empty_response(204)


@router.api_route("/Groups", methods=["PUT", "PATCH", "DELETE"], include_in_schema=False)
async def groups_collection_write(request: Request) -> Response:
    await authenticate(request)
    raise ScimError(405, "Use /Groups/{id} to change or delete a group", headers={"Allow": "GET, POST"})
