"""``/Users``: a read-only directory of people who already exist in the workspace.

IdPs match their users against it (``filter=userName eq "..."``); ``active`` may be set
(PATCH, or PUT of the whole user as Okta sends it: see ``protocol/user_patch.py``).
``POST /Users`` creates nobody unless the workspace opts in for listed domains
(``spec.users.provisioning.allowedDomains``, see ``protocol/user_create.py``): users are
created by platform admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..auth import authenticate
from ..errors import ScimError
from ..observation import observation
from ..protocol import user_create
from ..protocol.filters import parse_filter
from ..protocol.listing import USER_FILTER_ATTRS, check_attributes, select
from ..protocol.patch import parse_patch_request
from ..protocol.resources import etag, user_resource
from ..protocol.user_patch import active_after_patch, active_after_put
from ..responses import empty_response, scim_response
from ..user_store import UserStore
from . import common

router = APIRouter()
_INDEXED = {"username": "userName", "externalid": "externalId"}
_CASE_EXACT = frozenset({"id", "externalid"})


def _groups_of(request: Request, namespace: str, uid: str) -> list[tuple[str, str]]:
    table = common.state_of(request).directory.group_table(namespace)
    return [
        (gid, table.by_id[gid]["spec"].get("displayName", "")) for gid in sorted(table.member_of.get(uid, ()))
    ]


def _resource(request: Request, namespace: str, obj: dict[str, Any], with_groups: bool) -> dict[str, Any]:
    groups = _groups_of(request, namespace, obj["metadata"]["name"]) if with_groups else None
    return user_resource(obj, common.base_url(request), groups)


@router.get("/Users")
async def list_users(request: Request) -> Response:
    caller = await authenticate(request)
    query = common.read_query(request)
    table = common.state_of(request).directory.user_table(caller.namespace)
    base = common.base_url(request)
    ids = table.ids
    if query.filter is not None:
        node = parse_filter(query.filter)
        check_attributes(node, USER_FILTER_ATTRS)

        def resource_of(uid: str) -> dict[str, Any] | None:
            obj = table.by_id.get(uid)
            return None if obj is None else user_resource(obj, base)

        ids = select(node, table.ids, common.index_lookup(table, _INDEXED), resource_of, _CASE_EXACT)
    with_groups = query.wants("groups")
    return common.list_response(
        request, query, ids, lambda uid: _resource(request, caller.namespace, table.by_id[uid], with_groups)
    )


def _users(request: Request) -> UserStore:
    state = common.state_of(request)
    assert state.api is not None
    return UserStore(state.api, state.directory, state.noter)


def _render(request: Request, namespace: str, obj: dict[str, Any]) -> Response:
    query = common.read_query(request)
    body = query.project(_resource(request, namespace, obj, query.wants("groups")))
    return scim_response(request, body, headers={"ETag": etag(obj)})


@router.get("/Users/{uid}")
async def get_user(request: Request, uid: str) -> Response:
    caller = await authenticate(request)
    uid = common.resource_id(uid, "User")
    obj = await _users(request).current(caller.namespace, uid)  # the cache may lag
    return common.not_modified(request, etag(obj)) or _render(request, caller.namespace, obj)


@router.patch("/Users/{uid}")
async def patch_user(request: Request, uid: str) -> Response:
    caller = await authenticate(request)
    uid = common.resource_id(uid, "User")
    ops = parse_patch_request(await common.json_body(request), uid)
    observation(request).patch_operations = len(ops)
    base = common.base_url(request)
    obj = await _users(request).set_active(
        caller.namespace, uid, lambda user: active_after_patch(user_resource(user, base), ops),
        request.headers.get("if-match"),
    )  # fmt: skip
    if request.query_params.get("attributes") or request.query_params.get("excludedAttributes"):
        return _render(request, caller.namespace, obj)
    return empty_response(204, {"ETag": etag(obj)})


@router.put("/Users/{uid}")
async def replace_user(request: Request, uid: str) -> Response:
    """Okta AIW sends the whole user: only ``active`` is applied; the answer is the stored
    user, so the IdP sees which attributes the workspace keeps."""
    caller = await authenticate(request)
    uid = common.resource_id(uid, "User")
    body = await common.json_body(request)
    base = common.base_url(request)
    obj = await _users(request).set_active(
        caller.namespace, uid, lambda user: active_after_put(user_resource(user, base), body),
        request.headers.get("if-match"),
    )  # fmt: skip
    return _render(request, caller.namespace, obj)


@router.post("/Users")
async def create_user(request: Request) -> Response:
    caller = await authenticate(request)
    workspace = common.state_of(request).directory.workspaces.get(
        (caller.workspace.namespace, caller.workspace.name)
    )
    domains = user_create.allowed_domains((workspace or {}).get("spec"))
    spec = user_create.user_spec(await common.json_body(request), domains)
    obj = await _users(request).create(caller.namespace, spec)
    body = _resource(request, caller.namespace, obj, with_groups=False)
    return scim_response(
        request, body, status=201, headers={"ETag": etag(obj), "Location": body["meta"]["location"]}
    )


@router.delete("/Users/{uid}")
async def delete_user(request: Request, uid: str) -> Response:
    caller = await authenticate(request)
    uid = common.resource_id(uid, "User")
    await _users(request).current(caller.namespace, uid)
    raise ScimError(403, "Users are not deleted over SCIM; set active to false to revoke access")
