"""``/Users``: a read-only directory of people who already exist in the workspace.

IdPs match their users against it (``filter=userName eq "..."``); ``active`` may be set.
``POST /Users`` never creates anyone: users are created by platform admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from starlette.requests import Request
from starlette.responses import Response

from scim_core import constants as c

from ..errors import ScimError, not_found
from ..fresh import user_if_match, user_with_active
from ..protocol.filters import parse_filter
from ..protocol.group_patch import parse_patch_request
from ..protocol.listing import USER_FILTER_ATTRS, check_attributes, select
from ..protocol.resources import etag, user_resource
from ..protocol.user_patch import active_after_patch, active_after_put
from ..responses import empty_response, scim_response
from ..store import _NETWORK_ERRORS, _kube_error
from .common import (
    Auth,
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
_INDEXED = {"username": "userName", "externalid": "externalId"}
_CASE_EXACT = frozenset({"id", "externalid"})


def _groups_of(request: Request, namespace: str, uid: str) -> list[tuple[str, str]]:
    table = state_of(request).directory.group_table(namespace)
    return [  # a shard may be seen before its group or after it is gone: only live groups
        (gid, table.by_id[gid]["spec"].get("displayName", ""))
        for gid in sorted(table.member_of.get(uid, ()))
        if gid in table.by_id
    ]


def _resource(request: Request, namespace: str, obj: dict[str, Any], with_groups: bool) -> dict[str, Any]:
    groups = _groups_of(request, namespace, obj["metadata"]["name"]) if with_groups else None
    return user_resource(obj, base_url(request), groups)


@router.get("/Users")
async def list_users(request: Request, caller: Auth) -> Response:
    query = read_query(request)
    table = state_of(request).directory.user_table(caller.namespace)
    base = base_url(request)
    ids = table.ids
    if query.filter is not None:
        node = parse_filter(query.filter)
        check_attributes(node, USER_FILTER_ATTRS)

        def resource_of(uid: str) -> dict[str, Any] | None:
            obj = table.by_id.get(uid)
            return None if obj is None else user_resource(obj, base)

        ids = select(node, table.ids, index_lookup(table, _INDEXED), resource_of, _CASE_EXACT)
    with_groups = query.wants("groups")
    return list_response(
        request, query, ids, lambda uid: _resource(request, caller.namespace, table.by_id[uid], with_groups)
    )


def _get(request: Request, namespace: str, uid: str) -> dict[str, Any]:
    obj = state_of(request).directory.user_table(namespace).by_id.get(uid)
    if obj is None:
        raise not_found(f"User {uid!r} not found")
    return obj


def _render(request: Request, namespace: str, obj: dict[str, Any]) -> Response:
    query = read_query(request)
    body = query.project(_resource(request, namespace, obj, query.wants("groups")))
    return scim_response(request, body, headers={"ETag": etag(obj)})


@router.get("/Users/{uid}")
async def get_user(request: Request, uid: str, caller: Auth) -> Response:
    uid = resource_id(uid, "User")
    obj = _get(request, caller.namespace, uid)
    return not_modified(request, etag(obj)) or _render(request, caller.namespace, obj)


async def _if_match(request: Request, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    state = state_of(request)
    assert state.api is not None
    return await user_if_match(state.api, state.directory, namespace, obj, request.headers.get("if-match"))


async def _set_active(request: Request, namespace: str, obj: dict[str, Any], active: bool) -> dict[str, Any]:
    state = state_of(request)
    assert state.api is not None
    unchanged = await user_with_active(state.api, state.directory, namespace, obj, active)
    if unchanged is not None:
        return unchanged
    api = client.CustomObjectsApi(state.api)
    patch = [
        # one field, set to an absolute value: no resourceVersion guard (the operator's status
        # writes move it all the time); If-Match was checked against the generation above
        {"op": "add", "path": "/spec/active", "value": active},
    ]
    try:
        updated: dict[str, Any] = await api.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.USER_PLURAL, obj["metadata"]["name"], patch,
            field_manager=c.API_FIELD_MANAGER, _content_type="application/json-patch+json",
        )  # fmt: skip
    except ApiException as exc:
        if exc.status == 404:
            raise not_found("User not found") from exc
        if exc.status in (409, 422):
            raise ScimError(409, "The user changed meanwhile; retry the request") from exc
        raise _kube_error(exc) from exc
    except _NETWORK_ERRORS as exc:
        raise _kube_error(exc) from exc
    state.directory.upsert(c.USER_PLURAL, updated)
    return updated


@router.patch("/Users/{uid}")
async def patch_user(request: Request, uid: str, caller: Auth) -> Response:
    uid = resource_id(uid, "User")
    ops = parse_patch_request(await json_body(request), uid)
    obj = await _if_match(request, caller.namespace, _get(request, caller.namespace, uid))
    active = active_after_patch(user_resource(obj, base_url(request)), ops)
    obj = await _set_active(request, caller.namespace, obj, active)
    if request.query_params.get("attributes") or request.query_params.get("excludedAttributes"):
        return _render(request, caller.namespace, obj)
    return empty_response(204, {"ETag": etag(obj)})


@router.put("/Users/{uid}")
async def replace_user(request: Request, uid: str, caller: Auth) -> Response:
    uid = resource_id(uid, "User")
    body = await json_body(request)
    obj = await _if_match(request, caller.namespace, _get(request, caller.namespace, uid))
    active = active_after_put(user_resource(obj, base_url(request)), body)
    obj = await _set_active(request, caller.namespace, obj, active)
    return _render(request, caller.namespace, obj)


@router.post("/Users")
async def create_user(request: Request, caller: Auth) -> Response:
    raise ScimError(
        403,
        "Users are not created over SCIM: a user must already exist in this workspace "
        "(created by a platform administrator) before an identity provider can match it.",
    )


@router.delete("/Users/{uid}")
async def delete_user(request: Request, uid: str, caller: Auth) -> Response:
    uid = resource_id(uid, "User")
    _get(request, caller.namespace, uid)
    raise ScimError(403, "Users are not deleted over SCIM; set active to false to revoke access")
