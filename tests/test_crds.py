"""The CRDs come from the Python models, and the real API server enforces them."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig

from scim_core import constants as c
from scim_core.kube import patch_status
from scim_devenv.crds import crd_files

from .helpers import eventually


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


def _condition(kind: str) -> dict[str, Any]:
    return {"type": kind, "status": "True", "reason": "Reconciled", "message": "1 RoleBindings",
            "lastTransitionTime": "2026-11-29T10:37:15Z", "observedGeneration": 1}  # fmt: skip


def _write_status(control_plane: Any, namespace: str, name: str, status: dict[str, Any]) -> None:
    """As the operator writes a status: ``scim_core.kube.patch_status``, a merge patch."""

    async def run() -> None:
        conf = aclient.Configuration()
        await aconfig.load_kube_config(config_file=str(control_plane.kubeconfig), client_configuration=conf)
        async with aclient.ApiClient(conf) as api:
            await patch_status(api, c.GROUP_PLURAL, namespace, name, status)

    asyncio.run(run())


def _status_fields(kube: client.ApiClient, namespace: str, name: str) -> tuple[dict[str, Any], list[Any]]:
    obj = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.GROUP_PLURAL, name
    )
    owned = [m["fieldsV1"] for m in obj["metadata"]["managedFields"] if m.get("subresource") == "status"]
    return obj["status"], owned


def test_every_status_is_atomic_to_the_field_manager() -> None:
    from scim_core.crds import all_crds

    for crd in all_crds():
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-map-type"] == "atomic", crd["metadata"]["name"]


@pytest.mark.cluster
def test_a_status_write_still_merges_and_is_tracked_as_one_field(
    control_plane: Any, kube: client.ApiClient, namespace: str
) -> None:
    """The operator's merge patches of a status merge as before (atomic speaks only to field
    ownership), and the API server's managedFields name the status once, not each condition
    key and field (half of a reconciled group's managedFields before)."""
    _create(kube, namespace, c.GROUP_PLURAL, c.GROUP_KIND, {"displayName": "Ops"}, name="grp-st")
    full = {"memberCount": 3, "conditions": [_condition("Ready"), _condition("Synced")]}
    _write_status(control_plane, namespace, "grp-st", full)
    _write_status(control_plane, namespace, "grp-st", {"memberCount": 4})  # only what changed
    status, owned = _status_fields(kube, namespace, "grp-st")
    assert status["memberCount"] == 4 and [x["type"] for x in status["conditions"]] == ["Ready", "Synced"]
    assert owned == [{"f:status": {}}]


@pytest.mark.cluster
def test_statuses_stored_under_granular_schemas_collapse_on_their_next_write(
    control_plane: Any, kube: client.ApiClient, namespace: str
) -> None:
    """The upgrade: an object whose status was written before the status became atomic keeps
    its per-field managedFields until the operator's next status write, which leaves one."""
    from scim_core.crds import all_crds

    def crds(atomic: bool) -> list[dict[str, Any]]:
        out = all_crds()
        for crd in out if not atomic else ():
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"].pop(
                "x-kubernetes-map-type"
            )
        return out

    def served(atomic: bool) -> bool:
        crd = client.ApiextensionsV1Api(kube).read_custom_resource_definition(f"{c.GROUP_PLURAL}.{c.GROUP}")
        status = crd.spec.versions[0].schema.open_apiv3_schema.properties["status"]
        return (status.x_kubernetes_map_type == "atomic") is atomic

    writes = itertools.count(1)

    def written(shape: Any) -> bool:
        # the API server re-initializes the kind's storage after a schema change (503, or a
        # write still served under the schema before, meanwhile): write a new count until
        # the managedFields show the shape asked for
        count = next(writes)
        status = {"memberCount": count, "conditions": [_condition("Ready")]}
        _write_status(control_plane, namespace, "grp-old", status)
        status_now, owned = _status_fields(kube, namespace, "grp-old")
        return status_now["memberCount"] == count and bool(shape(owned))

    control_plane.apply(crds(atomic=False))
    try:
        eventually(lambda: served(atomic=False), timeout=30)
        _create(kube, namespace, c.GROUP_PLURAL, c.GROUP_KIND, {"displayName": "Old"}, name="grp-old")
        eventually(lambda: written(lambda owned: 'k:{"type":"Ready"}' in str(owned)), timeout=60)
    finally:
        control_plane.apply(crds(atomic=True))
    eventually(lambda: served(atomic=True), timeout=30)
    eventually(lambda: written(lambda owned: owned == [{"f:status": {}}]), timeout=60)
