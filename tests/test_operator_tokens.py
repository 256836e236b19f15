"""The operator manages workspace tokens on a real control plane; the API follows."""

from __future__ import annotations

import base64
import functools
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from scim_core import constants as c
from scim_core.crds import all_crds
from scim_core.tokens import fingerprint, generate_token, token_sha256
from scim_operator.token_policy import NOT_AFTER, PREVIOUS_NOT_AFTER, ROTATE_REQUEST, TOKEN_SECRET_LABEL

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

    # the hash is announced before the Secret is written; the rest of the status follows it
    def settled() -> dict[str, Any] | None:
        ws = get_workspace(kube, namespace)
        return ws if condition(ws, "TokenValid") else None

    ws = eventually(settled)
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


def test_rotated_token_is_published_before_it_is_in_the_secret(
    kube: client.ApiClient, namespace: str
) -> None:
    """Whoever reads the new token from the Secret gets one the API already accepts: its hash
    is in the workspace status before the Secret holds it (the old order gave the IdP 401s
    for up to a second after a rotation), and the old token stays published meanwhile."""
    old = workspace_with_token(kube, namespace)
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws",
        {"metadata": {"annotations": {ROTATE_REQUEST: "published-first"}}},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while (new := read_token(kube, namespace)) == old:
        assert time.monotonic() < deadline, "the token was never rotated"
        time.sleep(0.01)
    assert new
    assert {token_sha256(new), token_sha256(old)} <= _hashes(kube, namespace)


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
    create_workspace(kube, namespace, token={"lifetime": "90d"})  # without a lifetime nothing expires
    new = eventually(lambda: (t := read_token(kube, namespace)) != strong and t)
    eventually(lambda: _hashes(kube, namespace) == {token_sha256(new)})  # type: ignore[arg-type]


# ------------------------------------------------------------------------- hardening (issue 8)


def _secret(
    kube: client.ApiClient,
    namespace: str,
    data: dict[str, str],
    name: str = "scim-token",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> client.V1Secret:
    meta = client.V1ObjectMeta(name=name, labels=labels, annotations=annotations)
    return client.CoreV1Api(kube).create_namespaced_secret(
        namespace, client.V1Secret(metadata=meta, string_data=data)
    )


def _token_condition(kube: client.ApiClient, namespace: str, reason: str) -> dict[str, Any] | None:
    cond = condition(get_workspace(kube, namespace), "TokenValid")
    return cond if cond and cond["reason"] == reason else None


def _warned(kube: client.ApiClient, namespace: str, reason: str) -> bool:
    events = client.CoreV1Api(kube).list_namespaced_event(namespace).items
    return any(e.type == "Warning" and e.reason == reason for e in events)


LABEL = {TOKEN_SECRET_LABEL: "ws"}


def test_arbitrary_secret_is_never_adopted(kube: client.ApiClient, namespace: str) -> None:
    """``spec.token.secretName`` naming a Secret of the namespace that was not made for the
    workspace: refused, never read as a token, never modified."""
    before = _secret(kube, namespace, {"token": generate_token(), "password": "db"}, name="app-db")
    create_workspace(kube, namespace, token={"secretName": "app-db"})
    cond = eventually(lambda: _token_condition(kube, namespace, "SecretNotAdopted"))
    assert cond["status"] == "False"
    eventually(lambda: _warned(kube, namespace, "SecretNotAdopted"))
    assert _hashes(kube, namespace) == set()
    assert condition(get_workspace(kube, namespace), "Ready")["status"] == "False"  # type: ignore[index]
    after = client.CoreV1Api(kube).read_namespaced_secret("app-db", namespace)
    assert after.metadata.resource_version == before.metadata.resource_version  # untouched
    # the admin hands the Secret over by labelling it: then it is adopted
    client.CoreV1Api(kube).patch_namespaced_secret("app-db", namespace, {"metadata": {"labels": LABEL}})
    eventually(lambda: _token_condition(kube, namespace, "TokenActive"))
    assert _hashes(kube, namespace) == {token_sha256(read_token(kube, namespace, "app-db") or "")}


def test_weak_previous_token_is_not_published(kube: client.ApiClient, namespace: str) -> None:
    current = generate_token()
    soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _secret(
        kube, namespace, {"token": current, "previous-token": "hunter2"}, labels=LABEL,
        annotations={PREVIOUS_NOT_AFTER: soon},
    )  # fmt: skip
    create_workspace(kube, namespace)
    eventually(lambda: _token_condition(kube, namespace, "TokenActive"))
    assert _hashes(kube, namespace) == {token_sha256(current)}
    eventually(lambda: _warned(kube, namespace, "WeakPreviousToken"))
    secret = client.CoreV1Api(kube).read_namespaced_secret("scim-token", namespace)
    assert "previous-token" not in (secret.data or {})  # dropped
    assert _hashes(kube, namespace) == {token_sha256(current)}


def test_hand_set_not_after_is_capped(kube: client.ApiClient, namespace: str) -> None:
    current = generate_token()
    _secret(
        kube, namespace, {"token": current}, labels=LABEL,
        annotations={NOT_AFTER: "2099-01-01T00:00:00Z"},
    )  # fmt: skip
    create_workspace(kube, namespace, token={"lifetime": "2d", "gracePeriod": "1h"})
    eventually(lambda: _token_condition(kube, namespace, "TokenActive"))
    expires = get_workspace(kube, namespace)["status"]["tokenExpiresAt"]
    limit = datetime.now(UTC) + timedelta(days=2)
    assert datetime.fromisoformat(expires.replace("Z", "+00:00")) <= limit
    notes = client.CoreV1Api(kube).read_namespaced_secret("scim-token", namespace).metadata.annotations
    assert notes[NOT_AFTER] == expires  # the Secret is corrected: the cap holds


@pytest.mark.parametrize(
    ("token", "needle"),
    [
        ({"lifetime": "1h", "gracePeriod": "1h"}, "gracePeriod must be shorter than lifetime"),
        ({"lifetime": "1h", "gracePeriod": "90m"}, "gracePeriod must be shorter than lifetime"),
        ({"lifetime": "1d", "gracePeriod": "24h"}, "gracePeriod must be shorter than lifetime"),
        ({"lifetime": "12h"}, "gracePeriod must be shorter than lifetime"),  # default grace 24h
        ({"lifetime": "36501d"}, "lifetime must be at most 36500d"),
        ({"lifetime": "99999999999999999d"}, "lifetime"),
    ],
)
def test_crd_requires_grace_shorter_than_lifetime(
    kube: client.ApiClient, namespace: str, token: dict[str, str], needle: str
) -> None:
    with pytest.raises(ApiException) as err:
        create_workspace(kube, namespace, token=token)
    assert err.value.status == 422 and needle in str(err.value.body)
    create_workspace(kube, namespace, token={"lifetime": "1h", "gracePeriod": "59m"})  # accepted


@pytest.fixture
def crd_without_token_rules(kube: client.ApiClient) -> Iterator[None]:
    """The ScimWorkspace CRD as an older release shipped it (no CEL rule on the token
    settings), so a workspace can slip past the schema; restored afterwards."""
    ext = client.ApiextensionsV1Api(kube)
    name = f"{c.WORKSPACE_PLURAL}.{c.GROUP}"
    path = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/token/x-kubernetes-validations"
    ext.patch_custom_resource_definition(name, [{"op": "remove", "path": path}])
    try:
        yield
    finally:
        crd = next(x for x in all_crds() if x["metadata"]["name"] == name)
        live = ext.read_custom_resource_definition(name)
        crd["metadata"]["resourceVersion"] = live.metadata.resource_version
        ext.replace_custom_resource_definition(name, crd)


@pytest.mark.usefixtures("crd_without_token_rules")
def test_workspace_slipping_past_the_crd_is_refused_not_rotated(
    kube: client.ApiClient, namespace: str
) -> None:
    current = generate_token()
    _secret(kube, namespace, {"token": current}, labels=LABEL)

    def created() -> bool:
        try:
            create_workspace(kube, namespace, token={"lifetime": "1h", "gracePeriod": "2h"})
        except ApiException as exc:
            if exc.status == 422:  # the API server still serves the old schema
                return False
            raise
        return True

    eventually(created)
    cond = eventually(lambda: _token_condition(kube, namespace, "InvalidTokenSettings"))
    assert cond["status"] == "False" and "gracePeriod" in cond["message"]
    eventually(lambda: _warned(kube, namespace, "InvalidTokenSettings"))
    time.sleep(3)  # three resyncs (SCIM_WORKSPACE_RESYNC_SECONDS=1 in tests): never rotated
    assert read_token(kube, namespace) == current and _hashes(kube, namespace) == set()


@pytest.fixture
def second_namespace(kube: client.ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def test_token_held_by_two_workspaces_is_refused_in_both(
    kube: client.ApiClient, namespace: str, second_namespace: str
) -> None:
    shared = generate_token()
    for ns in (namespace, second_namespace):
        _secret(kube, ns, {"token": shared}, labels=LABEL)
        create_workspace(kube, ns)
    for ns in (namespace, second_namespace):
        cond = eventually(functools.partial(_token_condition, kube, ns, "DuplicateToken"))
        assert cond["status"] == "False" and shared not in cond["message"]
        eventually(functools.partial(_warned, kube, ns, "DuplicateToken"))
    eventually(lambda: not _hashes(kube, namespace) and not _hashes(kube, second_namespace))
    # rotating one side resolves it: a new token there, the other keeps (and publishes) the shared one
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws",
        {"metadata": {"annotations": {ROTATE_REQUEST: "unshare"}}},
    )  # fmt: skip
    new = eventually(lambda: (t := read_token(kube, namespace)) != shared and t)
    eventually(lambda: _hashes(kube, namespace) == {token_sha256(new)})  # type: ignore[arg-type]
    eventually(lambda: _hashes(kube, second_namespace) == {token_sha256(shared)})


# ------------------------------------------------------------------------- lifecycle (issue 11)


def _status(kube: client.ApiClient, namespace: str, status: dict[str, Any]) -> None:
    """Write workspace status fields as the SCIM API does (merge patch, status subresource)."""
    custom(kube).patch_namespaced_custom_object_status(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws", {"status": status}
    )


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _metric(name: str, **labels: str) -> float | None:
    """A sample of the session operator's metrics (it runs in this process)."""
    value: float | None = REGISTRY.get_sample_value(name, labels)
    return value


def _fingerprint(token: str) -> str:
    return fingerprint(token_sha256(token))


def test_default_token_never_expires(kube: client.ApiClient, namespace: str) -> None:
    token = workspace_with_token(kube, namespace)
    eventually(lambda: _expiring(kube, namespace, "TokenNeverExpires"))
    ws = get_workspace(kube, namespace)
    assert "lifetime" not in ws["spec"]["token"]
    assert ws["status"].get("tokenExpiresAt") is None  # a merge patch with null removes it
    expiring = condition(ws, "TokenExpiring")
    assert expiring and expiring["status"] == "False" and expiring["reason"] == "TokenNeverExpires"
    (published,) = ws["status"]["tokenHashes"]  # still carries a notAfter: the far end, for the API
    assert datetime.fromisoformat(published["notAfter"].replace("Z", "+00:00")) > datetime.now(
        UTC
    ) + timedelta(days=36000)
    assert (
        _metric(
            "scim_operator_token_expiry_timestamp_seconds",
            workspace=namespace,
            fingerprint=_fingerprint(token),
        )
        is None
    )  # no expiry, no series
    assert not _warned(kube, namespace, "TokenExpiring")


def test_lifetime_warns_ahead_with_a_condition_an_event_and_a_metric(
    kube: client.ApiClient, namespace: str
) -> None:
    create_workspace(kube, namespace, token={"lifetime": "30d", "gracePeriod": "1h"})
    calm = eventually(lambda: _expiring(kube, namespace, "TokenNotExpiringSoon"))
    assert calm["status"] == "False"
    ws = get_workspace(kube, namespace)
    expires = datetime.fromisoformat(ws["status"]["tokenExpiresAt"].replace("Z", "+00:00"))
    fp = ws["status"]["tokenFingerprint"]
    assert (
        eventually(
            lambda: _metric(
                "scim_operator_token_expiry_timestamp_seconds", workspace=namespace, fingerprint=fp
            )
        )
        == expires.timestamp()
    )
    assert not _warned(kube, namespace, "TokenExpiring")
    # warn 31 days ahead instead of the default 14: the 30-day token is now within it
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws", {"spec": {"token": {"expiryWarning": "31d"}}}
    )
    warned = eventually(lambda: _expiring(kube, namespace, "TokenExpiresSoon"))
    assert warned["status"] == "True" and fp in warned["message"]
    eventually(lambda: _warned(kube, namespace, "TokenExpiring"))
    assert (
        eventually(
            lambda: _metric("scim_operator_workspace_condition", workspace=namespace, type="TokenExpiring")
        )
        == 1.0
    )
    time.sleep(2.5)  # resyncs do not repeat the Warning Event
    events = client.CoreV1Api(kube).list_namespaced_event(namespace).items
    assert sum(e.reason == "TokenExpiring" for e in events) == 1


def _expiring(kube: client.ApiClient, namespace: str, reason: str) -> dict[str, Any] | None:
    cond = condition(get_workspace(kube, namespace), "TokenExpiring")
    return cond if cond and cond["reason"] == reason else None


def test_old_token_stays_valid_until_the_idp_uses_the_new_one(kube: client.ApiClient, namespace: str) -> None:
    """After a rotation the IdP's copy keeps working (grace 24 h) until the API reports the
    new token used; then the old hash and the Secret's previous-token go at once."""
    old = workspace_with_token(kube, namespace)
    rotated_at = datetime.now(UTC).replace(microsecond=0)
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws",
        {"metadata": {"annotations": {ROTATE_REQUEST: "handover"}}},
    )  # fmt: skip
    new = eventually(lambda: (t := read_token(kube, namespace)) != old and t)
    assert new
    eventually(lambda: _hashes(kube, namespace) == {token_sha256(new), token_sha256(old)})
    # the IdP still holds the old token: it expires with the grace period, and the workspace says so
    warned = eventually(lambda: _expiring(kube, namespace, "TokenExpiresSoon"))
    assert _fingerprint(old) in warned["message"] and _fingerprint(new) in warned["message"]
    # the old token used again after the rotation changes nothing
    _status(
        kube,
        namespace,
        {"tokenUsage": [{"fingerprint": _fingerprint(old), "lastUsedTime": _utc(datetime.now(UTC))}]},
    )
    time.sleep(2.5)  # resyncs (1 s in tests)
    assert _hashes(kube, namespace) == {token_sha256(new), token_sha256(old)}
    # the API reports the new token used: the old one is retired long before its grace period ends
    _status(kube, namespace, {"tokenUsage": [
        {"fingerprint": _fingerprint(old), "lastUsedTime": _utc(datetime.now(UTC))},
        {"fingerprint": _fingerprint(new), "lastUsedTime": _utc(max(datetime.now(UTC), rotated_at))},
    ]})  # fmt: skip
    eventually(lambda: _hashes(kube, namespace) == {token_sha256(new)})
    secret = client.CoreV1Api(kube).read_namespaced_secret("scim-token", namespace)
    assert "previous-token" not in (secret.data or {})
    assert read_token(kube, namespace) == new
    eventually(lambda: _expiring(kube, namespace, "TokenNeverExpires"))
    events = client.CoreV1Api(kube).list_namespaced_event(namespace).items
    assert any(e.reason == "PreviousTokenRetired" and e.type == "Normal" for e in events)


def _synced(kube: client.ApiClient, namespace: str, reason: str) -> dict[str, Any] | None:
    cond = condition(get_workspace(kube, namespace), "Synced")
    return cond if cond and cond["reason"] == reason else None


def test_synced_condition_follows_the_idps_requests(kube: client.ApiClient, namespace: str) -> None:
    create_workspace(kube, namespace, idpSilenceAfter="4s")
    never = eventually(lambda: _synced(kube, namespace, "NeverSeen"))
    assert never["status"] == "Unknown"  # not set up yet is not silent: no series, no alert
    assert eventually(lambda: _metric("scim_operator_workspace_condition", workspace=namespace, type="Ready"))
    assert _metric("scim_operator_workspace_condition", workspace=namespace, type="Synced") is None
    _status(
        kube, namespace, {"idp": {"lastRequestTime": _utc(datetime.now(UTC)), "requests": 3, "errors": 0}}
    )
    active = eventually(lambda: _synced(kube, namespace, "IdPActive"))
    assert active["status"] == "True"
    assert _metric("scim_operator_workspace_condition", workspace=namespace, type="Synced") == 1.0
    assert _metric("scim_operator_workspace_condition", workspace=namespace, type="Ready") == 1.0
    # no request for longer than idpSilenceAfter: False, without any write to the workspace
    silent = eventually(lambda: _synced(kube, namespace, "IdPSilent"), timeout=15)
    assert silent["status"] == "False"
    assert eventually(
        lambda: _metric("scim_operator_workspace_condition", workspace=namespace, type="Synced") == 0.0
    )
