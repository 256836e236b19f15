"""Offboarding at size: a user in many mapped groups is deactivated and the API server stops
allowing them anything (SubjectAccessReview), while everyone else keeps their access.
How fast (≤ 0.3 s for 100 groups) is a figure of ``make bench-operator``, not asserted here."""

from __future__ import annotations

import pytest
from kubernetes import client

from scim_core import constants as c

from .helpers import create_user, create_workspace, custom, eventually

pytestmark = pytest.mark.cluster
GROUPS = 30


def _allowed(kube: client.ApiClient, user: str, namespace: str) -> bool:
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb="get", resource="pods"),
        )
    )
    return bool(client.AuthorizationV1Api(kube).create_subject_access_review(review).status.allowed)


def test_deactivated_member_of_many_groups_is_denied_everywhere(
    kube: client.ApiClient, namespace: str, operator_running: None
) -> None:
    create_workspace(
        kube,
        namespace,
        roleMappings=[{"name": "all", "groups": {"pattern": "team-.*"}, "clusterRole": "view"}],
    )
    create_user(kube, namespace, "usr-leaver", "leaver@example.com")
    create_user(kube, namespace, "usr-stayer", "stayer@example.com")
    for i in range(GROUPS):
        custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, {
            "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": f"grp-{i:02d}"},
            "spec": {"displayName": f"team-{i:02d}", "members": [{"value": "usr-leaver"}, {"value": "usr-stayer"}]},
        })  # fmt: skip
    rbac = client.RbacAuthorizationV1Api(kube)

    def subjects() -> list[set[str]]:
        return [
            {s.name for s in rb.subjects or []} for rb in rbac.list_namespaced_role_binding(namespace).items
        ]

    eventually(lambda: len(subjects()) == GROUPS and all(len(s) == 2 for s in subjects()), timeout=60)
    assert _allowed(kube, "leaver@example.com", namespace)
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.USER_PLURAL, "usr-leaver", {"spec": {"active": False}}
    )
    eventually(lambda: not _allowed(kube, "leaver@example.com", namespace), timeout=30)
    eventually(lambda: all(s == {"stayer@example.com"} for s in subjects()), timeout=30)
    assert len(subjects()) == GROUPS
    assert _allowed(kube, "stayer@example.com", namespace)
