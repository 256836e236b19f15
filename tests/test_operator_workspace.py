"""Deleting a workspace removes every binding it granted, also in other namespaces (out of
the garbage collector's reach). Finalizers only where the garbage collector cannot follow:
a group carries one only while it has a binding in another namespace; workspaces none."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from scim_core import constants as c

from .helpers import create_user, create_workspace, custom, eventually
from .test_operator_rbac import _binding, _group, _subjects

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_running")]


def _finalizers(kube: client.ApiClient, ns: str, plural: str, name: str) -> list[str]:
    obj = custom(kube).get_namespaced_custom_object(c.GROUP, c.VERSION, ns, plural, name)
    return list(obj["metadata"].get("finalizers") or [])


@pytest.fixture
def apps_namespace(kube: client.ApiClient, namespace: str) -> Any:
    """A namespace the workspace's mappings may select (label team=<workspace namespace>)."""
    core = client.CoreV1Api(kube)
    extra = f"{namespace}-apps"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=extra, labels={"team": namespace}))
    )
    yield extra
    core.delete_namespace(extra)


def test_workspace_deletion_removes_bindings_elsewhere(
    kube: client.ApiClient, namespace: str, apps_namespace: str
) -> None:
    extra = apps_namespace
    mapping = {"name": "apps", "groups": {"displayName": "Devs"}, "clusterRole": "view",
               "namespaceSelector": {"matchLabels": {"team": namespace}}, "includeWorkspaceNamespace": False}  # fmt: skip
    create_workspace(kube, namespace, roleMappings=[mapping])
    create_user(kube, namespace, "usr-dev", "dev@example.com")
    _group(kube, namespace, "grp-devs", "Devs", ["usr-dev"])
    eventually(lambda: _subjects(kube, extra, "scim-grp-devs-apps") == ["dev@example.com"])
    # the binding elsewhere is out of the garbage collector's reach: its group holds the finalizer
    eventually(lambda: c.FINALIZER in _finalizers(kube, namespace, c.GROUP_PLURAL, "grp-devs"))
    assert _finalizers(kube, namespace, c.WORKSPACE_PLURAL, "ws") == []
    custom(kube).delete_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws")
    eventually(lambda: _binding(kube, extra, "scim-grp-devs-apps") is None, timeout=30)

    def gone() -> bool:
        items = custom(kube).list_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL)
        return not items["items"]

    eventually(gone, timeout=30)
    # nothing elsewhere any more: the group's finalizer is gone too
    eventually(lambda: _finalizers(kube, namespace, c.GROUP_PLURAL, "grp-devs") == [])


def test_group_finalizer_only_while_a_binding_lives_elsewhere(
    kube: client.ApiClient, namespace: str, apps_namespace: str
) -> None:
    local = {"name": "view", "groups": {"displayName": "Devs"}, "clusterRole": "view"}
    create_workspace(kube, namespace, roleMappings=[local])
    create_user(kube, namespace, "usr-dev", "dev@example.com")
    group = _group(kube, namespace, "grp-devs", "Devs", ["usr-dev"])
    eventually(lambda: _subjects(kube, namespace, "scim-grp-devs-view") == ["dev@example.com"])
    rb = _binding(kube, namespace, "scim-grp-devs-view")
    (owner,) = rb.metadata.owner_references  # garbage-collected with its group
    assert (owner.kind, owner.name, owner.uid) == (c.GROUP_KIND, "grp-devs", group["metadata"]["uid"])
    assert _finalizers(kube, namespace, c.GROUP_PLURAL, "grp-devs") == []
    # a mapping that also binds in another namespace: the finalizer comes first, then the binding
    elsewhere = {**local, "namespaceSelector": {"matchLabels": {"team": namespace}}}
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws", {"spec": {"roleMappings": [elsewhere]}}
    )
    eventually(lambda: _subjects(kube, apps_namespace, "scim-grp-devs-view") == ["dev@example.com"])
    assert c.FINALIZER in _finalizers(kube, namespace, c.GROUP_PLURAL, "grp-devs")
    assert not _binding(kube, apps_namespace, "scim-grp-devs-view").metadata.owner_references
    # back to the workspace namespace only: the binding elsewhere and the finalizer go
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws", {"spec": {"roleMappings": [local]}}
    )
    eventually(lambda: _binding(kube, apps_namespace, "scim-grp-devs-view") is None)
    eventually(lambda: _finalizers(kube, namespace, c.GROUP_PLURAL, "grp-devs") == [])
    assert _subjects(kube, namespace, "scim-grp-devs-view") == ["dev@example.com"]


def test_finalizers_of_earlier_releases_are_dropped(kube: client.ApiClient, namespace: str) -> None:
    """Earlier releases put the finalizer on every workspace (Kopf) and every group: the next
    reconcile removes the ones the garbage collector makes unnecessary."""
    body = {
        "apiVersion": c.API_VERSION, "kind": c.WORKSPACE_KIND,
        "metadata": {"name": "ws", "finalizers": [c.FINALIZER]},
        "spec": {"displayName": "Old", "roleMappings": [
            {"name": "view", "groups": {"displayName": "Devs"}, "clusterRole": "view"}]},
    }  # fmt: skip
    custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, body)
    create_user(kube, namespace, "usr-dev", "dev@example.com")
    group = {
        "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND,
        "metadata": {"name": "grp-devs", "finalizers": [c.FINALIZER, "example.com/other"]},
        "spec": {"displayName": "Devs", "members": [{"value": "usr-dev"}]},
    }  # fmt: skip
    custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, group)
    eventually(lambda: _subjects(kube, namespace, "scim-grp-devs-view") == ["dev@example.com"])
    eventually(lambda: _finalizers(kube, namespace, c.WORKSPACE_PLURAL, "ws") == [])
    eventually(lambda: _finalizers(kube, namespace, c.GROUP_PLURAL, "grp-devs") == ["example.com/other"])
    custom(kube).patch_namespaced_custom_object(  # let the namespace go
        c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, "grp-devs", {"metadata": {"finalizers": []}}
    )
