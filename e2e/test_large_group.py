"""A group past 1,000 members, created and changed through the Service: every change lands
whichever API Pod answers, in SCIM and in RBAC (checked by SubjectAccessReview)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client
from tests.helpers import create_user, eventually
from tests.test_e2e_idp import GROUP, PATCH, Idp

from .conftest import ClusterStack
from .results import Results

N = 1100
NS = "large-group"


def _login(i: int) -> str:
    return f"big{i:04d}@example.com"


def test_group_past_a_thousand_members(stack: ClusterStack, results: Results) -> None:
    client.CoreV1Api(stack.kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: create_user(stack.kube, NS, f"usr-big{i:04d}", _login(i)), range(N)))
    idp = Idp(stack, NS)
    members = [{"value": f"usr-big{i:04d}"} for i in range(N)]
    t0 = time.monotonic()
    status, g = idp.call(
        "POST", "/Groups", {"schemas": [GROUP], "displayName": "Everyone", "members": members}
    )
    assert status == 201, g
    gid = g["id"]
    sample = [0, 1, 499, 999, 1000, N - 1]
    for i in sample:
        eventually(lambda i=i: idp.access(_login(i)) == "view", timeout=120, interval=0.5)
    bound = time.monotonic() - t0

    # removals one request at a time: each lands whichever Pod answers it
    removed = list(range(0, N, 97))
    for i in removed:
        op = {"op": "remove", "path": f'members[value eq "usr-big{i:04d}"]'}
        status, body = idp.call("PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [op]})
        assert status == 204, body
    add_back = removed[:3]
    op = {"op": "add", "path": "members", "value": [{"value": f"usr-big{i:04d}"} for i in add_back]}
    assert idp.call("PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [op]})[0] == 204
    want = {f"usr-big{i:04d}" for i in range(N)} - {f"usr-big{i:04d}" for i in removed[3:]}

    def served_members() -> bool:
        status, body = idp.call("GET", f"/Groups/{gid}")
        return status == 200 and {m["value"] for m in body["members"]} == want

    for _ in range(4):  # consecutive reads, likely from both Pods
        eventually(served_members, timeout=60, interval=0.5)
    for i in removed[3:]:
        eventually(lambda i=i: idp.access(_login(i)) == "none", timeout=60, interval=0.5)
    kept_at = time.monotonic()
    for i in [*add_back, 1, 998, N - 2]:  # the add-back is the last change: the operator may still be on it
        eventually(lambda i=i: idp.access(_login(i)) == "view", timeout=60, interval=0.2)
    kept_s = time.monotonic() - kept_at
    results.record("large_group", members=N, create_to_bound_s=round(bound, 1), single_removals=len(removed),
                   kept_members_checked_s=round(kept_s, 2))  # fmt: skip
