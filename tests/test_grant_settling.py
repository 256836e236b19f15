"""An IdP's burst of member additions costs one RoleBinding write and one status write
(docs/operator.md, "Grants wait for a burst to end"), and a removal never waits: the operator
under its ServiceAccount, every write it makes counted from the API server's audit log.

The wait is long here (``QUIET`` seconds) so that the burst, however slow the machine, ends
inside it: what is checked is the number of writes, not how fast they come."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane

from .helpers import create_user, create_workspace, custom, eventually
from .test_least_privilege import OperatorProcess
from .test_operator_leader import audited_control_plane, writes_by_replica

pytestmark = pytest.mark.cluster
NS = "settling"
QUIET = 6.0  # SCIM_GRANT_SETTLE_SECONDS: longer than the burst takes on a loaded machine
USERS = [f"usr-{i}" for i in range(1, 6)]


@pytest.fixture(scope="module")
def settling_operator(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ControlPlane, client.ApiClient]]:
    tmp = tmp_path_factory.mktemp("settling")
    with audited_control_plane(tmp) as (cp, kube, kubeconfig):
        client.CoreV1Api(kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
        create_workspace(
            kube, NS, roleMappings=[{"name": "all", "groups": {"pattern": ".*"}, "clusterRole": "view"}]
        )
        for uid in USERS:
            create_user(kube, NS, uid, f"{uid}@example.com")
        op = OperatorProcess(
            kubeconfig, tmp / "operator.log", allowed="view", identity="settling",
            SCIM_GRANT_SETTLE_SECONDS=str(QUIET), SCIM_GRANT_SETTLE_LONGEST_SECONDS=str(10 * QUIET),
        )  # fmt: skip
        try:
            eventually(lambda: op.metric("scim_operator_leader") == 1, timeout=40)
            yield cp, kube
        finally:
            op.stop(show_log=True)


def _subjects(kube: client.ApiClient, group: str) -> list[str]:
    binding = client.RbacAuthorizationV1Api(kube).read_namespaced_role_binding(f"scim-{group}-all", NS)
    return sorted(s.name for s in binding.subjects or [])


def _members(uids: list[str]) -> list[dict[str, str]]:
    return [{"value": u} for u in uids]


def _create_group(kube: client.ApiClient, group: str, uids: list[str]) -> None:
    custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, NS, c.GROUP_PLURAL, {
        "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": group},
        "spec": {"displayName": group.title(), "members": _members(uids)},
    })  # fmt: skip


def _set_members(kube: client.ApiClient, group: str, uids: list[str]) -> None:
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, NS, c.GROUP_PLURAL, group, {"spec": {"members": _members(uids)}}
    )


def _operator_writes(cp: ControlPlane, group: str) -> list[str]:
    """What the operator wrote about ``group``: its binding, its status, its Events."""
    return [
        what for _, _, what in writes_by_replica(cp) if what.endswith((f" {group}", f" scim-{group}-all"))
    ]


def test_a_burst_of_additions_costs_one_binding_write_and_one_status_write(
    settling_operator: tuple[ControlPlane, client.ApiClient],
) -> None:
    cp, kube = settling_operator
    _create_group(kube, "burst", USERS[:1])
    for n in range(2, len(USERS) + 1):  # the IdP's PATCHes, one member more each
        _set_members(kube, "burst", USERS[:n])
    want = sorted(f"{u}@example.com" for u in USERS)
    eventually(lambda: _subjects(kube, "burst") == want, timeout=10 * QUIET)

    def status_written() -> bool:
        group = custom(kube).get_namespaced_custom_object(c.GROUP, c.VERSION, NS, c.GROUP_PLURAL, "burst")
        return bool((group.get("status") or {}).get("observedGeneration") == group["metadata"]["generation"])

    eventually(status_written)
    writes = _operator_writes(cp, "burst")
    assert writes.count("patch rolebindings scim-burst-all") == 1, writes
    assert writes.count("patch scimgroups/status burst") == 1, writes


def test_a_removal_does_not_wait_for_the_burst_to_end(
    settling_operator: tuple[ControlPlane, client.ApiClient],
) -> None:
    """Taking a member away is written at once, even with grants of the same group waiting."""
    _, kube = settling_operator
    _create_group(kube, "removal", USERS[:2])
    eventually(lambda: len(_subjects(kube, "removal")) == 2, timeout=10 * QUIET)
    # one PATCH that grants USERS[2] and takes USERS[0] away: the removal cannot wait, so
    # the grant goes with it, well inside the wait a grant alone would have
    _set_members(kube, "removal", USERS[1:3])
    eventually(
        lambda: _subjects(kube, "removal") == [f"{u}@example.com" for u in USERS[1:3]], timeout=QUIET / 2
    )
