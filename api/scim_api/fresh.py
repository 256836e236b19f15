"""Quorum reads of a single user, for the decisions a lagging cache must not make.

Another replica (or an administrator) may have changed a user a moment ago: a deactivation
must never be answered "already done" and an ``If-Match`` never answered 412 from this
replica's cache alone. The store that writes users calls these before either answer.
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c

from .directory import Directory
from .errors import ScimError, not_found
from .store import _NETWORK_ERRORS, _kube_error, check_if_match

Obj = dict[str, Any]


async def fresh_user(api: client.ApiClient, directory: Directory, namespace: str, uid: str) -> Obj:
    """The ScimUser as the API server holds it now, also fed into the cache; 404 when gone.

    A list by name rather than a get: the API's ServiceAccount may list users, not get them,
    and a list without a resourceVersion is a quorum read all the same."""
    try:
        result = await client.CustomObjectsApi(api).list_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.USER_PLURAL, field_selector=f"metadata.name={uid}"
        )
    except (ApiException, *_NETWORK_ERRORS) as exc:
        raise _kube_error(exc) from exc
    items = [o for o in result.get("items") or [] if not o["metadata"].get("deletionTimestamp")]
    if not items:
        raise not_found(f"User {uid!r} not found")
    obj: Obj = items[0]
    obj.setdefault("kind", c.USER_KIND)
    directory.upsert(c.USER_PLURAL, obj)
    return obj


async def user_if_match(
    api: client.ApiClient, directory: Directory, namespace: str, obj: Obj, if_match: str | None
) -> Obj:
    """``obj`` when ``If-Match`` holds for it; else the user read fresh, and 412 only if the
    fresh version does not match either."""
    try:
        check_if_match(obj, if_match)
        return obj
    except ScimError:
        fresh = await fresh_user(api, directory, namespace, obj["metadata"]["name"])
        check_if_match(fresh, if_match)
        return fresh


async def user_with_active(
    api: client.ApiClient, directory: Directory, namespace: str, obj: Obj, active: bool
) -> Obj | None:
    """None when ``active`` must still be written; the user (fresh) when the API server
    confirms it already holds ``active``. The cache alone never says "nothing to do"."""
    if bool((obj.get("spec") or {}).get("active", True)) != active:
        return None
    fresh = await fresh_user(api, directory, namespace, obj["metadata"]["name"])
    return fresh if bool((fresh.get("spec") or {}).get("active", True)) == active else None
