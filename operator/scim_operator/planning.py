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
    for m in members:
        user = cache.users.get((namespace, str(m.get("value"))))
        if user is not None:
            users[str(m["value"])] = dict(user.get("spec") or {})
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
