"""The local control plane is real: TLS, RBAC authorizer, CRDs with server-side validation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane

pytestmark = pytest.mark.cluster


def test_rbac_is_enforced(namespace: str, impersonate: Callable[..., client.ApiClient]) -> None:
    nobody = client.CustomObjectsApi(impersonate("nobody@example.com"))
    with pytest.raises(ApiException) as err:
        nobody.list_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL)
    assert err.value.status == 403


def test_bound_user_can_list(
    kube: client.ApiClient, namespace: str, impersonate: Callable[..., client.ApiClient]
) -> None:
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"),
            subjects=[
                client.RbacV1Subject(
                    kind="User", name="reader@example.com", api_group="rbac.authorization.k8s.io"
                )
            ],
        ),
    )
    rbac.create_cluster_role(
        client.V1ClusterRole(
            metadata=client.V1ObjectMeta(name=f"scim-read-{namespace}"),
            rules=[client.V1PolicyRule(api_groups=[c.GROUP], resources=[c.GROUP_PLURAL], verbs=["list"])],
        )
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="scim-reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io",
                kind="ClusterRole",
                name=f"scim-read-{namespace}",
            ),
            subjects=[
                client.RbacV1Subject(
                    kind="User", name="reader@example.com", api_group="rbac.authorization.k8s.io"
                )
            ],
        ),
    )
    reader = client.CustomObjectsApi(impersonate("reader@example.com"))
    assert reader.list_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL)["items"] == []
    rbac.delete_cluster_role(f"scim-read-{namespace}")


def test_crds_served_with_short_names(control_plane: ControlPlane) -> None:
    out = control_plane.kubectl("api-resources", f"--api-group={c.GROUP}", "-o", "name")
    expected = (c.WORKSPACE_PLURAL, c.GROUP_PLURAL, c.SHARD_PLURAL, c.USER_PLURAL)
    assert set(out.split()) == {f"{p}.{c.GROUP}" for p in expected}
    wide = control_plane.kubectl("api-resources", f"--api-group={c.GROUP}")
    for short in ("scimws", "scimgrp", "scimusr"):
        assert short in wide


def test_two_control_planes_side_by_side(control_plane: ControlPlane) -> None:
    with ControlPlane() as other:
        assert other.port != control_plane.port
        assert other.kubectl("get", "--raw", "/readyz").strip() == "ok"
    assert control_plane.kubectl("get", "--raw", "/readyz").strip() == "ok"
