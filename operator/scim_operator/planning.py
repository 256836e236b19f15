"""A group's plan from the cluster cache: its members, their ScimUsers, its workspace and the
namespace labels handed to the pure ``rbac.plan_group``. One place, used by the group reconcile
and by the revocation fast path, so both compute the same RoleBindings."""

from __future__ import annotations

from typing import Any

from .cache import ClusterCache, GroupKey
from .rbac import Plan, plan_group
from .settings import OperatorSettings


def plan_cached_group(
    cache: ClusterCache, settings: OperatorSettings, key: GroupKey, group: dict[str, Any]
) -> tuple[list[dict[str, Any]], Plan]:
    """(members, plan) of ``group`` (the cached object of ``key``) as the cache sees it now."""
    namespace, name = key
    members = cache.group_members(key)
    users: dict[str, Any] = {}
    cached = cache.users
    for m in members:
        value = str(m.get("value"))
        user = cached.get((namespace, value))
        if user is not None:
            users[value] = user.get("spec") or {}  # read only (``plan_group`` changes nothing)
    plan = plan_group(
        namespace,
        name,
        {**dict(group.get("spec") or {}), "members": members},
        cache.workspace_spec(namespace),
        users,
        cache.namespaces,
        settings.allowed_cluster_roles,
        settings.allowed_roles,
    )
    return members, plan
