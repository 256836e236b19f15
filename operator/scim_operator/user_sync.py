"""ScimUser status: a Ready condition (KEP-1623) and how many groups list the user.
Written only when it changes, so a restart writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c

from .cache import ClusterCache
from .conditions import same_conditions, set_condition

UserKey = tuple[str, str]


@dataclass
class UserSync:
    api: client.ApiClient
    cache: ClusterCache
    retry_later: Callable[[UserKey, float], None] = lambda key, delay: None
    active: Callable[[], bool] = lambda: True

    async def reconcile(self, key: UserKey) -> None:
        if not (self.cache.ready and self.active()):
            self.retry_later(key, 1.0)
            return
        user = self.cache.users.get(key)
        if user is None or user["metadata"].get("deletionTimestamp"):
            return
        md = user["metadata"]
        status = dict(user.get("status") or {})
        active = bool((user.get("spec") or {}).get("active", True))
        groups = self.cache.groups_of_user(key)
        reason, message = (
            ("Active", f"Bound through {groups} groups' role mappings") if active
            else ("Inactive", "Deactivated: removed from every RoleBinding")
        )  # fmt: skip
        conditions = set_condition(
            status.get("conditions"), "Ready", True, reason, message, md.get("generation")
        )
        patch: dict[str, object] = {}
        if status.get("observedGeneration") != md.get("generation"):
            patch["observedGeneration"] = md.get("generation")
        if status.get("groups") != groups:
            patch["groups"] = groups
        if not same_conditions(status.get("conditions"), conditions):
            patch["conditions"] = conditions
        if not patch:
            return
        try:
            await client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
                c.GROUP, c.VERSION, key[0], c.USER_PLURAL, key[1], {"status": patch},
                _content_type="application/merge-patch+json",
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != 404:
                raise
