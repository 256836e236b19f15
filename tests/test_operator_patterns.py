"""Role-mapping patterns on a real control plane: a hostile pattern neither hangs nor slows
the operator, and a pattern RE2 refuses is reported on the workspace and binds nothing."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from scim_core import constants as c
from scim_core.resources import MAX_PATTERN_LENGTH

from .helpers import condition, create_user, create_workspace, custom, eventually, get_workspace

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_running")]


def _group(kube: client.ApiClient, ns: str, name: str, display: str, members: list[str]) -> None:
    body = {
        "apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": name},
        "spec": {"displayName": display, "members": [{"value": m} for m in members]},
    }  # fmt: skip
    custom(kube).create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, body)


def _ada_in_groups(
    kube: client.ApiClient, ns: str, mappings: dict[str, dict[str, str]], groups: dict[str, str]
) -> None:
    """A workspace whose ``mappings`` (name -> group selector) each grant ``view``, the user
    ada, and ``groups`` (name -> displayName) with ada in each."""
    create_workspace(
        kube, ns, roleMappings=[{"name": n, "groups": g, "clusterRole": "view"} for n, g in mappings.items()]
    )
    create_user(kube, ns, "usr-ada", "ada@example.com")
    for name, display in groups.items():
        _group(kube, ns, name, display, ["usr-ada"])


def _binding_subjects(kube: client.ApiClient, ns: str, name: str) -> list[str] | None:
    try:
        rb = client.RbacAuthorizationV1Api(kube).read_namespaced_role_binding(name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return sorted(s.name for s in rb.subjects or [])


def _ready(kube: client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    obj: dict[str, Any] = custom(kube).get_namespaced_custom_object(
        c.GROUP, c.VERSION, ns, c.GROUP_PLURAL, name
    )
    return obj if condition(obj, "Synced") else None


def test_catastrophic_pattern_neither_hangs_nor_slows_the_operator(
    kube: client.ApiClient, namespace: str
) -> None:
    """``(a+)+`` against 40 a's and a '!' backtracks for about an hour in Python's re, on
    the operator's event loop: every reconcile in every workspace would wait for it."""
    _ada_in_groups(
        kube, namespace, {"evil": {"pattern": "(a+)+"}, "team": {"pattern": "(?i)team-.*"}},
        # the last: the pattern still works as a pattern
        {"grp-evil": "a" * 40 + "!", "grp-team": "Team-Blue", "grp-aaa": "aaaa"},
    )  # fmt: skip
    assert eventually(lambda: _binding_subjects(kube, namespace, "scim-grp-team-team"), timeout=10) == [
        "ada@example.com"
    ]
    assert eventually(lambda: _binding_subjects(kube, namespace, "scim-grp-aaa-evil"), timeout=10)
    evil = eventually(lambda: _ready(kube, namespace, "grp-evil"), timeout=10)
    assert evil["status"]["roleBindings"] == []
    valid = eventually(lambda: condition(get_workspace(kube, namespace), "RoleMappingsValid"))
    assert valid["status"] == "True" and valid["reason"] == "MappingsValid"


def test_pattern_refused_by_re2_is_reported_and_binds_nothing(kube: client.ApiClient, namespace: str) -> None:
    """A pattern the API server's schema accepts but the operator's RE2 refuses (here: over
    its memory budget; or any pattern stored before the CRD checked syntax) matches no
    group, and the workspace says why."""
    _ada_in_groups(
        kube, namespace, {"huge": {"pattern": "\\pL{1000}"}, "ok": {"displayName": "Ops"}},
        {"grp-letters": "x" * 200, "grp-ops": "Ops"},
    )  # fmt: skip

    def refused() -> dict[str, Any] | None:
        cond = condition(get_workspace(kube, namespace), "RoleMappingsValid")
        return cond if cond and cond["status"] == "False" else None

    cond = eventually(refused)
    assert cond["reason"] == "InvalidPattern" and "huge" in cond["message"] and "too large" in cond["message"]
    eventually(
        lambda: any(
            e.type == "Warning" and e.reason == "InvalidPattern"
            for e in client.CoreV1Api(kube).list_namespaced_event(namespace).items
        )
    )
    assert eventually(lambda: _binding_subjects(kube, namespace, "scim-grp-ops-ok")) == ["ada@example.com"]
    letters = eventually(lambda: _ready(kube, namespace, "grp-letters"))
    assert letters["status"]["roleBindings"] == []
    assert condition(get_workspace(kube, namespace), "Ready")["status"] == "True"  # type: ignore[index]


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        ("a" * (MAX_PATTERN_LENGTH + 1), "Too long"),
        ("", "at least 1"),
        # the API server's CEL matches() parses RE2 syntax: what it cannot parse is refused
        ("(?=admin).*", "pattern must be a valid RE2 regular expression"),
        ("(a)\\1", "invalid escape sequence"),
        ("team-[", "missing closing ]"),
    ],
)
def test_crd_bounds_the_pattern(kube: client.ApiClient, namespace: str, pattern: str, needle: str) -> None:
    with pytest.raises(ApiException) as err:
        create_workspace(
            kube,
            namespace,
            roleMappings=[{"name": "m", "groups": {"pattern": pattern}, "clusterRole": "view"}],
        )
    assert err.value.status == 422 and needle in str(err.value.body)
