"""I/O side of group reconciliation: read the operator's indexes, ask ``rbac.plan_group``
what should exist, and make the cluster match (create, update, delete) with one field
manager. Only objects carrying our labels are ever touched."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c

from . import metrics
from .conditions import now_iso, same_conditions, set_condition
from .events import post_event
from .rbac import UNRESOLVED_SAMPLE, Plan, binding_differs, plan_group
from .settings import OperatorSettings

log = logging.getLogger(__name__)

GroupKey = tuple[str, str]  # (namespace, name)


@dataclass
class Indexes:
    """Live Kopf indexes (populated before any handler runs)."""

    workspaces: Any = None  # namespace -> Store[spec]
    users: Any = None  # (namespace, name) -> Store[spec]
    groups: Any = None  # (namespace, name) -> Store[group essentials]
    namespaces: Any = None  # namespace -> Store[labels]
    bindings: Any = None  # (workspace namespace, group) -> Store[binding essentials]
    shards: Any = None  # (namespace, group) -> Store[member lists of its ScimMemberShards]
    ready: bool = False


def _one(store: Any) -> Any:
    for value in store or ():
        return value
    return None


@dataclass
class GroupSync:
    api: client.ApiClient
    settings: OperatorSettings
    idx: Indexes = field(default_factory=Indexes)
    retry_later: Callable[[GroupKey], None] = lambda key: None

    def workspace_spec(self, namespace: str) -> Mapping[str, Any] | None:
        value = _one(self.idx.workspaces.get(namespace))
        return value if isinstance(value, Mapping) else None

    def users_of(self, namespace: str, members: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
        """The ScimUsers the members name (only those: a lookup per member, not a scan)."""
        out: dict[str, Mapping[str, Any]] = {}
        for m in members:
            spec = _one(self.idx.users.get((namespace, m.get("value"))))
            if spec is not None:
                out[str(m["value"])] = spec
        return out

    def namespace_labels(self) -> dict[str, Mapping[str, str]]:
        return {ns: (_one(store) or {}) for ns, store in self.idx.namespaces.items()}

    async def reconcile(self, key: GroupKey) -> None:
        started = time.monotonic()
        try:
            await self._reconcile(key)
            metrics.RECONCILES.labels("ok").inc()
        except Exception:
            metrics.RECONCILES.labels("error").inc()
            raise
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)

    async def _reconcile(self, key: GroupKey) -> None:
        namespace, name = key
        group = _one(self.idx.groups.get(key))
        existing = {(b["namespace"], b["name"]): b for b in self.idx.bindings.get(key, ())}
        if group is None or group.get("deleting"):
            for ns, bname in existing:
                await self._delete(ns, bname, None)
            return
        spec = dict(group["spec"])
        extra = [m for members in self.idx.shards.get(key, ()) for m in members]
        if extra:
            spec["members"] = list(spec.get("members") or []) + extra
        members = list(spec.get("members") or [])
        plan = plan_group(
            namespace,
            name,
            spec,
            self.workspace_spec(namespace),
            self.users_of(namespace, members),
            self.namespace_labels(),
            self.settings.allowed_cluster_roles,
            self.settings.allowed_roles,
        )
        event_body = {
            "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND,
            "metadata": {"name": name, "namespace": namespace, "uid": group["uid"]},
        }  # fmt: skip
        changed = False
        rejected: list[str] = []
        desired_keys = set()
        for binding in plan.bindings:
            desired_keys.add((binding.namespace, binding.name))
            manifest = binding.manifest(namespace, name, group["uid"])
            live = existing.get((binding.namespace, binding.name))
            if live is not None and not binding_differs(live, manifest):
                continue
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
                self.retry_later((namespace, name))
                continue
            changed = True
            action = "Created" if live is None else "Updated"
            metrics.WRITES.labels(action.lower()).inc()
            await post_event(
                self.api, event_body, "Normal", f"RoleBinding{action}",
                f"{action} RoleBinding {binding.namespace}/{binding.name} ({binding.role_kind} "
                f"{binding.role_name}, {len(binding.subjects)} subjects)",
            )  # fmt: skip
        for ns, bname in existing.keys() - desired_keys:
            await self._delete(ns, bname, event_body)
            changed = True
        metrics.REFUSED_MAPPINGS.inc(len(plan.refusals))
        await self._write_status(group, plan, changed, event_body, len(spec.get("members") or []), rejected)

    async def _apply(self, manifest: dict[str, Any]) -> None:
        rbac = client.RbacAuthorizationV1Api(self.api)
        meta = manifest["metadata"]
        await rbac.patch_namespaced_role_binding(
            meta["name"], meta["namespace"], manifest, field_manager=c.OPERATOR_FIELD_MANAGER, force=True,
            _content_type="application/apply-patch+yaml",
        )  # fmt: skip

    async def _delete(self, namespace: str, name: str, event_body: dict[str, Any] | None) -> None:
        rbac = client.RbacAuthorizationV1Api(self.api)
        try:
            await rbac.delete_namespaced_role_binding(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
        metrics.WRITES.labels("deleted").inc()
        if event_body is not None:
            await post_event(
                self.api,
                event_body,
                "Normal",
                "RoleBindingDeleted",
                f"Deleted RoleBinding {namespace}/{name}",
            )

    async def _write_status(
        self,
        group: Mapping[str, Any],
        plan: Plan,
        changed: bool,
        event_body: dict[str, Any],
        member_count: int,
        rejected: list[str],
    ) -> None:
        status: dict[str, Any] = group.get("status") or {}
        generation = group.get("generation")
        res = plan.resolution
        if rejected:
            synced, reason = False, "BindingRejected"
            message = f"The API server refused RoleBindings: {', '.join(rejected)}"
        elif plan.refusals:
            refused = ", ".join(f"{r.mapping} ({r.role_kind} {r.role_name})" for r in plan.refusals)
            synced, reason, message = (
                False,
                "RoleNotAllowed",
                f"Refused role mappings outside the allow-list: {refused}",
            )
        elif self.workspace_spec(group["namespace"]) is None:
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
        if not synced and reason in ("RoleNotAllowed", "BindingRejected") and previous_reason != reason:
            await post_event(self.api, event_body, "Warning", reason, message)
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
            patch["lastSyncTime"] = now_iso()
        if not patch:
            return
        try:
            await client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
                c.GROUP, c.VERSION, group["namespace"], c.GROUP_PLURAL, group["name"], {"status": patch},
                _content_type="application/merge-patch+json",
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != 404:
                raise
