"""ScimUser status: a Ready condition (KEP-1623) and how many groups list the user.
Written only when it changes, so a restart writes nothing; only by the leader."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kubernetes_asyncio import client

from scim_core import constants as c
from scim_core.cached_status import status_of
from scim_core.kube import patch_status

from .cache import ClusterCache
from .conditions import same_conditions, set_condition
from .leader import Leadership, NotLeader, refused
from .workqueue import Result

UserKey = tuple[str, str]


class UserSync:
    def __init__(
        self,
        api: client.ApiClient,
        cache: ClusterCache,
        leader: Leadership,
        hold: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.api = api
        self.cache = cache
        self.leader = leader
        self.hold = hold  # as GroupSync's: a revocation's patches go first

    async def reconcile(self, key: UserKey) -> Result:
        """One user; dropped on a standby or before the cache is complete (both re-queue all),
        parked by a leader whose renewal is overdue (as ``GroupSync.reconcile``)."""
        if not (self.cache.ready and self.leader.is_leader()):
            return refused(self.leader) if self.cache.ready else None
        if self.hold is not None:
            await self.hold()
        user = self.cache.users.get(key)
        if user is None or user["metadata"].get("deletionTimestamp"):
            return None
        md = user["metadata"]
        status = status_of(user)  # packed in the cache (``scim_core.cached_status``)
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
            return None
        try:
            self.leader.check()
        except NotLeader:
            return refused(self.leader)
        await patch_status(self.api, c.USER_PLURAL, key[0], key[1], patch)
        return None
