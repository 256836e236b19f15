"""Writes to the Kubernetes API for ScimGroups and ScimUsers.

Every write is conditional, so nothing is lost when requests race (Okta sends them in
parallel) or when several API replicas run: membership changes go out as JSON Patch
operations guarded by ``test`` ops on the values they touch, whole replacements carry the
resourceVersion read. On a conflict the request is re-applied to the fresh object.

The cache may lag what another replica wrote, and a guard only protects the objects a write
touches, so nothing is decided from the cache alone: every group change is planned against
the group's shard set as a quorum read finds it, and a "nothing to do" or an ``If-Match``
mismatch is confirmed against the API server (group and shards read fresh) before it is
answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c
from scim_core.members import pack_members, unpacked

from .directory import Directory, resource_version
from .errors import ScimError, bad_request, not_found, uniqueness
from .group_commit import Change, GroupCommit
from .kube_errors import NETWORK_ERRORS as _NETWORK_ERRORS
from .kube_errors import kube_error as _kube_error
from .kube_errors import reason as _reason
from .layout import Slot, SlotWrite, plan_members
from .protocol.group_patch import GroupState
from .protocol.ids import new_group_id
from .protocol.preconditions import check_if_match, if_match_holds
from .protocol.resources import LAST_MODIFIED, group_spec, group_state
from .write_noter import WriteNoter, note

log = logging.getLogger(__name__)

DISPLAY_NAME_HASH_LABEL = f"{c.GROUP}/display-name-hash"
#: Writes of one update before it gives up with 409. Another API replica's group commit can
#: write the same group round after round: the pause after each conflict (random, growing)
#: lets the two interleave instead of one starving.
MAX_ATTEMPTS = 16
#: Member objects written at once by one update: enough to overlap the API server's work
#: on the objects of a spread-out change, few enough not to flood it.
WRITE_CONCURRENCY = 4
#: Above this many stored members, an update's pure work runs in a worker thread (the stored
#: objects are replaced on every change, never mutated, so the thread reads a stable snapshot).
OFF_LOOP_MEMBERS = 5000

Obj = dict[str, Any]
T = TypeVar("T")
#: What a group write answers: the stored ScimGroup and whether anything changed.
Updated = tuple[Obj, bool]


def display_name_key(name: str) -> str:
    """Label value for case-insensitive uniqueness checks (labels cap at 63 chars)."""
    return hashlib.sha256(name.casefold().encode()).hexdigest()[:40]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


#: Ask a list for object metadata only (names, versions), not the members.
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


class GroupStore:
    """Group reads and writes for one request; ``commits`` (shared by the process) coalesces
    concurrent changes to one group into one write per round (:mod:`.group_commit`)."""

    def __init__(
        self,
        api: client.ApiClient,
        directory: Directory,
        commits: GroupCommit[Updated] | None = None,
        noter: WriteNoter | None = None,
    ) -> None:
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._directory = directory
        #: names each write for the operator while a watch is down (``write_noter``)
        self._noter = noter
        self._commits: GroupCommit[Updated] = commits if commits is not None else GroupCommit()

    # -------------------------------------------------------------------- reads

    async def fetch(self, namespace: str, gid: str) -> Obj:
        """The object straight from the API server (fresh, for retries)."""
        try:
            obj: Obj = await self._custom.get_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, gid
            )
        except ApiException as exc:
            if exc.status in (400, 404):
                raise not_found(f"Group {gid!r} not found") from exc
            raise _kube_error(exc) from exc
        except _NETWORK_ERRORS as exc:
            raise _kube_error(exc) from exc
        if obj.get("kind") != c.GROUP_KIND or obj["metadata"].get("deletionTimestamp"):
            raise not_found(f"Group {gid!r} not found")
        self._directory.upsert(c.GROUP_PLURAL, obj)
        return obj

    async def current(self, namespace: str, gid: str) -> Obj:
        """From the cache, or from the API server when the cache has not seen it yet
        (another replica may have created it a moment ago)."""
        obj = self._directory.group_table(namespace).by_id.get(gid)
        return obj if obj is not None else await self.fetch(namespace, gid)

    def _name_taken(self, namespace: str, name: str, own_id: str | None) -> bool:
        ids = self._directory.group_table(namespace).lookup("displayName", name)
        return bool(ids - {own_id} if own_id else ids)

    async def _others_with_name(self, namespace: str, name: str, own_id: str) -> list[str]:
        """Authoritative check (a quorum list from the API server, not the cache)."""
        try:
            result = await self._custom.list_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL,
                label_selector=f"{DISPLAY_NAME_HASH_LABEL}={display_name_key(name)}",
            )  # fmt: skip
        except (ApiException, *_NETWORK_ERRORS) as exc:
            raise _kube_error(exc) from exc
        return [
            o["metadata"]["name"]
            for o in result.get("items", [])
            if o["metadata"]["name"] != own_id
            and not o["metadata"].get("deletionTimestamp")
            and (o["spec"].get("displayName") or "").casefold() == name.casefold()
        ]

    # -------------------------------------------------------------------- writes

    async def create(self, namespace: str, state: GroupState) -> Obj:
        """Create a group whose displayName is free, even against racing creators.

        Create, then look (a quorum list) for a rival with the same name: whoever sees a
        rival withdraws and tries again after a random pause whose range doubles each time
        (racers that collided once spread out: with a fixed 10-150 ms, eight racers under load
        collided in all six rounds and every one answered 409), unless the name is by then
        taken for good. At most one group per name survives."""
        if self._name_taken(namespace, state.display_name, None):
            raise uniqueness(f"A group named {state.display_name!r} already exists")
        for attempt in range(6):
            obj = await self._create_once(namespace, state)
            if obj is not None:
                return obj
            await asyncio.sleep(random.uniform(0.01, 0.15) * 2**attempt)  # noqa: S311 (jitter, not crypto)
            if await self._others_with_name(namespace, state.display_name, ""):
                break
        raise uniqueness(f"A group named {state.display_name!r} already exists")

    async def _create_once(self, namespace: str, state: GroupState) -> Obj | None:
        gid = new_group_id()
        body = {
            "apiVersion": c.API_VERSION,
            "kind": c.GROUP_KIND,
            "metadata": {
                "name": gid,
                "labels": {DISPLAY_NAME_HASH_LABEL: display_name_key(state.display_name)},
                "annotations": {LAST_MODIFIED: _now()},
            },
            "spec": group_spec(state),
        }
        try:
            obj: Obj = await self._custom.create_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, body, field_manager=c.API_FIELD_MANAGER
            )
        except (ApiException, *_NETWORK_ERRORS) as exc:
            raise _kube_error(exc) from exc
        # Another replica (or request) may have created the same name at the same moment:
        # whoever finds a rival after writing withdraws, so at most one survives.
        try:
            rivals = await self._others_with_name(namespace, state.display_name, gid)
        except ScimError:  # not answered 2xx: leave no group behind (a 429 while the API
            await self._delete_quietly(namespace, gid)  # server rebuilds its watch cache)
            raise
        if rivals:
            await self._delete_quietly(namespace, gid)
            return None
        self._directory.upsert(c.GROUP_PLURAL, obj)
        await note(self._noter, namespace, c.GROUP_PLURAL, obj)
        return obj

    async def update(
        self,
        namespace: str,
        gid: str,
        change: Callable[[GroupState], GroupState],
        if_match: str | None = None,
    ) -> Updated:
        """Apply ``change`` to the group and write the difference, in one round with the
        changes other requests make to the same group at the same time (group commit).
        Returns the stored ScimGroup and whether anything changed."""

        async def write(round_change: Change, round_if_match: str | None) -> Updated:
            return await self._update(namespace, gid, round_change, round_if_match)

        return await self._commits.submit((namespace, gid), change, if_match, write)

    async def _update(
        self,
        namespace: str,
        gid: str,
        change: Callable[[GroupState], GroupState],
        if_match: str | None = None,
    ) -> Updated:
        """Apply ``change`` to the group and write the difference; retried on conflicts.

        SCIM operations are idempotent, so after a conflict the request is re-applied to
        the fresh objects (including any of its own writes that already landed).
        Returns the stored ScimGroup and whether anything changed."""
        obj = await self.current(namespace, gid)
        # A group that never had shards (its object is not marked and the cache knows none)
        # is written without listing its shards first: only its object, under a test of its
        # labels (unlisted_guard). Whoever creates a shard lists first and marks the object
        # before creating it, so a shard this replica has not seen yet fails that test
        # (re-read, listed) or was not created yet when this write landed (it comes after).
        listed = _sharded(obj) or bool(self._directory.shards_of(namespace, gid))
        shards = await self.fresh_shards(namespace, gid) if listed else []
        confirmed = False  # the group object itself is read fresh, not from the cache
        for attempt in range(MAX_ATTEMPTS):
            if not confirmed and not if_match_holds(obj, if_match, shards):
                obj, shards = await self.fetch_all(namespace, gid)  # the cache may lag: confirm
                confirmed = listed = True
            check_if_match(obj, if_match, shards)
            large = (
                sum(len((o.get("spec") or {}).get("members") or ()) for o in (obj, *shards))
                > OFF_LOOP_MEMBERS
            )
            # a large group's state, operations and placement are pure work of a few hundred ms:
            # in a worker thread the event loop keeps answering (/healthz, other groups) meanwhile
            old, new = await _run(large, _apply, change, obj, shards)
            if new == old and not (confirmed and shards and not _sharded(obj)):
                if confirmed:
                    return obj, False
                # "nothing to do" is never answered from a cache that may lag: removing a
                # member only another replica has seen would be acknowledged and not done
                obj, shards = await self.fetch_all(namespace, gid)
                confirmed = listed = True
                continue
            renamed = new.display_name.casefold() != old.display_name.casefold()
            if renamed and self._name_taken(namespace, new.display_name, gid):
                raise uniqueness(f"A group named {new.display_name!r} already exists")
            writes = await _run(large, plan_writes, obj, shards, new)
            if not listed and any(w.name is not None for w in writes):  # a spill: list first
                shards, listed = await self.fresh_shards(namespace, gid), True
                continue
            mark = (bool(shards) or any(w.create for w in writes)) and not _sharded(obj)
            main_ops = main_object_ops(obj, old, new, if_match is not None)
            inline = on_generation(obj, next((w.ops for w in writes if w.name is None), []))
            guard = unlisted_guard(obj, listed)
            own_change = (
                inline or guard or new.display_name != old.display_name or new.external_id != old.external_id
            )
            try:
                if mark:
                    # the mark lands before any shard is created, in a write of its own (once
                    # in a group's life): a replica writing the object unlisted then fails its
                    # label test even if this one stops between the two writes
                    version = {
                        "op": "test",
                        "path": "/metadata/resourceVersion",
                        "value": obj["metadata"]["resourceVersion"],
                    }
                    mark_ops = [version, *main_object_ops(obj, old, old, False, mark=True)]
                    marked = await self._write_all(namespace, obj, [], mark_ops)
                    assert marked is not None
                    obj = marked
                    continue
                # every touched object at once (each write is guarded and idempotent, so a
                # conflict on one re-plans all of them on fresh objects)
                updated = await self._write_all(
                    namespace, obj, [w for w in writes if w.name is not None],
                    guard + main_ops + inline if own_change else None,
                )  # fmt: skip
                if updated is None:  # only shards changed: the group object stays as it is
                    return obj, True
            except ApiException as exc:
                if exc.status == 404:
                    raise not_found(f"Group {gid!r} not found") from exc
                if exc.status in (409, 422):  # a guarded value moved: re-read and re-apply
                    before = obj["metadata"]["resourceVersion"]
                    await asyncio.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))  # noqa: S311 (jitter)
                    obj, shards = await self.fetch_all(namespace, gid)
                    confirmed = listed = True
                    if (
                        exc.status == 422
                        and obj["metadata"]["resourceVersion"] == before
                        and "test" not in str(exc.body)
                    ):
                        raise bad_request(f"Rejected by validation: {_reason(exc)}") from exc
                    continue
                raise _kube_error(exc) from exc
            except _NETWORK_ERRORS as exc:
                raise _kube_error(exc) from exc
            if renamed and await self._others_with_name(namespace, new.display_name, gid):
                await self._rename_back(namespace, gid, updated, old.display_name)
                raise uniqueness(f"A group named {new.display_name!r} already exists")
            self._directory.upsert(c.GROUP_PLURAL, updated)
            return updated, True
        raise ScimError(409, "The group is changing too fast; retry the request")

    async def _write_all(
        self, namespace: str, group: Obj, shard_writes: list[SlotWrite], main_ops: list[Obj] | None
    ) -> Obj | None:
        """Write the shards and (when ``main_ops``) the group object concurrently, at most
        ``WRITE_CONCURRENCY`` at a time; every write is awaited before an error is raised,
        so a retry never races a write of its own still in flight."""
        limit = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def main() -> Obj:
            async with limit:
                updated: Obj = await self._custom.patch_namespaced_custom_object(
                    c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, group["metadata"]["name"], main_ops,
                    field_manager=c.API_FIELD_MANAGER, _content_type="application/json-patch+json",
                )  # fmt: skip
                await note(self._noter, namespace, c.GROUP_PLURAL, updated)
                return updated

        async def shard(write: SlotWrite) -> None:
            async with limit:
                await self._write_shard(namespace, group, write)

        # the group object first: it is the one write the answer (its version) waits for
        jobs: list[Any] = [main()] if main_ops is not None else []
        jobs += [shard(w) for w in shard_writes]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:  # a 404 or validation error first, then conflicts, then the rest
            errors.sort(key=lambda e: 0 if isinstance(e, ApiException) and e.status in (404, 400) else 1)
            raise errors[0]
        first = results[0] if main_ops is not None else None
        return first if isinstance(first, dict) else None

    async def _write_shard(self, namespace: str, group: Obj, write: SlotWrite) -> None:
        assert write.name is not None
        if write.create:
            body = {
                "apiVersion": c.API_VERSION,
                "kind": c.SHARD_KIND,
                "metadata": {
                    "name": write.name,
                    "labels": {c.GROUP_LABEL: group["metadata"]["name"]},
                    "annotations": {LAST_MODIFIED: _now()},
                    "ownerReferences": [
                        c.owner_reference(c.GROUP_KIND, group["metadata"]["name"], group["metadata"]["uid"])
                    ],
                },
                "spec": {"group": group["metadata"]["name"], "packedMembers": pack_members(write.members)},
            }  # fmt: skip
            shard: Obj = await self._custom.create_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.SHARD_PLURAL, body, field_manager=c.API_FIELD_MANAGER
            )
        else:
            assert write.replace is not None
            shard = await self._custom.replace_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.SHARD_PLURAL, write.name, write.replace,
                field_manager=c.API_FIELD_MANAGER,
            )  # fmt: skip
        # cached as the watch would deliver it, from the members just written (not decoded
        # again: 5,000 members per shard, on the event loop)
        spec = shard.setdefault("spec", {})
        spec.pop("packedMembers", None)
        spec["members"] = write.members
        self._directory.upsert(c.SHARD_PLURAL, shard)
        await note(self._noter, namespace, c.SHARD_PLURAL, shard)

    async def fetch_all(self, namespace: str, gid: str) -> tuple[Obj, list[Obj]]:
        """The group and its shards, fresh from the API server."""
        obj = await self.fetch(namespace, gid)
        return obj, await self.fresh_shards(namespace, gid)

    async def fresh_shards(self, namespace: str, gid: str) -> list[Obj]:
        """The group's shards as the API server holds them now (a quorum read).

        A list of their metadata says which shards exist and at which version; only when the
        cache lacks one or holds an older version are the shards themselves listed. So a
        50,000-member group costs a few hundred bytes here, not its members."""
        selector = f"{c.GROUP_LABEL}={gid}"
        try:
            listed: Obj = await self._api.call_api(
                f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.SHARD_PLURAL}", "GET",
                query_params=[("labelSelector", selector)], header_params={"Accept": _METADATA_LIST},
                response_types_map={200: "object"}, auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )  # fmt: skip
        except (ApiException, *_NETWORK_ERRORS) as exc:
            raise _kube_error(exc) from exc
        cached = {
            o["metadata"]["name"]: resource_version(o) for o in self._directory.shards_of(namespace, gid)
        }
        items = listed.get("items") or []
        if any(cached.get(o["metadata"]["name"], -1) < resource_version(o) for o in items):
            try:
                result = await self._custom.list_namespaced_custom_object(
                    c.GROUP, c.VERSION, namespace, c.SHARD_PLURAL, label_selector=selector
                )
            except (ApiException, *_NETWORK_ERRORS) as exc:
                raise _kube_error(exc) from exc
            for shard in result.get("items", []):
                self._directory.upsert(c.SHARD_PLURAL, unpacked(shard))
        return self._directory.shards_of(namespace, gid)

    async def _rename_back(self, namespace: str, gid: str, obj: Obj, name: str) -> None:
        def back(state: GroupState) -> GroupState:
            restored = state.copy()
            restored.display_name = name
            return restored

        try:  # directly: this runs inside the group's round (update would wait for itself)
            await self._update(namespace, gid, back)
        except ScimError:
            log.exception("could not undo the rename of %s/%s", namespace, gid)

    async def delete(self, namespace: str, gid: str, if_match: str | None = None) -> None:
        obj = await self.current(namespace, gid)
        if not if_match_holds(obj, if_match, self._directory.shards_of(namespace, gid)):
            obj, shards = await self.fetch_all(namespace, gid)  # confirm before answering 412
            check_if_match(obj, if_match, shards)
        try:
            gone = await self._custom.delete_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, gid,
                body={"preconditions": {"uid": obj["metadata"]["uid"]}},
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 404:
                raise not_found(f"Group {gid!r} not found") from exc
            raise _kube_error(exc) from exc
        except _NETWORK_ERRORS as exc:
            raise _kube_error(exc) from exc
        # a finalizer keeps the object a moment: the answer carries the deletion's version
        answer = gone if isinstance(gone, dict) and gone.get("kind") == c.GROUP_KIND else obj
        self._directory.group_table(namespace).forget(gid, resource_version(answer))
        await note(self._noter, namespace, c.GROUP_PLURAL, answer, deleted=True)

    async def _delete_quietly(self, namespace: str, gid: str) -> None:
        try:
            await self._custom.delete_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, gid
            )
        except (ApiException, *_NETWORK_ERRORS):
            log.exception("could not withdraw duplicate group %s/%s", namespace, gid)


def _member_count(obj: Obj, shards: list[Obj]) -> int:
    return sum(len((o.get("spec") or {}).get("members") or ()) for o in (obj, *shards))


async def _run(off_loop: bool, fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args) if off_loop else fn(*args)


def _apply(change: Change, obj: Obj, shards: list[Obj]) -> tuple[GroupState, GroupState]:
    old = full_state(obj, shards)
    return old, change(old)


def full_state(obj: Obj, shards: list[Obj]) -> GroupState:
    state = group_state(obj.get("spec") or {})
    for shard in shards:
        for m in (shard.get("spec") or {}).get("members") or []:
            state.members[m["value"]] = m.get("display")
    return state


def plan_writes(
    obj: Obj, shards: list[Obj], new: GroupState, old: GroupState | None = None
) -> list[SlotWrite]:
    """Member writes per object (the ScimGroup itself is the slot named None)."""
    gid = obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    slots = [Slot(None, list(spec.get("members") or []), obj["metadata"]["resourceVersion"])]
    slots += [
        Slot(
            s["metadata"]["name"],
            list((s.get("spec") or {}).get("members") or []),
            s["metadata"]["resourceVersion"],
        )
        for s in shards
    ]
    taken = {s["metadata"]["name"] for s in shards}
    names: list[str] = []
    n = 1

    def new_name(i: int) -> str:
        nonlocal n
        while len(names) <= i:
            while f"{gid}-{n}" in taken:
                n += 1
            names.append(f"{gid}-{n}")
            n += 1
        return names[i]

    writes = plan_members(slots, new.members, new_name)
    by_name = {s["metadata"]["name"]: s for s in shards}
    for w in writes:
        if w.name is not None and not w.create:  # a shard is rewritten whole, packed
            w.ops, w.replace = [], shard_replacement(by_name[w.name], w.members)
    if "members" not in spec:
        for w in writes:
            if w.name is None:
                w.ops.insert(0, {"op": "add", "path": "/spec/members", "value": []})
    return writes


def shard_replacement(shard: Obj, members: list[dict[str, Any]]) -> Obj:
    """The whole ScimMemberShard to PUT in place of ``shard`` (as read) with ``members``,
    packed. Guarded like a JSON Patch with a ``test`` of the version: the body carries the
    resourceVersion read, so the API server refuses it (409) if the shard moved since; its
    metadata (labels, owner, finalizers) is the one read at that version. A PUT costs the API
    server half a JSON Patch that rewrites the same 100-300 kB string (no patch applied to a
    re-encoded copy; docs/benchmarks.md, "Profiles")."""
    metadata = {k: v for k, v in shard["metadata"].items() if k != "managedFields"}
    metadata["annotations"] = {**(metadata.get("annotations") or {}), LAST_MODIFIED: _now()}
    spec = {"group": (shard.get("spec") or {}).get("group"), "packedMembers": pack_members(members)}
    return {"apiVersion": c.API_VERSION, "kind": c.SHARD_KIND, "metadata": metadata, "spec": spec}


#: Label on a group object: some of its members are (or were) in ScimMemberShards.
SHARDED = f"{c.GROUP}/sharded"


def _sharded(obj: Obj) -> bool:
    return SHARDED in (obj["metadata"].get("labels") or {})


def unlisted_guard(obj: Obj, listed: bool) -> list[dict[str, Any]]:
    """The test that goes first in a write of the group object planned without listing its
    shards: its labels, to which whoever creates a shard adds :data:`SHARDED` (its
    resourceVersion for an object without labels, not created by this API)."""
    if listed:
        return []
    labels = obj["metadata"].get("labels")
    if labels is None:
        return [
            {"op": "test", "path": "/metadata/resourceVersion", "value": obj["metadata"]["resourceVersion"]}
        ]
    return [{"op": "test", "path": "/metadata/labels", "value": labels}]


def on_generation(obj: Obj, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The group object's member ops with their resourceVersion test (before an append, see
    layout.py) made a test of its generation, which only a change of its spec moves: the
    operator's finalizer and status writes in between no longer make the append a conflict."""
    version = {
        "op": "test",
        "path": "/metadata/resourceVersion",
        "value": obj["metadata"].get("resourceVersion"),
    }
    generation = {"op": "test", "path": "/metadata/generation", "value": obj["metadata"].get("generation")}
    return [generation if op == version else op for op in ops]


def main_object_ops(
    obj: Obj, old: GroupState, new: GroupState, guard_generation: bool, mark: bool = False
) -> list[dict[str, Any]]:
    """JSON Patch for the ScimGroup's own fields (name, externalId, bookkeeping); ``mark``
    adds the :data:`SHARDED` label."""
    ops: list[dict[str, Any]] = []
    if guard_generation:
        ops.append({"op": "test", "path": "/metadata/generation", "value": obj["metadata"].get("generation")})
    renamed = new.display_name != old.display_name
    if renamed:
        ops.append({"op": "test", "path": "/spec/displayName", "value": old.display_name})
        ops.append({"op": "replace", "path": "/spec/displayName", "value": new.display_name})
    if (renamed or mark) and "labels" not in obj["metadata"]:
        ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
    if renamed:
        ops.append(
            {
                "op": "add",
                "path": f"/metadata/labels/{_escape(DISPLAY_NAME_HASH_LABEL)}",
                "value": display_name_key(new.display_name),
            }
        )
    if mark:
        ops.append({"op": "add", "path": f"/metadata/labels/{_escape(SHARDED)}", "value": "true"})
    if new.external_id != old.external_id:
        if new.external_id is None:
            ops.append({"op": "remove", "path": "/spec/externalId"})
        else:
            ops.append({"op": "add", "path": "/spec/externalId", "value": new.external_id})
    if "annotations" not in obj["metadata"]:
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    ops.append({"op": "add", "path": f"/metadata/annotations/{_escape(LAST_MODIFIED)}", "value": _now()})
    return ops
