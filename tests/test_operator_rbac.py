"""Groups become RoleBindings on a real control plane (RBAC authorizer on)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from scim_core import constants as c

from .helpers import allowed, condition, create_user, create_workspace, custom, eventually

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_running")]

MAPPINGS = [
    {"name": "admins", "groups": {"displayName": "Admins"}, "clusterRole": "edit"},
    {"name": "all", "groups": {"pattern": "team-.*"}, "clusterRole": "view"},
]


def _group(kube: client.ApiClient, ns: str, name: str, display: str, members: list[str]) -> dict[str, Any]:
    body = {
        "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": name},
        "spec": {"displayName": display, "members": [{"value": m} for m in members]},
    }  # fmt: skip
    obj: dict[str, Any] = custom(kube).create_namespaced_custom_object(
        c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, body
    )
    return obj


def _patch_group(kube: client.ApiClient, ns: str, name: str, spec: dict[str, Any]) -> None:
    custom(kube).patch_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, name, {"spec": spec})


def _get_group(kube: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = custom(kube).get_namespaced_custom_object(
        c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, name
    )
    return obj


def _binding(kube: client.ApiClient, ns: str, name: str) -> Any:
    try:
        return client.RbacAuthorizationV1Api(kube).read_namespaced_role_binding(name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _subjects(kube: client.ApiClient, ns: str, name: str) -> list[str] | None:
    rb = _binding(kube, ns, name)
    return None if rb is None else sorted(s.name for s in rb.subjects or [])


def _can(kube: client.ApiClient, user: str, verb: str, resource: str, ns: str, group: str = "") -> bool:
    return allowed(kube, user, ns, verb, resource, group)


@pytest.fixture
def ws(kube: client.ApiClient, namespace: str) -> str:
    create_workspace(
        kube, namespace, subjects={"prefix": "oidc:", "userField": "userName"}, roleMappings=MAPPINGS
    )
    create_user(kube, namespace, "usr-ada", "ada@example.com")
    create_user(kube, namespace, "usr-bob", "bob@example.com")
    return namespace


def test_group_becomes_rolebinding(kube: client.ApiClient, ws: str) -> None:
    g = _group(kube, ws, "grp-admins", "Admins", ["usr-ada", "usr-bob"])
    assert eventually(lambda: _subjects(kube, ws, "scim-grp-admins-admins")) == [
        "oidc:ada@example.com",
        "oidc:bob@example.com",
    ]
    rb = _binding(kube, ws, "scim-grp-admins-admins")
    assert rb.role_ref.kind == "ClusterRole" and rb.role_ref.name == "edit"
    assert (
        rb.metadata.labels[c.MANAGED_BY_LABEL] == c.MANAGED_BY_VALUE
        and rb.metadata.labels[c.GROUP_LABEL] == "grp-admins"
    )
    assert rb.metadata.owner_references[0].uid == g["metadata"]["uid"]
    eventually(lambda: _can(kube, "oidc:ada@example.com", "update", "deployments", ws, "apps"))

    def synced() -> dict[str, Any] | None:
        obj = _get_group(kube, ws, "grp-admins")
        ready = condition(obj, "Ready")
        return (
            obj if ready and ready["status"] == "True" and obj["status"].get("boundSubjects") == 2 else None
        )

    status = eventually(synced)["status"]
    assert (
        status["memberCount"] == 2 and status["unresolvedMembers"] == 0 and status["observedGeneration"] == 1
    )
    assert status["roleBindings"] == [f"{ws}/scim-grp-admins-admins"] and status["lastSyncTime"]
    assert condition(_get_group(kube, ws, "grp-admins"), "Synced")["status"] == "True"  # type: ignore[index]
    eventually(
        lambda: any(
            e.reason == "RoleBindingCreated" and e.involved_object.name == "grp-admins"
            for e in client.CoreV1Api(kube).list_namespaced_event(ws).items
        )
    )
    out_of_scope = _group(kube, ws, "grp-other", "Other", ["usr-ada"])
    assert out_of_scope
    eventually(lambda: condition(_get_group(kube, ws, "grp-other"), "Ready"))
    assert _get_group(kube, ws, "grp-other")["status"]["roleBindings"] == []


def test_membership_changes_and_offboarding(kube: client.ApiClient, ws: str) -> None:
    _group(kube, ws, "grp-team", "team-a", ["usr-ada"])
    name = "scim-grp-team-all"
    eventually(lambda: _subjects(kube, ws, name) == ["oidc:ada@example.com"])
    _patch_group(kube, ws, "grp-team", {"members": [{"value": "usr-ada"}, {"value": "usr-bob"}]})
    eventually(lambda: _subjects(kube, ws, name) == ["oidc:ada@example.com", "oidc:bob@example.com"])
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, ws, c.USER_PLURAL, "usr-bob", {"spec": {"active": False}}
    )
    eventually(lambda: _subjects(kube, ws, name) == ["oidc:ada@example.com"], timeout=5)
    eventually(lambda: not _can(kube, "oidc:bob@example.com", "get", "pods", ws))
    custom(kube).delete_namespaced_custom_object(c.GROUP, c.VERSION, ws, c.USER_PLURAL, "usr-ada")
    eventually(lambda: _subjects(kube, ws, name) is None, timeout=5)  # nobody left: no binding


def test_unresolved_member_bound_once_user_exists(kube: client.ApiClient, ws: str) -> None:
    _group(kube, ws, "grp-late", "team-late", ["usr-ada", "usr-carol"])
    eventually(lambda: _get_group(kube, ws, "grp-late").get("status", {}).get("unresolvedMembers") == 1)
    assert _get_group(kube, ws, "grp-late")["status"]["unresolvedSample"] == ["usr-carol"]
    create_user(kube, ws, "usr-carol", "carol@example.com")
    eventually(
        lambda: _subjects(kube, ws, "scim-grp-late-all") == ["oidc:ada@example.com", "oidc:carol@example.com"]
    )
    eventually(lambda: _get_group(kube, ws, "grp-late")["status"]["unresolvedMembers"] == 0)


def test_drift_is_repaired(kube: client.ApiClient, ws: str) -> None:
    _group(kube, ws, "grp-drift", "team-drift", ["usr-ada"])
    name = "scim-grp-drift-all"
    eventually(lambda: _subjects(kube, ws, name) == ["oidc:ada@example.com"])
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.patch_namespaced_role_binding(
        name, ws, {"subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory"}]}
    )
    eventually(lambda: _subjects(kube, ws, name) == ["oidc:ada@example.com"], timeout=5)
    rbac.delete_namespaced_role_binding(name, ws)
    eventually(lambda: _subjects(kube, ws, name) == ["oidc:ada@example.com"], timeout=5)


def test_allow_list_refusal(kube: client.ApiClient, namespace: str) -> None:
    create_workspace(
        kube,
        namespace,
        roleMappings=[{"name": "root", "groups": {"displayName": "Root"}, "clusterRole": "cluster-admin"}],
    )
    create_user(kube, namespace, "usr-eve", "eve@example.com")
    _group(kube, namespace, "grp-root", "Root", ["usr-eve"])

    def refused() -> dict[str, Any] | None:
        cond = condition(_get_group(kube, namespace, "grp-root"), "Synced")
        # NoWorkspace: the group's watch event came before the workspace's (a passing state)
        return cond if cond and cond["status"] == "False" and cond["reason"] != "NoWorkspace" else None

    cond = eventually(refused)
    assert cond["reason"] == "RoleNotAllowed" and "cluster-admin" in cond["message"]
    assert _binding(kube, namespace, "scim-grp-root-root") is None
    eventually(
        lambda: any(
            e.type == "Warning" and e.reason == "RoleNotAllowed"
            for e in client.CoreV1Api(kube).list_namespaced_event(namespace).items
        )
    )


def test_namespace_selector_and_cleanup(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    extra = f"{namespace}-apps"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=extra)))
    try:
        mapping = {"name": "apps", "groups": {"displayName": "Devs"}, "clusterRole": "view",
                   "namespaceSelector": {"matchLabels": {"team": namespace}}, "includeWorkspaceNamespace": False}  # fmt: skip
        create_workspace(kube, namespace, roleMappings=[mapping])
        create_user(kube, namespace, "usr-dev", "dev@example.com")
        _group(kube, namespace, "grp-devs", "Devs", ["usr-dev"])
        core.patch_namespace(extra, {"metadata": {"labels": {"team": namespace}}})
        eventually(lambda: _subjects(kube, extra, "scim-grp-devs-apps") == ["dev@example.com"])
        assert _binding(kube, namespace, "scim-grp-devs-apps") is None
        unmanaged = client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="hand-made", labels={c.GROUP_LABEL: "grp-devs"}),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"),
            subjects=[
                client.RbacV1Subject(kind="User", name="someone", api_group="rbac.authorization.k8s.io")
            ],
        )
        client.RbacAuthorizationV1Api(kube).create_namespaced_role_binding(extra, unmanaged)
        core.patch_namespace(extra, {"metadata": {"labels": {"team": "other"}}})
        eventually(lambda: _binding(kube, extra, "scim-grp-devs-apps") is None)
        core.patch_namespace(extra, {"metadata": {"labels": {"team": namespace}}})
        eventually(lambda: _binding(kube, extra, "scim-grp-devs-apps") is not None)
        custom(kube).delete_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, "grp-devs"
        )
        eventually(lambda: _binding(kube, extra, "scim-grp-devs-apps") is None)
        assert _binding(kube, extra, "hand-made") is not None  # never touched
    finally:
        core.delete_namespace(extra)


def test_workspace_mapping_change_rebinds(kube: client.ApiClient, ws: str) -> None:
    _group(kube, ws, "grp-admins", "Admins", ["usr-ada"])
    eventually(lambda: _binding(kube, ws, "scim-grp-admins-admins") is not None)
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, ws, c.WORKSPACE_PLURAL, "ws",
        {"spec": {"roleMappings": [{"name": "admins", "groups": {"displayName": "Admins"}, "clusterRole": "view"}]}},
    )  # fmt: skip
    eventually(
        lambda: (
            (rb := _binding(kube, ws, "scim-grp-admins-admins")) is not None and rb.role_ref.name == "view"
        )
    )


def test_user_status(kube: client.ApiClient, ws: str) -> None:
    _group(kube, ws, "grp-s1", "team-s1", ["usr-ada"])
    _group(kube, ws, "grp-s2", "team-s2", ["usr-ada", "usr-bob"])

    def user(name: str) -> dict[str, Any]:
        obj: dict[str, Any] = custom(kube).get_namespaced_custom_object(
            c.GROUP, c.VERSION, ws, c.USER_PLURAL, name
        )
        return obj

    eventually(lambda: user("usr-ada").get("status", {}).get("groups") == 2)
    ready = condition(user("usr-ada"), "Ready")
    assert ready and ready["status"] == "True" and ready["reason"] == "Active"
    assert user("usr-ada")["status"]["observedGeneration"] == user("usr-ada")["metadata"]["generation"]
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, ws, c.USER_PLURAL, "usr-bob", {"spec": {"active": False}}
    )
    eventually(lambda: (condition(user("usr-bob"), "Ready") or {}).get("reason") == "Inactive")
    _patch_group(kube, ws, "grp-s2", {"members": [{"value": "usr-bob"}]})
    eventually(lambda: user("usr-ada")["status"]["groups"] == 1)
