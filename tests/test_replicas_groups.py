"""Group commit across two API processes: concurrent PATCHes to one group, alternating
between the replicas, each answered with its own result; the group ends as exactly the
union of the adds minus the removes, and both replicas then answer the same ETag."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
from kubernetes import client

from scim_core import constants as c

from .conftest import ScimClient
from .helpers import custom, eventually
from .replicas import api_processes, replica_clients  # noqa: F401 - fixtures

pytestmark = pytest.mark.cluster
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
REQUESTS = 48
BAD_EVERY = 8  # every 8th request carries a bad path next to its add


def _ops(i: int) -> list[dict[str, Any]]:
    """Request ``i``: add one member of its own, remove one of the starting members (the
    first half of the requests), and a bad path (every ``BAD_EVERY``-th)."""
    ops: list[dict[str, Any]] = [{"op": "add", "path": "members", "value": [{"value": f"usr-add-{i}"}]}]
    if i < REQUESTS // 2:
        ops.append({"op": "remove", "path": f'members[value eq "usr-start-{i}"]'})
    if i % BAD_EVERY == BAD_EVERY - 1:  # found in the group's round, next to the others
        ops.append(_BAD[i // BAD_EVERY % 2][1])
    return ops


#: (scimType, operation): a path naming no attribute; a replace whose filter matches nothing
_BAD = [
    ("invalidPath", {"op": "replace", "path": "members.nope", "value": "x"}),
    ("noTarget", {"op": "replace", "path": 'members[value eq "usr-nobody"]', "value": [{"value": "usr-x"}]}),
]


def _values(body: dict[str, Any]) -> set[str]:
    return {m["value"] for m in body.get("members") or []}


def test_concurrent_patches_through_two_processes(
    replica_clients: list[ScimClient],  # noqa: F811 - the fixture
    kube: client.ApiClient,
) -> None:
    a, b = replica_clients
    start = {f"usr-start-{i}" for i in range(REQUESTS)}
    gid = a.create_group("Busy", members=[{"value": v} for v in sorted(start)])["id"]
    eventually(lambda: b.get(f"/Groups/{gid}").status_code == 200, timeout=10)

    def send(i: int) -> tuple[int, Any]:
        r = replica_clients[i % 2].patch(
            f"/Groups/{gid}", {"schemas": [PATCH], "Operations": _ops(i)}, params={"attributes": "members"}
        )
        return r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(send, range(REQUESTS)))

    bad = {i for i in range(REQUESTS) if i % BAD_EVERY == BAD_EVERY - 1}
    for i, (status, body) in enumerate(answers):
        if i in bad:  # its own error, alone: nothing of it applied
            assert status == 400 and body["scimType"] == _BAD[i // BAD_EVERY % 2][0], (i, body)
            continue
        assert status == 200, (i, body)
        got = _values(body)  # its own change is in the group it is answered with
        assert f"usr-add-{i}" in got, i
        if i < REQUESTS // 2:
            assert f"usr-start-{i}" not in got, i

    good = [i for i in range(REQUESTS) if i not in bad]
    expected = (start - {f"usr-start-{i}" for i in good if i < REQUESTS // 2}) | {
        f"usr-add-{i}" for i in good
    }
    stored = custom(kube).get_namespaced_custom_object(c.GROUP, c.VERSION, a.namespace, c.GROUP_PLURAL, gid)
    assert {m["value"] for m in stored["spec"]["members"]} == expected  # nothing lost, nothing extra

    def same_everywhere() -> bool:
        seen = [
            (r.get(f"/Groups/{gid}").headers.get("etag"), _values(r.get(f"/Groups/{gid}").json()))
            for r in (a, b)
        ]
        return seen[0] == seen[1] and seen[0][1] == expected

    eventually(same_everywhere, timeout=10)
    # the ETag one replica answers is a valid precondition on the other
    tag = a.get(f"/Groups/{gid}").headers["etag"]
    r = b.patch(
        f"/Groups/{gid}", {"schemas": [PATCH], "Operations": _ops(REQUESTS)}, headers={"If-Match": tag}
    )
    assert r.status_code == 204, r.text
