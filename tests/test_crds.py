"""The CRDs come from the Python models, and the real API server enforces them."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from scim_core import constants as c
from scim_devenv.crds import crd_files


def test_deploy_crds_match_models() -> None:
    for path, text in crd_files().items():
        assert path.exists(), f"{path} missing: run `make crds`"
        assert path.read_text() == text, f"{path} is stale: run `make crds`"


def _create(
    kube: client.ApiClient,
    namespace: str,
    plural: str,
    kind: str,
    spec: dict[str, Any],
    name: str = "x",
) -> dict[str, Any]:
    body = {"apiVersion": c.API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
    result: dict[str, Any] = client.CustomObjectsApi(kube).create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, plural, body
    )
    return result


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("plural", "kind", "spec", "needle"),
    [
        (c.GROUP_PLURAL, c.GROUP_KIND, {}, "displayName"),
        (c.GROUP_PLURAL, c.GROUP_KIND, {"displayName": ""}, "displayName"),
        (
            c.GROUP_PLURAL,
            c.GROUP_KIND,
            {"displayName": "a", "members": [{"display": "no value"}]},
            "value",
        ),
        (c.USER_PLURAL, c.USER_KIND, {"active": True}, "userName"),
        (c.USER_PLURAL, c.USER_KIND, {"userName": "a", "active": "yes"}, "active"),
        (
            c.WORKSPACE_PLURAL,
            c.WORKSPACE_KIND,
            {"displayName": "w", "token": {"lifetime": "forever"}},
            "lifetime",
        ),
        (
            c.WORKSPACE_PLURAL,
            c.WORKSPACE_KIND,
            {
                "displayName": "w",
                "roleMappings": [
                    {
                        "name": "m",
                        "groups": {"displayName": "a"},
                        "clusterRole": "view",
                        "role": "r",
                    }
                ],
            },
            "exactly one of clusterRole, role",
        ),
        (
            c.WORKSPACE_PLURAL,
            c.WORKSPACE_KIND,
            {
                "displayName": "w",
                "roleMappings": [{"name": "m", "groups": {}, "clusterRole": "view"}],
            },
            "exactly one of displayName, externalId, pattern",
        ),
    ],
)
def test_api_server_rejects_invalid(
    kube: client.ApiClient,
    namespace: str,
    plural: str,
    kind: str,
    spec: dict[str, Any],
    needle: str,
) -> None:
    with pytest.raises(ApiException) as err:
        _create(kube, namespace, plural, kind, spec)
    assert err.value.status == 422
    assert needle in str(err.value.body)


@pytest.mark.cluster
def test_defaults_applied(kube: client.ApiClient, namespace: str) -> None:
    ws = _create(kube, namespace, c.WORKSPACE_PLURAL, c.WORKSPACE_KIND, {"displayName": "Acme"})
    assert ws["spec"]["token"] == {  # no lifetime: tokens never expire unless one is set
        "secretName": "scim-token",
        "gracePeriod": "24h",
        "expiryWarning": "14d",
    }
    assert ws["spec"]["subjects"] == {"prefix": "", "userField": "userName"}
    user = _create(kube, namespace, c.USER_PLURAL, c.USER_KIND, {"userName": "ada@example.com"})
    assert user["spec"]["active"] is True


@pytest.mark.cluster
def test_printer_columns(control_plane: Any, kube: client.ApiClient, namespace: str) -> None:
    _create(kube, namespace, c.GROUP_PLURAL, c.GROUP_KIND, {"displayName": "Engineers"}, name="grp-1")
    out = control_plane.kubectl("get", "scimgroups", "-n", namespace)
    header = out.splitlines()[0].split()
    for col in ("NAME", "DISPLAY", "MEMBERS", "BINDINGS", "READY", "AGE"):
        assert col in header
    assert "Engineers" in out
