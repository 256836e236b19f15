"""I/O side of workspace tokens: read the Secret, apply the plan, publish the hashes.

The rules (what is adopted, believed, rotated or refused) are in ``token_policy``."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core import constants as c
from scim_core import tokens
from scim_core.kube import patch_status
from scim_core.resources import ScimWorkspaceSpec
from scim_core.timestamps import parse_time

from . import metrics
from .conditions import set_condition
from .events import EventPoster
from .token_policy import (
    PREVIOUS_KEY,
    ROTATE_REQUEST,
    TOKEN_SECRET_LABEL,
    SecretState,
    TokenClaims,
    TokenPlan,
    WorkspaceKey,
    adoptable,
    expiry_notice,
    expiry_times,
    plan_token,
    refused,
    token_deadlines,
    without_shared,
)

log = logging.getLogger(__name__)

__all__ = ["TOKEN_SECRET_LABEL", "reconcile_workspace_token"]

#: Token hashes held by every workspace this operator has reconciled (see TokenClaims).
CLAIMS = TokenClaims()

_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)


@dataclass
class TokenOutcome:
    """What the token reconcile leaves for the workspace status."""

    status: dict[str, Any]  # tokenHashes, tokenFingerprint, tokenExpiresAt
    conditions: list[dict[str, Any]]  # TokenValid and TokenExpiring set
    deadlines: list[datetime] = field(default_factory=list)  # when to look again (see token_deadlines)


def last_used(status: dict[str, Any]) -> dict[str, datetime]:
    """``status.tokenUsage`` (written by the API) as fingerprint -> lastUsedTime."""
    out: dict[str, datetime] = {}
    for entry in status.get("tokenUsage") or []:
        used = parse_time(entry.get("lastUsedTime"))
        if used is not None and isinstance(entry.get("fingerprint"), str):
            out[entry["fingerprint"]] = used
    return out


def _decode(data: dict[str, str] | None, key: str) -> str | None:
    raw = (data or {}).get(key)
    if raw is None:
        return None
    try:
        return base64.b64decode(raw).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return ""  # unreadable: treated as a (weak) empty token


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def _read_secret(
    core: client.CoreV1Api, workspace: dict[str, Any], name: str
) -> tuple[SecretState | None, Any]:
    """The Secret's state; the data of a Secret the workspace may not adopt is not read."""
    meta = workspace["metadata"]
    try:
        secret = await core.read_namespaced_secret(name, meta["namespace"])
    except ApiException as exc:
        if exc.status == 404:
            return None, None
        raise
    owners = [{"kind": o.kind, "uid": o.uid} for o in secret.metadata.owner_references or []]
    if not adoptable(secret.metadata.labels, owners, meta["name"], meta["uid"]):
        return SecretState(None, None, {}, secret.metadata.creation_timestamp, foreign=True), secret
    state = SecretState(
        token=_decode(secret.data, c.TOKEN_SECRET_KEY),
        previous_token=_decode(secret.data, PREVIOUS_KEY),
        annotations=dict(secret.metadata.annotations or {}),
        created=secret.metadata.creation_timestamp,
    )
    return state, secret


async def _write_secret(
    core: client.CoreV1Api, workspace: dict[str, Any], name: str, plan: TokenPlan, existing: Any
) -> bool:
    """Write the plan; False when another writer created the Secret first."""
    namespace = workspace["metadata"]["namespace"]
    data: dict[str, str | None] = {}
    if plan.write_token is not None:
        data[c.TOKEN_SECRET_KEY] = _b64(plan.write_token)
    if plan.write_previous is not None:
        data[PREVIOUS_KEY] = _b64(plan.write_previous) if plan.write_previous else None
    labels = {
        TOKEN_SECRET_LABEL: workspace["metadata"]["name"],
        c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE,
    }
    if existing is None:
        owner = c.owner_reference(
            c.WORKSPACE_KIND, workspace["metadata"]["name"], workspace["metadata"]["uid"]
        )
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": plan.annotations,
                "ownerReferences": [owner],
            },
            "data": {k: v for k, v in data.items() if v is not None},
        }
        try:
            await core.create_namespaced_secret(namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            return False  # created meanwhile: the caller reads it again
        return True
    patch: dict[str, Any] = {"metadata": {"annotations": plan.annotations, "labels": labels}}
    if data:
        patch["data"] = data
    await core.patch_namespaced_secret(
        name, namespace, patch, _content_type="application/merge-patch+json",
        _headers={"Content-Type": "application/merge-patch+json"},
    )  # fmt: skip
    return True


async def _still_exists(api: client.ApiClient, key: WorkspaceKey, uid: str) -> bool:
    try:
        ws = await client.CustomObjectsApi(api).get_namespaced_custom_object(
            c.GROUP, c.VERSION, key[0], c.WORKSPACE_PLURAL, key[1]
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return bool(ws["metadata"].get("uid") == uid)


async def _refuse_shared(
    api: client.ApiClient, key: WorkspaceKey, uid: str, plan: TokenPlan, claims: TokenClaims
) -> TokenPlan:
    """Apply ``without_shared`` for the hashes another live workspace also holds; record
    what this workspace's Secret holds afterwards."""
    held = {h.sha256 for h in plan.hashes} if plan.valid else set()
    claims.record(key, uid, held)  # before any await: a concurrent reconcile sees it
    shared: set[str] = set()
    for other, (other_uid, overlap) in claims.overlapping(key, held).items():
        if await _still_exists(api, other, other_uid):
            log.warning("token hash held by workspaces %s/%s and %s/%s: refused in both", *key, *other)
            shared |= overlap
        else:
            claims.forget(other, other_uid)
    plan = without_shared(plan, shared)
    if plan.valid:
        claims.record(key, uid, {h.sha256 for h in plan.hashes})
    elif plan.reason != "DuplicateToken":
        claims.record(key, uid, ())
    return plan


async def _announce(api: client.ApiClient, workspace: dict[str, Any], plan: TokenPlan) -> None:
    """Publish a new token's hash before the token is written to the Secret: whoever reads
    the Secret (an admin handing it to the IdP) gets a token the API already accepts. What is
    published is the plan's hashes: the new token and the one it replaces (still valid for
    the grace period). Hashes of tokens announced but never written (a create refused in a
    namespace being deleted, retried at every resync) are not carried along, so they never
    pile up (the status holds at most 8)."""
    published = (workspace.get("status") or {}).get("tokenHashes") or []
    known = {h.get("sha256") for h in published}
    if any(h.sha256 not in known for h in plan.hashes):
        meta = workspace["metadata"]
        await patch_status(
            api, c.WORKSPACE_PLURAL, meta["namespace"], meta["name"],
            {"tokenHashes": [h.as_status() for h in plan.hashes]},
        )  # fmt: skip


async def reconcile_workspace_token(
    api: client.ApiClient, body: kopf.Body, events: EventPoster, claims: TokenClaims = CLAIMS
) -> TokenOutcome:
    """Bring the workspace's token Secret in line with its settings; return the status
    fields about tokens (hashes, fingerprint, expiry, TokenValid/TokenExpiring conditions).
    Its Events go through ``events`` (the operator's bounded limiter, posted only while
    leading): the conditions are the record, so nothing here needs to know an Event was
    posted (one dropped by a full limiter is counted, not retried)."""
    workspace: dict[str, Any] = dict(body)
    meta = workspace["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    spec = ScimWorkspaceSpec.model_validate(workspace.get("spec") or {})
    status = workspace.get("status") or {}
    core = client.CoreV1Api(api)
    grace = warn_before = timedelta(0)
    async with _locks[(namespace, name)]:
        for _attempt in range(3):
            try:
                lifetime = tokens.parse_duration(spec.token.lifetime) if spec.token.lifetime else None
                grace = tokens.parse_duration(spec.token.gracePeriod)
                warn_before = tokens.parse_duration(spec.token.expiryWarning)
            except ValueError as exc:
                plan = refused("InvalidTokenSettings", f"Refused the token settings: {exc}")
                break
            state, existing = await _read_secret(core, workspace, spec.token.secretName)
            plan = plan_token(
                state,
                lifetime=lifetime,
                grace=grace,
                now=datetime.now(UTC),
                rotate_request=(meta.get("annotations") or {}).get(ROTATE_REQUEST),
                last_used=last_used(status),
            )
            plan = await _refuse_shared(api, (namespace, name), meta["uid"], plan, claims)
            if not (plan.secret_changed and (plan.valid or plan.create)):
                break
            if plan.write_token is not None and plan.valid:
                await _announce(api, workspace, plan)
            if await _write_secret(core, workspace, spec.token.secretName, plan, existing):
                break
            # someone else created the Secret first: publish what is really there
    before: dict[str, Any] = next(
        (x for x in status.get("conditions") or [] if x.get("type") == "TokenValid"), {}
    )
    newly_refused = plan.warning and before.get("reason") != plan.reason
    if plan.event and (plan.secret_changed or newly_refused):
        events.post(
            workspace,
            "Warning" if plan.warning else "Normal",
            plan.event_reason or plan.reason or "Token",
            plan.event,
        )
    conditions = set_condition(
        status.get("conditions"),
        "TokenValid",
        plan.valid,
        plan.reason,
        plan.message,
        meta.get("generation"),
    )
    conditions = _expiry_condition(events, workspace, plan, warn_before, conditions)
    metrics.TOKEN_EXPIRY_SERIES.set(namespace, expiry_times(plan))
    current = plan.hashes[0] if plan.valid and plan.hashes else None
    return TokenOutcome(
        status={
            "tokenHashes": [h.as_status() for h in plan.hashes] if plan.valid else [],
            "tokenFingerprint": current.fingerprint if current else None,
            "tokenExpiresAt": current.as_status()["notAfter"] if current and current.expires else None,
        },
        conditions=conditions,
        deadlines=token_deadlines(plan, grace, warn_before),
    )


def _expiry_condition(
    events: EventPoster,
    workspace: dict[str, Any],
    plan: TokenPlan,
    warn_before: timedelta,
    conditions: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Set TokenExpiring; a Warning Event when it turns True (once per expiry, not per resync)."""
    notice = expiry_notice(plan, warn_before, datetime.now(UTC))
    existing = (workspace.get("status") or {}).get("conditions") or []
    before: dict[str, Any] = next((x for x in existing if x.get("type") == "TokenExpiring"), {})
    if notice.expiring and before.get("status") != "True":
        events.post(workspace, "Warning", "TokenExpiring", notice.message)
    return set_condition(
        conditions,
        "TokenExpiring",
        notice.expiring,
        notice.reason,
        notice.message,
        workspace["metadata"].get("generation"),
    )
