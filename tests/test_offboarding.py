"""Offboarding at size: a user in many mapped groups is deactivated and the API server stops
allowing them anything (SubjectAccessReview), while everyone else keeps their access; also
with two operator replicas when the leader dies in the middle of it.
How fast (≤ 0.3 s for 100 groups) is a figure of ``make bench-operator``, not asserted here."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane
from scim_devenv.crds import install_crds

from .helpers import allowed, create_user, create_workspace, custom, eventually
from .test_least_privilege import OperatorProcess, install_rbac, sa_kubeconfig
from .test_operator_leader import FAST_LEASE, holder

pytestmark = pytest.mark.cluster
GROUPS = 30
#: Seconds from the standby taking the Lease to the deactivated users' access being gone: it
#: keeps its caches warm while standing by, so this is one reconcile, not a resync.
TAKEOVER_BOUND = 10.0


def _subjects(kube: client.ApiClient, namespace: str) -> list[set[str]]:
    """Per RoleBinding of the namespace, the names of its subjects."""
    rbac = client.RbacAuthorizationV1Api(kube)
    return [{s.name for s in rb.subjects or []} for rb in rbac.list_namespaced_role_binding(namespace).items]


def _teams(kube: client.ApiClient, namespace: str, users: dict[str, str]) -> None:
    """A workspace mapping ``team-*`` to view, ``users`` (id -> userName), and ``GROUPS``
    groups that all of them are in; returns once every group is bound with all of them."""
    create_workspace(
        kube,
        namespace,
        roleMappings=[{"name": "all", "groups": {"pattern": "team-.*"}, "clusterRole": "view"}],
    )
    for uid, user_name in users.items():
        create_user(kube, namespace, uid, user_name)
    for i in range(GROUPS):
        custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, {
            "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": f"grp-{i:02d}"},
            "spec": {"displayName": f"team-{i:02d}", "members": [{"value": uid} for uid in users]},
        })  # fmt: skip
    eventually(
        lambda: len(s := _subjects(kube, namespace)) == GROUPS and all(len(x) == len(users) for x in s),
        timeout=60,
    )


def _deactivate(kube: client.ApiClient, namespace: str, uid: str) -> None:
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.USER_PLURAL, uid, {"spec": {"active": False}}
    )


def test_deactivated_member_of_many_groups_is_denied_everywhere(
    kube: client.ApiClient, namespace: str, operator_running: None
) -> None:
    _teams(kube, namespace, {"usr-leaver": "leaver@example.com", "usr-stayer": "stayer@example.com"})
    assert allowed(kube, "leaver@example.com", namespace)
    _deactivate(kube, namespace, "usr-leaver")
    eventually(lambda: not allowed(kube, "leaver@example.com", namespace), timeout=30)
    eventually(lambda: all(s == {"stayer@example.com"} for s in _subjects(kube, namespace)), timeout=30)
    assert len(_subjects(kube, namespace)) == GROUPS
    assert allowed(kube, "stayer@example.com", namespace)


@pytest.fixture(scope="module")
def private_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[client.ApiClient, Path]]:
    """A control plane of its own (no session operator in it), the operator's RBAC installed:
    the admin client and the operator ServiceAccount's kubeconfig."""
    tmp = tmp_path_factory.mktemp("offboard-replicas")
    with ControlPlane(controller_manager=True) as cp:  # it aggregates the rules of ``view``
        install_crds(cp)
        install_rbac(cp)
        kube = config.new_client_from_config(config_file=str(cp.kubeconfig))
        yield kube, sa_kubeconfig(cp, "scim-operator", tmp)
        kube.close()


def test_offboarding_survives_the_leader_dying(
    private_plane: tuple[client.ApiClient, Path], tmp_path: Path
) -> None:
    """Two operator replicas; the leader is killed right after one deactivation (it may be
    half-way through the 30 groups) and before another: once the standby holds the Lease,
    both people lose access within ``TAKEOVER_BOUND``, and the others keep theirs."""
    kube, kubeconfig = private_plane
    ns = "offboard"
    client.CoreV1Api(kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    a = OperatorProcess(kubeconfig, tmp_path / "a.log", allowed="view", identity="off-a", **FAST_LEASE)
    b: OperatorProcess | None = None
    try:
        eventually(lambda: holder(kube) == "off-a", timeout=40)
        b = OperatorProcess(kubeconfig, tmp_path / "b.log", allowed="view", identity="off-b", **FAST_LEASE)
        standby = b
        eventually(lambda: standby.metric("scim_operator_leader") == 0, timeout=40)  # up, standing by
        users = {"usr-during": "during@example.com", "usr-after": "after@example.com"}
        _teams(kube, ns, {**users, "usr-stayer": "stayer@example.com"})
        assert all(allowed(kube, name, ns) for name in users.values())

        _deactivate(kube, ns, "usr-during")  # the leader starts on it...
        a.proc.send_signal(signal.SIGKILL)  # ...and dies
        a.proc.wait(timeout=10)
        _deactivate(kube, ns, "usr-after")  # no leader now: nothing can act on it yet
        assert allowed(kube, "after@example.com", ns)
        eventually(lambda: holder(kube) == "off-b", timeout=30, interval=0.05)
        took_over = time.monotonic()
        eventually(
            lambda: not any(allowed(kube, name, ns) for name in users.values()), timeout=30, interval=0.05
        )
        revoked = time.monotonic() - took_over
        print(f"access gone {revoked:.2f} s after the standby took the Lease")
        assert revoked <= TAKEOVER_BOUND, revoked
        eventually(lambda: all(s == {"stayer@example.com"} for s in _subjects(kube, ns)), timeout=30)
        assert len(_subjects(kube, ns)) == GROUPS
        assert allowed(kube, "stayer@example.com", ns)
    finally:
        a.stop(show_log=True)
        if b is not None:
            b.stop(show_log=True)
