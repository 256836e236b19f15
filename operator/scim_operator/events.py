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

from . import metrics
from .background import BoundedBackground
from .leader import Leadership

log = logging.getLogger(__name__)
COMPONENT = "scim-operator"
#: Events the operator posts at once, all of them (one limiter, built in ``app.build``): a
#: first sync writing 1,000 RoleBindings no longer sends their 1,000 Events at once.
EVENT_CONCURRENCY = 4
#: Events held at most (posting, or waiting for a slot); more are dropped and counted in
#: ``scim_operator_events_dropped_total``. About 2 kB each: a few MB at most.
EVENT_CAPACITY = 1000


def event_limiter(concurrency: int = EVENT_CONCURRENCY, capacity: int = EVENT_CAPACITY) -> BoundedBackground:
    return BoundedBackground(concurrency, capacity, dropped=metrics.EVENTS_DROPPED)


class EventPoster:
    """The operator's Events about its writes: best-effort, posted in the background through
    one bounded limiter (an Event never holds up the write it reports on, never floods the
    API server, and is dropped rather than queued without end). With ``leader``, an Event
    whose turn comes once this replica no longer leads is not posted: like every write, only
    the leader's (a frozen leader thawed with Events still queued writes nothing)."""

    def __init__(
        self,
        api: client.ApiClient,
        limiter: BoundedBackground | None = None,
        leader: Leadership | None = None,
    ) -> None:
        self.api = api
        self.limiter = limiter if limiter is not None else event_limiter()
        self.leader = leader

    def post(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> bool:
        """Queue one Event; False when it was dropped (the limiter is full)."""

        async def send() -> None:
            if self.leader is None or self.leader.is_leader():
                await post_event(self.api, involved, type_, reason, message)

        return self.limiter.submit(send)


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
