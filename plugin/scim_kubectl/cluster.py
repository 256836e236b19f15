"""Everything the plugin asks of the API server, as the kubeconfig user (kubectl's own
credentials: the plugin needs no grant of its own beyond what the person running it has)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from scim_api.kube_errors import reason
from scim_core import constants as c
from scim_operator.token_policy import ROTATE_REQUEST

from .access import AUTHENTICATED, Check

Obj = dict[str, Any]


class PluginError(Exception):
    """Something the person running the plugin must fix; printed without a traceback."""


def kubeconfig_path(explicit: str | None) -> str | None:
    """As kubectl: ``--kubeconfig``, else the first file of ``$KUBECONFIG``, else
    ``~/.kube/config``; None when none exists (then the in-cluster config is used)."""
    if explicit:
        return explicit
    path = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    return path if os.path.exists(path) else None


async def connect(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    """A client for the kubeconfig file (``kubeconfig_path``) and ``--context`` or its
    current context; without a file, the Pod's ServiceAccount."""
    configuration = client.Configuration()
    if kubeconfig is not None:
        await config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    else:
        config.load_incluster_config(client_configuration=configuration)
    api = client.ApiClient(configuration)
    api.user_agent = "kubectl-scim"
    return api


class Cluster:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)

    async def objects(self, plural: str, namespace: str | None) -> list[Obj]:
        """All objects of one of our kinds, in one namespace or all of them."""
        if namespace is None:
            found = await self._custom.list_cluster_custom_object(c.GROUP, c.VERSION, plural)
        else:
            found = await self._custom.list_namespaced_custom_object(c.GROUP, c.VERSION, namespace, plural)
        items: list[Obj] = [o for o in found.get("items", []) if not o["metadata"].get("deletionTimestamp")]
        return items

    async def workspace(self, namespace: str) -> Obj:
        """The namespace's workspace (the operator uses the first by name, so do we)."""
        found = sorted(
            (await self.objects(c.WORKSPACE_PLURAL, namespace)), key=lambda o: o["metadata"]["name"]
        )
        if not found:
            raise PluginError(f"no ScimWorkspace in namespace {namespace!r}")
        return found[0]

    async def managed_bindings(self, workspace_namespace: str) -> list[Obj]:
        """The RoleBindings the operator made for the workspace's groups, in any namespace."""
        selector = f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE},{c.WORKSPACE_LABEL}={workspace_namespace}"
        found = await client.RbacAuthorizationV1Api(self._api).list_role_binding_for_all_namespaces(
            label_selector=selector
        )
        return [self._api.sanitize_for_serialization(b) for b in found.items]

    async def namespace_labels(self) -> dict[str, dict[str, str]]:
        found = await self._core.list_namespace()
        return {ns.metadata.name: dict(ns.metadata.labels or {}) for ns in found.items}

    async def allowed(self, subject: str, namespace: str, check: Check) -> bool:
        """The API server's SubjectAccessReview for ``subject`` (with the group every
        authenticated user has)."""
        review = await client.AuthorizationV1Api(self._api).create_subject_access_review(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": subject,
                    "groups": [AUTHENTICATED],
                    "resourceAttributes": {
                        "namespace": namespace,
                        "verb": check.verb,
                        "group": check.group,
                        "resource": check.resource,
                    },
                },
            }
        )
        return bool(review.status.allowed)

    async def reviews(
        self, subject: str, namespaces: list[str], checks: tuple[Check, ...]
    ) -> dict[tuple[str, str], bool]:
        keys = [(ns, check) for ns in namespaces for check in checks]
        answers = await asyncio.gather(*(self.allowed(subject, ns, check) for ns, check in keys))
        return {(ns, check.label): ok for (ns, check), ok in zip(keys, answers, strict=True)}

    async def request_rotation(self, workspace: Mapping[str, Any], nonce: str) -> None:
        """Set the rotate annotation to a new value (the operator rotates once per value)."""
        meta = workspace["metadata"]
        await self._custom.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, meta["namespace"], c.WORKSPACE_PLURAL, meta["name"],
            {"metadata": {"annotations": {ROTATE_REQUEST: nonce}}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip

    async def wait_for_new_fingerprint(self, namespace: str, old: str | None) -> Obj:
        """The workspace once its published token fingerprint differs from ``old`` (the
        caller bounds the wait)."""
        while True:
            workspace = await self.workspace(namespace)
            current = (workspace.get("status") or {}).get("tokenFingerprint")
            if current and current != old:
                return workspace
            await asyncio.sleep(0.5)

    async def validate_mappings(self, workspace: Mapping[str, Any], mappings: list[Any]) -> str | None:
        """Ask the API server to check the changed mappings (CRD schema and CEL rules) with a
        dry-run patch: nothing is stored. None when accepted or when the caller may not patch
        the workspace (a warning is returned instead of failing the preview)."""
        meta = workspace["metadata"]
        try:
            await self._custom.patch_namespaced_custom_object(
                c.GROUP, c.VERSION, meta["namespace"], c.WORKSPACE_PLURAL, meta["name"],
                {"spec": {"roleMappings": mappings}}, dry_run="All",
                _content_type="application/merge-patch+json",
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 422:
                raise PluginError(f"the API server would refuse these mappings: {reason(exc)}") from exc
            if exc.status == 403:
                return "warning: not allowed to patch the workspace, so the API server did not check the file"
            raise
        return None

    async def token(self, workspace: Mapping[str, Any]) -> str:
        namespace = workspace["metadata"]["namespace"]
        secret_name = ((workspace.get("spec") or {}).get("token") or {}).get("secretName", "scim-token")
        try:
            secret = await self._core.read_namespaced_secret(secret_name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise PluginError(
                    f"no token Secret {namespace}/{secret_name} yet; is the operator running?"
                ) from exc
            raise
        raw = (secret.data or {}).get(c.TOKEN_SECRET_KEY)
        if not raw:
            raise PluginError(f"the Secret {namespace}/{secret_name} holds no token yet")
        return base64.b64decode(raw).decode()
