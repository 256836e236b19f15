"""I/O side of group reconciliation: read the cluster cache, ask ``rbac.plan_group`` what
should exist, and make the cluster match (create, update, delete) with one field manager.
Only objects carrying our labels are ever touched, and only by the leader: every write is
preceded by a leadership check (a replica that lost the Lease mid-reconcile stops there)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c
from scim_core.cached_status import status_of
from scim_core.kube import ignoring, patch_status
from scim_core.timestamps import now_utc

from . import metrics
from .cache import ClusterCache, GroupKey
from .conditions import same_conditions, set_condition
from .events import EventPoster
from .leader import Leadership, NotLeader, refused
from .planning import plan_cached_group
from .rbac import UNRESOLVED_SAMPLE, Plan, binding_differs, needs_finalizer, revokes_anyone
from .settings import OperatorSettings
from .settling import Settling, settle
from .workqueue import Result

log = logging.getLogger(__name__)
#: When the API server refused a binding (no ``bind`` on that role): look again this much later.
REJECTED_RECHECK_SECONDS = 30.0
#: When the group changed under the finalizer patch: look again this much later (the change
#: queues it too; this is the safety net).
FINALIZER_RECHECK_SECONDS = 1.0


class GroupSync:
    def __init__(
        self,
        api: client.ApiClient,
        settings: OperatorSettings,
        cache: ClusterCache,
        leader: Leadership,
        hold: Callable[[], Awaitable[None]] | None = None,
        events: EventPoster | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.cache = cache
        self.leader = leader
        #: awaited before each reconcile: while access is being revoked (``Revoker``), its
        #: writes go first and the reconciles' status writes wait (offboarding's critical path)
        self.hold = hold
        #: per group: (managed RoleBindings, unresolved members), for the gauges
        self._tally: dict[GroupKey, tuple[int, int]] = {}
        #: Events about binding writes, posted without holding the worker (the next group's
        #: binding, e.g. the rest of an offboarding, is not kept waiting), bounded and shared
        #: with the Revoker's (the composition root passes one)
        self.events = events if events is not None else EventPoster(api, leader=leader)
        #: groups whose grants wait for their changes to settle (``settling``); only those
        self._settling: dict[GroupKey, Settling] = {}

    def _count(self, key: GroupKey, bindings: int, unresolved: int) -> None:
        old_b, old_u = self._tally.pop(key, (0, 0))
        if bindings or unresolved:
            self._tally[key] = (bindings, unresolved)
        if bindings != old_b:
            metrics.MANAGED_BINDINGS.inc(bindings - old_b)
        if unresolved != old_u:
            metrics.UNRESOLVED_MEMBERS.inc(unresolved - old_u)

    async def reconcile(self, key: GroupKey) -> Result:
        """One group. A standby, or a cache not yet complete, drops the key: the takeover (or
        the cache's first full list) queues every group again. A leader whose renewal is
        overdue parks it: the renewal of the same term queues it again."""
        if not (self.cache.ready and self.leader.is_leader()):
            return refused(self.leader) if self.cache.ready else None
        started = time.monotonic()
        try:
            result = await self._reconcile(key)
            metrics.RECONCILED_OK.inc()
            return result
        except NotLeader:
            return refused(self.leader)
        except Exception:
            metrics.RECONCILE_FAILED.inc()
            raise
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)

    async def _reconcile(self, key: GroupKey) -> Result:
        if self.hold is not None:
            await self.hold()
        namespace, name = key
        group = self.cache.groups.get(key)
        existing = dict(self.cache.bindings.get(key, {}))
        if group is None or group["metadata"].get("deletionTimestamp"):
            for ns, bname in existing:
                await self._delete(ns, bname, None)
            if group is not None:
                await self._finalize(group)
            self._settling.pop(key, None)
            self._count(key, 0, 0)
            return None
        members, plan = plan_cached_group(self.cache, self.settings, key, group)
        uid = group["metadata"]["uid"]
        event_body = {
            "apiVersion": c.API_VERSION,
            "kind": c.GROUP_KIND,
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
        }
        desired_keys = {(b.namespace, b.name) for b in plan.bindings}
        writes = [
            (binding, manifest, live)
            for binding in plan.bindings
            for manifest in (binding.manifest(namespace, name, uid),)
            for live in (existing.get((binding.namespace, binding.name)),)
            if live is None or binding_differs(live, manifest)
        ]
        stale = sorted(existing.keys() - desired_keys)
        # without a binding to write, the status alone (computed once, reused below)
        status_write = None if writes or stale else self._status_patch(group, plan, False, len(members), [])
        pending = bool(writes or stale or (status_write is not None and status_write[0]))
        if wait := self._grants_wait(key, group, plan, existing, pending):
            return wait
        has_finalizer = c.FINALIZER in (group["metadata"].get("finalizers") or [])
        if (
            not has_finalizer
            and needs_finalizer(namespace, desired_keys | existing.keys())
            and not await self._add_finalizer(group)
        ):
            return FINALIZER_RECHECK_SECONDS  # no binding elsewhere before the finalizer is on
        changed = False
        rejected: list[str] = []
        for binding, manifest, live in writes:
            if live is not None and live.get("roleRef") != manifest["roleRef"]:
                await self._delete(binding.namespace, binding.name, None)  # roleRef is immutable
            try:
                await self._apply(manifest)
            except ApiException as exc:
                if exc.status not in (403, 422):
                    raise
                # The API server refused (e.g. no `bind` on that role): report, retry later.
                rejected.append(
                    f"{binding.namespace}/{binding.name} ({binding.role_kind} {binding.role_name})"
                )
                continue
            changed = True
            action = "Created" if live is None else "Updated"
            metrics.WRITES.labels(action.lower()).inc()
            self.events.post(
                event_body, "Normal", f"RoleBinding{action}",
                f"{action} RoleBinding {binding.namespace}/{binding.name} ({binding.role_kind} "
                f"{binding.role_name}, {len(binding.subjects)} subjects)",
            )  # fmt: skip
        for ns, bname in stale:
            await self._delete(ns, bname, event_body)
            changed = True
        if has_finalizer and not needs_finalizer(namespace, desired_keys):
            await self._remove_finalizer(group)  # nothing left that the garbage collector misses
        if plan.refusals:
            metrics.REFUSED_MAPPINGS.inc(len(plan.refusals))
        self._count(key, len(desired_keys), len(plan.resolution.unresolved))
        if status_write is None or changed or rejected:
            status_write = self._status_patch(group, plan, changed, len(members), rejected)
        await self._write_status(group, status_write, event_body)
        return REJECTED_RECHECK_SECONDS if rejected else None

    def _grants_wait(
        self,
        key: GroupKey,
        group: Mapping[str, Any],
        plan: Plan,
        live: Mapping[tuple[str, str], Any],
        pending: bool,
    ) -> float:
        """Seconds before this reconcile writes (0: now). A reconcile with something to write
        (bindings or only its status) and no subject to take away waits until the group's
        changes settle (``settling``): one binding write and one status write for an IdP's
        burst of PATCHes, not one of each per PATCH. Only a group whose spec changed since its
        status was written waits (``observedGeneration`` behind): a user activated, a mapping
        changed, or a cold start over statuses of an older shape write at once."""
        generation = group["metadata"].get("generation")
        if (
            not pending  # checked first: a no-op reconcile (a cold start's) decodes no status here
            or status_of(group).get("observedGeneration") == generation  # its spec did not change
            or revokes_anyone(plan, live)
        ):
            self._settling.pop(key, None)
            return 0.0
        wait, state = settle(
            self._settling.get(key),
            hash((generation, tuple(plan.bindings))),
            time.monotonic(),
            self.settings.grant_settle_seconds,
            self.settings.grant_settle_longest_seconds,
        )
        if state is None:
            self._settling.pop(key, None)
        else:
            self._settling[key] = state
            metrics.GRANTS_SETTLING.inc()
        return wait

    # ------------------------------------------------------------------ writes

    async def _apply(self, manifest: dict[str, Any]) -> None:
        rbac = client.RbacAuthorizationV1Api(self.api)
        meta = manifest["metadata"]
        self.leader.check()
        await rbac.patch_namespaced_role_binding(
            meta["name"], meta["namespace"], manifest, field_manager=c.OPERATOR_FIELD_MANAGER, force=True,
            _content_type="application/apply-patch+yaml",
        )  # fmt: skip

    async def _delete(self, namespace: str, name: str, event_body: dict[str, Any] | None) -> None:
        rbac = client.RbacAuthorizationV1Api(self.api)
        self.leader.check()
        with ignoring():
            await rbac.delete_namespaced_role_binding(name, namespace)
        metrics.WRITES.labels("deleted").inc()
        if event_body is not None:
            message = f"Deleted RoleBinding {namespace}/{name}"
            self.events.post(event_body, "Normal", "RoleBindingDeleted", message)

    async def _patch_group(self, group: Mapping[str, Any], ops: list[dict[str, Any]]) -> bool:
        """Apply a JSON patch; False when the group is gone or changed meanwhile (the next
        event retries)."""
        md = group["metadata"]
        self.leader.check()
        try:
            await client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
                c.GROUP, c.VERSION, md["namespace"], c.GROUP_PLURAL, md["name"], ops,
                _content_type="application/json-patch+json",
            )  # fmt: skip
        except ApiException as exc:
            if exc.status not in (404, 409, 422):
                raise
            return False
        return True

    async def _add_finalizer(self, group: Mapping[str, Any]) -> bool:
        """Before a binding goes to another namespace (out of the garbage collector's reach):
        then deleting the group waits until the operator has removed it."""
        md = group["metadata"]
        finalizers = list(md.get("finalizers") or [])
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": md["resourceVersion"]}
        ]
        ops.append({"op": "add", "path": "/metadata/finalizers", "value": [*finalizers, c.FINALIZER]})
        return await self._patch_group(group, ops)

    async def _remove_finalizer(self, group: Mapping[str, Any]) -> None:
        finalizers = list(group["metadata"].get("finalizers") or [])
        ops = [
            {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {
                "op": "replace",
                "path": "/metadata/finalizers",
                "value": [f for f in finalizers if f != c.FINALIZER],
            },
        ]
        await self._patch_group(group, ops)

    async def _finalize(self, group: Mapping[str, Any]) -> None:
        md = group["metadata"]
        finalizers = list(md.get("finalizers") or [])
        if c.FINALIZER not in finalizers:
            return
        # the cache may not know every binding yet: ask the API server by label too
        rbac = client.RbacAuthorizationV1Api(self.api)
        selector = ",".join(
            (
                f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE}",
                f"{c.GROUP_LABEL}={md['name']}",
                f"{c.WORKSPACE_LABEL}={md['namespace']}",
            )
        )
        for rb in (await rbac.list_role_binding_for_all_namespaces(label_selector=selector)).items:
            await self._delete(rb.metadata.namespace, rb.metadata.name, None)
        await self._remove_finalizer(group)

    def _status_patch(
        self, group: Mapping[str, Any], plan: Plan, changed: bool, member_count: int, rejected: list[str]
    ) -> tuple[dict[str, Any], tuple[str, str] | None]:
        """The status patch this reconcile makes (empty: the status is right), and the Warning
        (reason, message) to post with it, if any."""
        status = status_of(group)  # packed in the cache (``scim_core.cached_status``)
        generation = group["metadata"].get("generation")
        res = plan.resolution
        if rejected:
            synced, reason = False, "BindingRejected"
            message = f"The API server refused RoleBindings: {', '.join(rejected)}"
        elif plan.refusals:
            refused = ", ".join(f"{r.mapping} ({r.role_kind} {r.role_name})" for r in plan.refusals)
            synced, reason = False, "RoleNotAllowed"
            message = f"Refused role mappings outside the allow-list: {refused}"
        elif self.cache.workspace_spec(group["metadata"]["namespace"]) is None:
            synced, reason, message = False, "NoWorkspace", "No ScimWorkspace in this namespace"
        else:
            synced, reason = True, "Synced"
            message = f"{len(plan.bindings)} RoleBindings for {len(res.subjects)} subjects"
        conditions = set_condition(status.get("conditions"), "Synced", synced, reason, message, generation)
        ready_msg = (
            message
            if not res.unresolved
            else f"{message}; {len(res.unresolved)} members match no ScimUser yet"
        )
        conditions = set_condition(conditions, "Ready", synced, reason, ready_msg, generation)
        previous_reason = next(
            (x.get("reason") for x in status.get("conditions") or [] if x.get("type") == "Synced"), None
        )
        warning = None
        if not synced and reason in ("RoleNotAllowed", "BindingRejected") and previous_reason != reason:
            warning = (reason, message)
        desired = {
            "observedGeneration": generation,
            "memberCount": member_count,
            "resolvedMembers": len(res.subjects),
            "unresolvedMembers": len(res.unresolved),
            "unresolvedSample": res.unresolved[:UNRESOLVED_SAMPLE],
            "boundSubjects": len(res.subjects) if plan.bindings else 0,
            "roleBindings": sorted(f"{b.namespace}/{b.name}" for b in plan.bindings),
        }
        patch = {k: v for k, v in desired.items() if status.get(k) != v}
        if not same_conditions(status.get("conditions"), conditions):
            patch["conditions"] = conditions
        if changed or "lastSyncTime" not in status:
            patch["lastSyncTime"] = now_utc()
        return patch, warning

    async def _write_status(
        self,
        group: Mapping[str, Any],
        computed: tuple[dict[str, Any], tuple[str, str] | None],
        event_body: dict[str, Any],
    ) -> None:
        patch, warning = computed
        if warning is not None:
            self.events.post(event_body, "Warning", *warning)
        if not patch:
            return
        self.leader.check()
        md = group["metadata"]
        await patch_status(self.api, c.GROUP_PLURAL, md["namespace"], md["name"], patch)
