"""Kubernetes Events about access changes, posted directly (``kubectl describe`` shows
them). Kopf's own posting is tied to its handler context and to its log records; these
are explicit and also work from the reconcile workers."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core.timestamps import now_utc

log = logging.getLogger(__name__)
COMPONENT = "scim-operator"


async def post_event(
    api: client.ApiClient, involved: dict[str, Any], type_: str, reason: str, message: str
) -> None:
    meta = involved["metadata"]
    now = now_utc()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await client.CoreV1Api(api).create_namespaced_event(meta["namespace"], body)
    except ApiException as exc:  # an Event is never worth failing a reconcile for
        log.warning(
            "could not post event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], exc.reason
        )
