"""Deleting a workspace removes every binding it granted, also in other namespaces (out of
the garbage collector's reach): Kopf's finalizer handler, run by the Lease holder."""

from __future__ import annotations

import pytest
from kubernetes import client

from scim_core import constants as c

from .helpers import create_user, create_workspace, custom, eventually
from .test_operator_rbac import _binding, _group, _subjects

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_running")]


def test_workspace_deletion_removes_bindings_elsewhere(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    extra = f"{namespace}-apps"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=extra, labels={"team": namespace}))
    )
    try:
        mapping = {"name": "apps", "groups": {"displayName": "Devs"}, "clusterRole": "view",
                   "namespaceSelector": {"matchLabels": {"team": namespace}}, "includeWorkspaceNamespace": False}  # fmt: skip
        create_workspace(kube, namespace, roleMappings=[mapping])
        create_user(kube, namespace, "usr-dev", "dev@example.com")
        _group(kube, namespace, "grp-devs", "Devs", ["usr-dev"])
        eventually(lambda: _subjects(kube, extra, "scim-grp-devs-apps") == ["dev@example.com"])
        ws = custom(kube).get_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws"
        )
        assert c.FINALIZER in ws["metadata"]["finalizers"]
        custom(kube).delete_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws")
        eventually(lambda: _binding(kube, extra, "scim-grp-devs-apps") is None, timeout=30)

        def gone() -> bool:
            items = custom(kube).list_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL
            )
            return not items["items"]

        eventually(gone, timeout=30)  # the finalizer was removed after the cleanup
    finally:
        core.delete_namespace(extra)
