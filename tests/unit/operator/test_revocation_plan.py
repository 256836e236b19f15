"""The offboarding fast path's pure part (``rbac.revocation_patch``, ``rbac.revocations``) and
the cache handing an existing user's change to it (``ClusterCache.on_revoke``)."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest

from scim_core import constants as c
from scim_operator.cache import KINDS, ClusterCache, may_lose_access
from scim_operator.rbac import RBAC_API, Plan, plan_group, revocation_patch, revocations, revokes_anyone

VIEW = {"apiGroup": RBAC_API, "kind": "ClusterRole", "name": "view"}


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": RBAC_API, "name": name}


def live(
    *names: str, role: dict[str, str] = VIEW, extra: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": "b", "namespace": "ns", "resourceVersion": "7"},
        "roleRef": role,
        "subjects": [user(n) for n in names] + (extra or []),
    }


@pytest.mark.parametrize(
    ("names", "keep", "left"),
    [
        (("a", "b", "c"), {"a", "b", "c"}, ["a", "b", "c"]),  # nothing to remove: no patch
        (("a", "b", "c"), {"a", "c"}, ["a", "c"]),
        (("a", "b", "c"), {"b"}, ["b"]),
        (("a", "b", "c"), set(), []),
        ((), {"a"}, []),
        (("a", "a", "b"), {"b"}, ["b"]),  # a duplicate goes too
    ],
)
def test_revocation_patch_removes_exactly_what_is_not_kept(
    names: tuple[str, ...], keep: set[str], left: list[str]
) -> None:
    binding = live(*names)
    ops = revocation_patch(binding, frozenset(keep))
    assert (ops == []) == (list(names) == left)
    assert all(op["op"] in ("test", "remove") for op in ops)  # it never adds anyone
    patched = jsonpatch.apply_patch(binding, ops)
    assert [s["name"] for s in patched["subjects"]] == left


def test_revocation_patch_removes_subjects_of_other_kinds_and_is_guarded() -> None:
    group_subject = {"kind": "Group", "apiGroup": RBAC_API, "name": "a"}  # same name, not a User
    binding = live("a", "b", extra=[group_subject])
    ops = revocation_patch(binding, frozenset({"a"}))
    assert [s["name"] for s in jsonpatch.apply_patch(binding, ops)["subjects"]] == ["a"]
    # the binding changed since it was read (a subject inserted at the front): refused whole
    moved = live("z", "a", "b", extra=[group_subject])
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(moved, ops)


WORKSPACE = {"roleMappings": [{"name": "m", "groups": {"pattern": ".*"}, "clusterRole": "view"}]}


def plan(active: dict[str, bool], workspace: dict[str, Any] | None = WORKSPACE) -> Plan:
    users = {u: {"userName": u, "active": a} for u, a in active.items()}
    spec = {"displayName": "g", "members": [{"value": u} for u in active]}
    return plan_group("ns", "g", spec, workspace, users, {}, frozenset({"view", "edit"}), frozenset())


@pytest.mark.parametrize(
    ("bindings", "active", "workspace", "expected"),
    [
        # the leaver goes, the stayer stays
        ({"scim-g-m": live("leaver", "stayer")}, {"leaver": False, "stayer": True}, WORKSPACE,
         {"scim-g-m": ["stayer"]}),
        # nobody to remove: no patch at all
        ({"scim-g-m": live("stayer")}, {"stayer": True}, WORKSPACE, {}),
        # a reactivated user is not added by the fast path (the reconcile does that)
        ({"scim-g-m": live("stayer")}, {"back": True, "stayer": True}, WORKSPACE, {}),
        # the last subject goes: the binding is left empty (the reconcile deletes it)
        ({"scim-g-m": live("leaver")}, {"leaver": False}, WORKSPACE, {"scim-g-m": []}),
        # a binding the plan no longer wants (no workspace) loses everyone
        ({"scim-g-m": live("a", "b")}, {"a": True, "b": True}, None, {"scim-g-m": []}),
        # a binding whose role the plan changed loses everyone (the reconcile recreates it)
        ({"scim-g-m": live("a", role={**VIEW, "name": "edit"})}, {"a": True}, WORKSPACE, {"scim-g-m": []}),
        # an old binding name (e.g. before a split) the plan does not have
        ({"scim-g-m-000": live("a")}, {"a": True}, WORKSPACE, {"scim-g-m-000": []}),
    ],
)  # fmt: skip
def test_revocations_are_the_reconciles_removals_only(
    bindings: dict[str, dict[str, Any]],
    active: dict[str, bool],
    workspace: dict[str, Any] | None,
    expected: dict[str, list[str]],
) -> None:
    keyed = {("ns", name): b for name, b in bindings.items()}
    out = revocations(plan(active, workspace), keyed)
    assert {name for _, name, _ in out} == set(expected)
    assert revokes_anyone(plan(active, workspace), keyed) == bool(expected)
    for ns, name, ops in out:
        assert ns == "ns"
        after = jsonpatch.apply_patch(keyed[(ns, name)], ops)
        assert [s["name"] for s in after["subjects"]] == expected[name]


class Recorder:
    def __init__(self) -> None:
        self.groups: list[tuple[str, str]] = []
        self.revoked: list[tuple[str, str]] = []


def cache_with(rec: Recorder, revoke: bool) -> ClusterCache:
    cache = ClusterCache(on_change=rec.groups.append, on_revoke=rec.revoked.append if revoke else None)
    initial: dict[str, list[dict[str, Any]]] = {
        c.USER_PLURAL: [{"metadata": {"name": "u1", "namespace": "ns", "uid": "1"}, "spec": {}}],
        c.GROUP_PLURAL: [
            {"metadata": {"name": g, "namespace": "ns", "uid": g}, "spec": {"members": [{"value": "u1"}]}}
            for g in ("g1", "g2")
        ],
    }
    for kind in KINDS:
        cache.replace_all(kind, initial.get(kind, []))
    rec.groups.clear()
    return cache


@pytest.mark.parametrize("revoke", [True, False])
@pytest.mark.parametrize("change", ["deactivated", "deleted", "created", "profile"])
def test_an_existing_users_change_goes_to_the_fast_path_which_queues_the_groups(
    revoke: bool, change: str
) -> None:
    rec = Recorder()
    cache = cache_with(rec, revoke)
    if change == "deactivated":
        cache.upsert(c.USER_PLURAL, {"metadata": {"name": "u1", "namespace": "ns", "uid": "1"},
                                     "spec": {"active": False}})  # fmt: skip
    elif change == "deleted":
        cache.delete(c.USER_PLURAL, {"metadata": {"name": "u1", "namespace": "ns"}})
    elif change == "profile":  # nothing their access depends on: straight to the reconciles
        cache.upsert(c.USER_PLURAL, {"metadata": {"name": "u1", "namespace": "ns", "uid": "1"},
                                     "spec": {"displayName": "U1"}})  # fmt: skip
        assert rec.revoked == [] and sorted(rec.groups) == [("ns", "g1"), ("ns", "g2")]
        return
    else:  # a new user can lose nobody anything: straight to the reconciles
        cache.upsert(c.GROUP_PLURAL, {"metadata": {"name": "g3", "namespace": "ns", "uid": "g3"},
                                      "spec": {"members": [{"value": "u2"}]}})  # fmt: skip
        rec.groups.clear()
        cache.upsert(c.USER_PLURAL, {"metadata": {"name": "u2", "namespace": "ns", "uid": "2"}, "spec": {}})
        assert rec.revoked == [] and rec.groups == [("ns", "g3")]
        return
    if revoke:
        assert rec.revoked == [("ns", "u1")] and rec.groups == []  # the Revoker queues them after
        assert set(cache.groups_of(("ns", "u1"))) == {"g1", "g2"}  # what it reads
    else:
        assert sorted(rec.groups) == [("ns", "g1"), ("ns", "g2")]


@pytest.mark.parametrize(
    ("before", "after", "loses"),
    [
        ({"userName": "a"}, None, True),  # deleted
        ({"userName": "a"}, {"userName": "a", "active": False}, True),
        ({"userName": "a", "active": True}, {"userName": "a", "active": False}, True),
        ({"userName": "a", "active": False}, {"userName": "a", "active": True}, False),  # reactivated
        ({"userName": "a", "active": False}, {"userName": "a", "active": False, "title": "x"}, False),
        ({"userName": "a"}, {"userName": "a", "displayName": "A", "title": "x"}, False),  # profile only
        ({"userName": "a"}, {"userName": "b"}, True),
        ({"userName": "a", "externalId": "1"}, {"userName": "a", "externalId": "2"}, True),
        ({"userName": "a"}, {"userName": "a", "emails": [{"value": "a@x"}]}, True),
        ({"userName": "a"}, {"userName": "a", "subject": "oidc:a"}, True),
    ],
)
def test_may_lose_access(before: dict[str, Any], after: dict[str, Any] | None, loses: bool) -> None:
    new = None if after is None else {"metadata": {"name": "u"}, "spec": after}
    assert may_lose_access({"metadata": {"name": "u"}, "spec": before}, new) is loses
