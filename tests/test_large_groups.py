"""Large groups: members spill from the ScimGroup into ScimMemberShards, every object
stays small, SCIM sees one group, and the operator binds every member."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from starlette.testclient import TestClient

from scim_api.app import create_app
from scim_api.config import ApiSettings
from scim_api.layout import INLINE_MAX_MEMBERS, SHARD_MAX_MEMBERS
from scim_api.protocol.resources import etag
from scim_api.state import ApiState
from scim_core import constants as c
from scim_core.members import unpacked

from .conftest import ScimClient
from .helpers import create_workspace, custom, eventually, health_probed

pytestmark = pytest.mark.cluster
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
N = 3000


def test_large_group_spills_into_shards(scim: ScimClient, kube: client.ApiClient) -> None:
    g = scim.create_group("Everyone")
    gid = g["id"]
    for start in range(0, N, 100):
        batch = [
            {"value": f"usr-{i:05d}", "display": f"user{i}@example.com"} for i in range(start, start + 100)
        ]
        r = scim.patch(
            f"/Groups/{gid}",
            {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": batch}]},
        )
        assert r.status_code == 204, r.text
    api = custom(kube)
    group = api.get_namespaced_custom_object(c.GROUP, c.VERSION, scim.namespace, c.GROUP_PLURAL, gid)
    shards = api.list_namespaced_custom_object(
        c.GROUP, c.VERSION, scim.namespace, c.SHARD_PLURAL, label_selector=f"{c.GROUP_LABEL}={gid}"
    )["items"]
    assert all("packedMembers" in s["spec"] for s in shards)  # written packed
    shards = [unpacked(s) for s in shards]
    assert len(group["spec"]["members"]) <= INLINE_MAX_MEMBERS and shards
    stored = [m["value"] for m in group["spec"]["members"]] + [
        m["value"] for s in shards for m in s["spec"]["members"]
    ]
    assert sorted(stored) == [f"usr-{i:05d}" for i in range(N)]
    for obj in [group, *shards]:
        assert len(json.dumps(obj)) < 1024 * 1024
        if obj is not group:
            assert obj["metadata"]["ownerReferences"][0]["uid"] == group["metadata"]["uid"]
    got = scim.get(f"/Groups/{gid}")
    body = got.json()
    assert len(body["members"]) == N
    # a change that lands only in a shard still moves the version
    tag = got.headers["etag"]
    r = scim.patch(
        f"/Groups/{gid}",
        {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "late"}]}]},
    )
    assert r.status_code == 204 and r.headers["etag"] != tag
    assert (
        scim.patch(
            f"/Groups/{gid}",
            {"schemas": [PATCH], "Operations": [{"op": "remove", "path": 'members[value eq "late"]'}]},
            headers={"If-Match": tag},
        ).status_code
        == 412
    )
    assert (
        scim.patch(
            f"/Groups/{gid}",
            {"schemas": [PATCH], "Operations": [{"op": "remove", "path": 'members[value eq "late"]'}]},
        ).status_code
        == 204
    )
    # remove one member that lives in a shard, and one inline
    shard_member = shards[0]["spec"]["members"][0]["value"]
    inline_member = group["spec"]["members"][0]["value"]
    for victim in (shard_member, inline_member):
        r = scim.patch(
            f"/Groups/{gid}",
            {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{victim}"]'}]},
        )
        assert r.status_code == 204
    members = {m["value"] for m in scim.get(f"/Groups/{gid}").json()["members"]}
    assert len(members) == N - 2 and shard_member not in members and inline_member not in members
    assert (
        scim.get("/Groups", params={"filter": f'members[value eq "usr-{N - 1:05d}"]'}).json()["totalResults"]
        == 1
    )
    # a user's groups include groups that hold them in a shard
    r = scim.patch(
        f"/Groups/{gid}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "members", "value": []}]},
    )
    assert r.status_code == 204
    assert scim.get(f"/Groups/{gid}").json().get("members", []) == []


def test_post_with_many_members(scim: ScimClient) -> None:
    members = [{"value": f"m-{i}"} for i in range(2500)]
    r = scim.post(
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Big",
            "members": members,
        },
    )
    assert r.status_code == 201, r.text
    assert len(scim.get(f"/Groups/{r.json()['id']}").json()["members"]) == 2500


@pytest.mark.usefixtures("operator_running")
def test_operator_binds_shard_members(kube: client.ApiClient, namespace: str) -> None:
    from .helpers import create_user

    create_workspace(
        kube, namespace, roleMappings=[{"name": "v", "groups": {"displayName": "Big"}, "clusterRole": "view"}]
    )
    api = custom(kube)
    group = api.create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL,
        {"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": "grp-big"},
         "spec": {"displayName": "Big", "members": [{"value": "usr-a"}]}},
    )  # fmt: skip
    api.create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.SHARD_PLURAL,
        {"apiVersion": c.API_VERSION, "kind": c.SHARD_KIND,
         "metadata": {"name": "grp-big-1", "labels": {c.GROUP_LABEL: "grp-big"},
                      "ownerReferences": [{"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "name": "grp-big",
                                           "uid": group["metadata"]["uid"]}]},
         "spec": {"group": "grp-big", "members": [{"value": "usr-b"}]}},
    )  # fmt: skip
    create_user(kube, namespace, "usr-a", "a@example.com")
    create_user(kube, namespace, "usr-b", "b@example.com")
    rbac = client.RbacAuthorizationV1Api(kube)

    def subjects() -> list[str]:
        try:
            return sorted(
                s.name for s in rbac.read_namespaced_role_binding("scim-grp-big-v", namespace).subjects or []
            )
        except client.exceptions.ApiException:
            return []

    eventually(lambda: subjects() == ["a@example.com", "b@example.com"])
    api.patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.USER_PLURAL, "usr-b", {"spec": {"active": False}}
    )
    eventually(lambda: subjects() == ["a@example.com"], timeout=5)


# ------------------------------------------------------------------ two replicas in one process


@pytest.fixture
def replica_b(scim: ScimClient) -> Iterator[ScimClient]:
    """A second API app (another replica) on the same cluster and workspace as ``scim``."""
    with TestClient(create_app(ApiSettings(rate_per_second=1e6, rate_burst=10**6))) as tc:
        deadline = time.monotonic() + 30
        while tc.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "replica B never synced"
            time.sleep(0.1)
        b = ScimClient(tc, scim.token, scim.namespace)
        eventually(lambda: b.get("/ServiceProviderConfig").status_code == 200)
        yield b


def _state(replica: ScimClient) -> ApiState:
    state: ApiState = replica.tc.app.state.scim
    return state


def _add(replica: ScimClient, gid: str, values: list[str]) -> None:
    ops = {
        "schemas": [PATCH],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": v} for v in values]}],
    }
    r = replica.patch(f"/Groups/{gid}", ops)
    assert r.status_code == 204, r.text


def _big_group(a: ScimClient) -> tuple[str, list[str], list[str]]:
    """A group of 1,101 built through ``a``: 1,000 members inline, 101 in a shard."""
    gid = a.create_group("Everyone")["id"]
    inline = [f"in-{i:04d}" for i in range(INLINE_MAX_MEMBERS)]
    spilled = [f"sh-{i:03d}" for i in range(101)]
    _add(a, gid, inline[:500])
    _add(a, gid, inline[500:])
    _add(a, gid, spilled)
    return gid, inline, spilled


def _members(replica: ScimClient, gid: str) -> tuple[set[str], str]:
    r = replica.get(f"/Groups/{gid}")
    assert r.status_code == 200, r.text
    return {m["value"] for m in r.json().get("members", [])}, r.headers["etag"]


def _objects(kube: client.ApiClient, namespace: str, gid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The group and its shards as the API server holds them (the truth, not a cache), packed
    shards decoded."""
    api = custom(kube)
    group = api.get_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, gid)
    shards = api.list_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.SHARD_PLURAL, label_selector=f"{c.GROUP_LABEL}={gid}"
    )["items"]
    return group, [unpacked(s) for s in shards]


def _stored(kube: client.ApiClient, namespace: str, gid: str) -> set[str]:
    group, shards = _objects(kube, namespace, gid)
    return {m["value"] for o in (group, *shards) for m in o["spec"].get("members") or []}


def _true_etag(kube: client.ApiClient, namespace: str, gid: str) -> str:
    group, shards = _objects(kube, namespace, gid)
    return etag(group, sorted(shards, key=lambda s: s["metadata"]["name"]))


def _hide_shards(replica: ScimClient, gid: str) -> None:
    """Make the replica's cache lag: forget the group's shards (as if their events were late)."""
    directory = _state(replica).directory
    for shard in directory.shards_of(replica.namespace, gid):
        directory.delete(c.SHARD_PLURAL, shard)
    assert directory.shards_of(replica.namespace, gid) == []


def test_replica_sees_shards_written_by_another(scim: ScimClient, replica_b: ScimClient) -> None:
    """Issue 8: B listed 1,000 members where A listed 1,101, with a different ETag."""
    gid, inline, spilled = _big_group(scim)
    on_a = _members(scim, gid)
    assert on_a[0] == set(inline + spilled)
    eventually(lambda: _members(replica_b, gid) == on_a, timeout=10)
    listed = replica_b.get(
        "/Groups", params={"filter": 'members[value eq "sh-100"]', "excludedAttributes": "members"}
    )
    assert [g["id"] for g in listed.json()["Resources"]] == [gid]
    # a user's groups on B include a group that holds them only in a shard
    assert gid in _state(replica_b).directory.group_table(scim.namespace).member_of["sh-100"]


def test_lagging_replica_confirms_before_answering(
    scim: ScimClient, replica_b: ScimClient, kube: client.ApiClient
) -> None:
    """B's cache misses the shard A wrote: removals, replacements and If-Match are still
    decided against what the API server holds, never answered from the stale cache."""
    gid, inline, spilled = _big_group(scim)
    eventually(lambda: _state(replica_b).directory.shards_of(scim.namespace, gid), timeout=10)

    _hide_shards(replica_b, gid)  # removing a member only the shard holds: not a no-op
    ops = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": 'members[value eq "sh-007"]'}]}
    assert replica_b.patch(f"/Groups/{gid}", ops).status_code == 204
    assert "sh-007" not in _stored(kube, scim.namespace, gid)

    _hide_shards(replica_b, gid)  # a removal spanning the group and the unseen shard
    ops = {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": "members", "value": [{"value": "in-0003"}, {"value": "sh-008"}]}]}  # fmt: skip
    assert replica_b.patch(f"/Groups/{gid}", ops).status_code == 204
    assert not {"in-0003", "sh-008"} & _stored(kube, scim.namespace, gid)

    _hide_shards(replica_b, gid)  # If-Match with A's current ETag
    tag = _true_etag(kube, scim.namespace, gid)
    ops = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": 'members[value eq "sh-009"]'}]}
    assert replica_b.patch(f"/Groups/{gid}", ops, headers={"If-Match": tag}).status_code == 204

    _hide_shards(replica_b, gid)  # PUT members [] empties the group, shards included
    r = replica_b.put(f"/Groups/{gid}", {"schemas": [GROUP], "displayName": "Everyone", "members": []})
    assert r.status_code == 200, r.text
    assert r.json().get("members", []) == []
    assert _stored(kube, scim.namespace, gid) == set()

    _add(scim, gid, inline + spilled)  # refill through A, then DELETE through B with A's ETag
    eventually(lambda: _state(replica_b).directory.shards_of(scim.namespace, gid), timeout=10)
    _hide_shards(replica_b, gid)
    stale = _true_etag(kube, scim.namespace, gid)
    _add(scim, gid, ["late"])
    _hide_shards(replica_b, gid)
    assert replica_b.delete(f"/Groups/{gid}", headers={"If-Match": stale}).status_code == 412
    tag = _true_etag(kube, scim.namespace, gid)
    _hide_shards(replica_b, gid)
    assert replica_b.delete(f"/Groups/{gid}", headers={"If-Match": tag}).status_code == 204
    eventually(lambda: scim.get(f"/Groups/{gid}").status_code == 404, timeout=10)


def test_lagging_group_object_confirms_no_op(
    scim: ScimClient, replica_b: ScimClient, kube: client.ApiClient
) -> None:
    """B holds an older version of the group itself: a removal it thinks is already done
    (the member is absent there) is confirmed against the API server and carried out."""
    gid = scim.create_group("Small")["id"]
    table = _state(replica_b).directory.group_table(scim.namespace)
    before = eventually(lambda: table.by_id.get(gid))
    _add(scim, gid, ["x"])
    eventually(lambda: table.by_id[gid]["spec"]["members"], timeout=10)
    table.remove(gid)
    table.put(before)  # the cache lags: B has not seen "x" arrive
    ops = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": 'members[value eq "x"]'}]}
    assert replica_b.patch(f"/Groups/{gid}", ops).status_code == 204
    assert _stored(kube, scim.namespace, gid) == set()
    r = replica_b.put(
        f"/Groups/{gid}", {"schemas": [GROUP], "displayName": "Small", "members": [{"value": "y"}]}
    )
    assert r.status_code == 200
    _add(scim, gid, ["z"])
    table.remove(gid)
    table.put(before)  # B again behind: PUT [y] looks like "nothing to do" from there
    assert _stored(kube, scim.namespace, gid) == {"y", "z"}
    r = replica_b.put(
        f"/Groups/{gid}", {"schemas": [GROUP], "displayName": "Small", "members": [{"value": "y"}]}
    )
    assert r.status_code == 200
    assert _stored(kube, scim.namespace, gid) == {"y"}


def test_lagging_user_cache_confirms_deactivation(scim: ScimClient, kube: client.ApiClient) -> None:
    """The cache shows a user already inactive (it lags a reactivation): a deactivation is
    still carried out; and an If-Match naming the fresh version is not refused from the cache."""
    from .helpers import create_user

    create_user(kube, scim.namespace, "usr-erin", "erin@example.com")

    def lag(**changes: Any) -> dict[str, Any]:
        cached = eventually(lambda: _state(scim).directory.user_table(scim.namespace).by_id.get("usr-erin"))
        stale: dict[str, Any] = json.loads(json.dumps(cached))
        stale["spec"]["active"] = changes.get("active", stale["spec"].get("active", True))
        stale["metadata"]["generation"] = changes.get("generation", stale["metadata"]["generation"])
        table = _state(scim).directory.user_table(scim.namespace)
        table.remove("usr-erin")
        table.put(stale)
        return cached

    def stored() -> bool:
        obj = custom(kube).get_namespaced_custom_object(
            c.GROUP, c.VERSION, scim.namespace, c.USER_PLURAL, "usr-erin"
        )
        return bool(obj["spec"].get("active", True))

    lag(active=False)  # looks done already; it is not
    ops = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    assert scim.patch("/Users/usr-erin", ops).status_code == 204
    assert stored() is False

    fresh = lag(generation=0)  # the cache holds an older version than the IdP read
    ops = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]}
    tag = f'W/"{fresh["metadata"]["generation"]}"'
    assert scim.patch("/Users/usr-erin", ops, headers={"If-Match": tag}).status_code == 204
    assert stored() is True


def test_list_page_bounded_by_members(scim: ScimClient) -> None:
    """A page of groups with members ends early past SCIM_MAX_LIST_MEMBERS (never empty);
    without members, or paging on, every group is reached."""
    for n in range(4):
        scim.create_group(f"Team {n}", members=[{"value": f"m-{n}-{i}"} for i in range(3)])
    settings = ApiSettings(rate_per_second=1e6, rate_burst=10**6, max_list_members=6)
    with TestClient(create_app(settings)) as tc:
        capped = ScimClient(tc, scim.token, scim.namespace)
        eventually(
            lambda: (
                capped.get("/Groups").status_code == 200 and capped.get("/Groups").json()["totalResults"] == 4
            )
        )
        page = capped.get("/Groups").json()
        assert (
            page["totalResults"] == 4 and page["itemsPerPage"] == 2
        )  # 3 + 3 members fit in 6, a third does not
        seen, start = [], 1
        while start <= 4:
            body = capped.get("/Groups", params={"startIndex": start}).json()
            assert body["itemsPerPage"] >= 1
            seen += [g["displayName"] for g in body["Resources"]]
            start += body["itemsPerPage"]
        assert sorted(seen) == [f"Team {n}" for n in range(4)]
        lean = capped.get("/Groups", params={"excludedAttributes": "members"}).json()
        assert lean["itemsPerPage"] == 4


# ------------------------------------------------------------------ issue 8: bounded PATCH time

BIG = 50_000
#: The chart's livenessProbe.timeoutSeconds: /healthz must answer within it during the PATCH.
LIVENESS_TIMEOUT = 3.0
#: Not targets: nets that catch a hang (a quadratic step, a blocked loop) on any machine. The
#: 1 s target of issue 8 is judged by ``make bench-api`` (timing targets live in bench/).
SPREAD_SAFETY_BOUND = 120.0
ONE_OBJECT_SAFETY_BOUND = 30.0


def _store_big_group(kube: client.ApiClient, namespace: str, gid: str, values: list[str]) -> None:
    """A group laid out as the API lays it out (1,000 inline, then full shards), written
    straight to the API server: building it through 500 PATCHes would take minutes."""
    api = custom(kube)
    inline, rest = values[:INLINE_MAX_MEMBERS], values[INLINE_MAX_MEMBERS:]
    group = api.create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL,
        {"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": gid},
         "spec": {"displayName": "Everyone", "members": [{"value": v} for v in inline]}},
    )  # fmt: skip
    for n, start in enumerate(range(0, len(rest), SHARD_MAX_MEMBERS), start=1):
        api.create_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.SHARD_PLURAL,
            {"apiVersion": c.API_VERSION, "kind": c.SHARD_KIND,
             "metadata": {"name": f"{gid}-{n}", "labels": {c.GROUP_LABEL: gid},
                          "ownerReferences": [c.owner_reference(c.GROUP_KIND, gid, group["metadata"]["uid"])]},
             "spec": {"group": gid, "members": [{"value": v} for v in rest[start : start + SHARD_MAX_MEMBERS]]}},
        )  # fmt: skip


def _settled(kube: client.ApiClient, namespace: str, gid: str) -> None:
    """Wait until the operator has processed the group's current generation: it runs in
    this test process (same interpreter lock), so its first pass over a new 50,000-member
    group would otherwise be timed as part of the API's answer."""

    def done() -> bool:  # the group object only: polling its 50,000 members would load the test
        group = custom(kube).get_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, gid)
        return bool((group.get("status") or {}).get("observedGeneration") == group["metadata"]["generation"])

    eventually(done, timeout=120)


@pytest.mark.timeout(900)
def test_thousand_operation_patch_on_fifty_thousand_members(scim: ScimClient, kube: client.ApiClient) -> None:
    """Issue 8: 1,000-operation PATCHes (500 ``members[value eq …]`` removals + 500
    additions) on a 50,000-member group are applied exactly and /healthz answers throughout,
    each answer within the chart's liveness timeout (3 s). (The one test of this: it replaced
    a second 50,000-member PATCH test in test_api_protocol.py, built through 50,000 SCIM adds.)

    - removals spread over every member object: every object is rewritten, and the API
      server's cost per rewritten member bounds the time (docs/benchmarks.md, "Profiles");
      held here to a safety bound for a shared machine, its figures printed. The group is
      stored with list-shaped shards (as before packing): the first spread PATCH packs them,
      the second goes from packed to packed;
    - removals within one member object (an IdP's usual batch): three attempts, each a full,
      checked PATCH, held to a safety bound; the 1 s target is ``make bench-api``'s figure.
    Correctness (what the API server stores after each PATCH, and what SCIM then serves)
    and /healthz always count.
    """
    gid = "grp-everyone"
    values = [f"user-{i:06d}" for i in range(BIG)]
    _store_big_group(kube, scim.namespace, gid, values)
    eventually(lambda: len(_members(scim, gid)[0]) == BIG, timeout=60)
    _settled(kube, scim.namespace, gid)  # the in-process operator has read the new group
    expected = set(values)

    def patch(out: list[str], into: list[str]) -> float:
        nonlocal expected
        body = {"schemas": [PATCH], "Operations": [
            *({"op": "remove", "path": f'members[value eq "{v}"]'} for v in out),
            *({"op": "add", "path": "members", "value": [{"value": v}]} for v in into)]}  # fmt: skip
        assert len(body["Operations"]) == 1000
        start = time.monotonic()
        r = scim.patch(f"/Groups/{gid}", body)
        elapsed = time.monotonic() - start
        assert r.status_code == 204, r.text
        expected = (expected - set(out)) | set(into)
        assert _stored(kube, scim.namespace, gid) == expected  # applied exactly, every time
        _settled(kube, scim.namespace, gid)
        return elapsed

    with health_probed(lambda: scim.tc.get("/healthz").status_code) as slowest:
        # spread: a fresh set of 500 every time, one in every hundred members
        spread = [patch(values[k::100], [f"new-{k}-{i:03d}" for i in range(500)]) for k in (1, 2)]
        # concentrated: 500 members of one shard out, 500 new in
        one_object: list[float] = []
        for k in range(3):
            first = INLINE_MAX_MEMBERS + k * 600  # all in the first shard, none removed yet
            out = [v for v in values[first : first + 600] if v in expected][:500]
            one_object.append(patch(out, [f"more-{k}-{i:03d}" for i in range(500)]))
        # what SCIM serves is what is stored, read while /healthz is probed: the 50,000
        # members are rendered and encoded off the event loop
        served, _ = _members(scim, gid)
    figures = (
        f"spread PATCH {[round(t, 3) for t in spread]} s; one-object PATCH "
        f"{[round(t, 3) for t in one_object]} s; slowest /healthz {max(slowest):.3f} s "
        f"over {len(slowest)} probes"
    )
    print(figures)
    assert len(slowest) > 10 and max(slowest) < LIVENESS_TIMEOUT, figures
    assert max(spread) < SPREAD_SAFETY_BOUND, figures
    assert max(one_object) < ONE_OBJECT_SAFETY_BOUND, figures
    assert len(served) == len(expected) == BIG and served == expected
    assert not served & set(values[1::100]) and "new-2-499" in served and "more-2-499" in served


# ------------------------------------------------------------------ issue 12: group commit


def test_concurrent_patches_share_writes_and_keep_their_own_answers(
    scim: ScimClient, kube: client.ApiClient
) -> None:
    """Group commit: 24 concurrent member adds to one group, one failing PATCH (400
    noTarget) and one with a stale If-Match (412) among them. Each gets its own answer,
    the final state holds exactly the successful changes, and the API server saw fewer
    writes than requests (the group's generation counts its writes)."""
    gid = scim.create_group("Busy", members=[{"value": "seed"}])["id"]
    stale = scim.get(f"/Groups/{gid}").headers["etag"]
    _add(scim, gid, ["second"])  # the tag read above is now stale
    generation = _objects(kube, scim.namespace, gid)[0]["metadata"]["generation"]
    n = 24
    bodies: list[tuple[dict[str, Any], dict[str, str]]] = [
        (
            {
                "schemas": [PATCH],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": f"m-{i}"}]}],
            },
            {},
        )
        for i in range(n)
    ]
    bodies.insert(7, ({"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": "never-1"}]},
        {"op": "replace", "path": 'members[value eq "absent"].display', "value": "x"}]}, {}))  # fmt: skip
    bodies.insert(15, ({"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": "never-2"}]}]}, {"If-Match": stale}))  # fmt: skip
    answers: list[Any] = [None] * len(bodies)
    go = threading.Barrier(len(bodies))

    def send(i: int) -> None:
        go.wait()
        answers[i] = scim.patch(f"/Groups/{gid}", bodies[i][0], headers=bodies[i][1])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [a.status_code for a in answers]
    assert statuses[7] == 400 and answers[7].json()["scimType"] == "noTarget", answers[7].text
    assert statuses[15] == 412, answers[15].text
    assert [s for i, s in enumerate(statuses) if i not in (7, 15)] == [204] * n
    assert all(a.headers.get("etag") for i, a in enumerate(answers) if i not in (7, 15))
    assert _stored(kube, scim.namespace, gid) == {"seed", "second"} | {f"m-{i}" for i in range(n)}
    writes = _objects(kube, scim.namespace, gid)[0]["metadata"]["generation"] - generation
    print(f"{n} successful concurrent PATCHes, {writes} writes to the group")
    assert writes < n
    # the last answer's ETag is the group's version now
    final = scim.get(f"/Groups/{gid}").headers["etag"]
    assert final in {a.headers.get("etag") for a in answers}


def test_member_lists_stored_as_keyed_lists_still_read_and_write(
    scim: ScimClient, kube: client.ApiClient, control_plane: Any
) -> None:
    """The upgrade from ``x-kubernetes-list-type: map`` member lists to atomic ones is a
    schema change only: objects written under the old schema read and change as before,
    and the API server keeps one managedFields entry for the list, not one per member."""
    from scim_core.crds import all_crds

    def with_list_type(kind: str) -> list[dict[str, Any]]:
        crds = all_crds()
        for crd in crds:
            for version in crd["spec"]["versions"]:
                spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                if "members" in spec and kind == "map":
                    spec["members"].update(
                        {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["value"]}
                    )
        return crds

    control_plane.apply(with_list_type("map"))
    try:
        eventually(lambda: _served_list_type(kube) == "map", timeout=30)
        gid = "grp-old-shape"
        _store_big_group(kube, scim.namespace, gid, [f"old-{i:04d}" for i in range(INLINE_MAX_MEMBERS + 10)])
        old, _ = _objects(kube, scim.namespace, gid)
        assert 'k:{"value":"old-0000"}' in str(old["metadata"]["managedFields"])  # one entry per member
    finally:
        control_plane.apply(with_list_type("atomic"))
    eventually(lambda: _served_list_type(kube) == "atomic", timeout=30)
    eventually(lambda: len(_members(scim, gid)[0]) == INLINE_MAX_MEMBERS + 10, timeout=30)
    body = {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": 'members[value eq "old-0001"]'},
        {"op": "remove", "path": 'members[value eq "old-1005"]'},
        {"op": "add", "path": "members", "value": [{"value": "new-1"}]}]}  # fmt: skip
    # the API server re-initializes the kind's storage after a schema change (503 meanwhile);
    # the PATCH is idempotent, so the IdP's retry is what this does
    r = eventually(lambda: (a := scim.patch(f"/Groups/{gid}", body)).status_code != 503 and a, timeout=60)
    assert r.status_code == 204, r.text
    expected = {f"old-{i:04d}" for i in range(INLINE_MAX_MEMBERS + 10)} - {"old-0001", "old-1005"} | {"new-1"}
    assert _stored(kube, scim.namespace, gid) == expected
    assert _members(scim, gid)[0] == expected
    group, shards = _objects(kube, scim.namespace, gid)
    for obj in (group, *shards):  # rewritten under the atomic schema: no per-member entries left
        fields = json.dumps(
            [f for f in obj["metadata"]["managedFields"] if f["manager"] == c.API_FIELD_MANAGER]
        )
        assert "k:{" not in fields, fields[:500]


def _served_list_type(kube: client.ApiClient) -> str | None:
    crd = client.ApiextensionsV1Api(kube).read_custom_resource_definition(f"{c.SHARD_PLURAL}.{c.GROUP}")
    schema = crd.spec.versions[0].schema.open_apiv3_schema.properties["spec"].properties["members"]
    established = any(
        cond.type == "Established" and cond.status == "True" for cond in crd.status.conditions or []
    )
    kind: str | None = schema.x_kubernetes_list_type
    return kind if established else None


def test_no_member_is_stored_twice(scim: ScimClient, kube: client.ApiClient) -> None:
    """The member lists are atomic, so the schema no longer refuses a value listed twice
    (it did as a keyed list): the API keeps duplicates out. The same member added by one
    request twice, by concurrent requests, and again later is stored once."""
    gid = scim.create_group("Twice", members=[{"value": "u1"}, {"value": "u1"}])["id"]
    _add(scim, gid, ["u2", "u2", "u1"])
    threads = [threading.Thread(target=_add, args=(scim, gid, ["u3", "u1"])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    group, shards = _objects(kube, scim.namespace, gid)
    values = [m["value"] for o in (group, *shards) for m in o["spec"].get("members") or []]
    assert sorted(values) == ["u1", "u2", "u3"]
