"""The operator manages workspace tokens on a real control plane; the API follows."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes import client

from scim_core import constants as c
from scim_core.tokens import token_sha256
from scim_operator.token_policy import ROTATE_REQUEST, TOKEN_SECRET_LABEL

from .helpers import (
    condition,
    create_workspace,
    custom,
    eventually,
    get_workspace,
    read_token,
    workspace_with_token,
)

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_running")]


def _hashes(kube: client.ApiClient, namespace: str) -> set[str]:
    return {
        h["sha256"] for h in (get_workspace(kube, namespace).get("status") or {}).get("tokenHashes") or []
    }


def test_token_generated_owned_and_published(kube: client.ApiClient, namespace: str) -> None:
    token = workspace_with_token(kube, namespace)
    assert len(token) >= 43
    secret = client.CoreV1Api(kube).read_namespaced_secret("scim-token", namespace)
    owner = secret.metadata.owner_references[0]
    assert owner.kind == c.WORKSPACE_KIND and owner.controller
    ws = get_workspace(kube, namespace)
    status = ws["status"]
    assert status["tokenFingerprint"].startswith("sha256:")
    assert token not in str(ws)  # only hashes are published
    ready = condition(ws, "TokenValid")
    assert ready and ready["status"] == "True" and ready["observedGeneration"] == ws["metadata"]["generation"]
    assert condition(ws, "Ready")["status"] == "True"  # type: ignore[index]


def test_weak_hand_made_token_refused(kube: client.ApiClient, namespace: str) -> None:
    client.CoreV1Api(kube).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="scim-token", labels={TOKEN_SECRET_LABEL: "ws"}),
            string_data={"token": "hunter2"},
        ),
    )
    create_workspace(kube, namespace)

    def refused() -> dict[str, Any] | None:
        cond = condition(get_workspace(kube, namespace), "TokenValid")
        return cond if cond and cond["status"] == "False" else None

    cond = eventually(refused)
    assert cond["reason"] == "WeakToken"
    assert _hashes(kube, namespace) == set()
    events = client.CoreV1Api(kube).list_namespaced_event(namespace).items
    assert any(e.type == "Warning" and e.reason == "WeakToken" for e in events)
    assert read_token(kube, namespace) == "hunter2"  # never overwritten


def test_rotation_on_demand_keeps_previous_in_grace(kube: client.ApiClient, namespace: str) -> None:
    old = workspace_with_token(kube, namespace)
    custom(kube).patch_namespaced_custom_object(
        c.GROUP,
        c.VERSION,
        namespace,
        c.WORKSPACE_PLURAL,
        "ws",
        {"metadata": {"annotations": {ROTATE_REQUEST: "now"}}},
    )
    new = eventually(lambda: (t := read_token(kube, namespace)) != old and t)
    assert new
    eventually(lambda: _hashes(kube, namespace) == {token_sha256(new), token_sha256(old)})


def test_grace_zero_drops_previous(kube: client.ApiClient, namespace: str) -> None:
    create_workspace(kube, namespace, token={"gracePeriod": "0s"})
    old = eventually(lambda: read_token(kube, namespace))
    eventually(lambda: _hashes(kube, namespace) == {token_sha256(old)})
    custom(kube).patch_namespaced_custom_object(
        c.GROUP,
        c.VERSION,
        namespace,
        c.WORKSPACE_PLURAL,
        "ws",
        {"metadata": {"annotations": {ROTATE_REQUEST: "1"}}},
    )
    new = eventually(lambda: (t := read_token(kube, namespace)) != old and t)
    eventually(lambda: _hashes(kube, namespace) == {token_sha256(new)})


def test_deleting_secret_revokes_and_regenerates(kube: client.ApiClient, namespace: str) -> None:
    old = workspace_with_token(kube, namespace)
    client.CoreV1Api(kube).delete_namespaced_secret("scim-token", namespace)
    new = eventually(lambda: (t := read_token(kube, namespace)) != old and t)
    eventually(lambda: _hashes(kube, namespace) == {token_sha256(new)})  # type: ignore[arg-type]


def test_expired_token_rotated(kube: client.ApiClient, namespace: str) -> None:
    """A token whose lifetime is over is replaced; the old one is not published."""
    strong = base64.b64encode(b"x" * 8).decode() + "Q9f2Lk3mZ8pW4rT7vY1bN6cH0jD5sG2aE"
    client.CoreV1Api(kube).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(
                name="scim-token",
                labels={TOKEN_SECRET_LABEL: "ws"},  # handed to the workspace by its admin
                annotations={
                    f"{c.GROUP}/issued-at": "2020-01-01T00:00:00Z",
                    f"{c.GROUP}/not-after": "2020-02-01T00:00:00Z",
                },
            ),
            string_data={"token": strong},
        ),
    )
    create_workspace(kube, namespace)
    new = eventually(lambda: (t := read_token(kube, namespace)) != strong and t)
    eventually(lambda: _hashes(kube, namespace) == {token_sha256(new)})  # type: ignore[arg-type]
