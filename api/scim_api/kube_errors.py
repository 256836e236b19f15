"""API-server failures as the SCIM errors an IdP should see (and retry on).

Shared by every store (groups, users) so each maps 429/5xx/network errors the same way:
a 503 with ``Retry-After``, never a 500."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import orjson
from kubernetes_asyncio.client.exceptions import ApiException

from .errors import ScimError, bad_request, unavailable

log = logging.getLogger(__name__)

#: What a request to the API server may raise besides ``ApiException``.
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, OSError)


def kube_error(exc: BaseException) -> ScimError:
    """Map an API-server failure to what an IdP should see (and retry on)."""
    if isinstance(exc, ApiException):
        if exc.status in (429, 500, 502, 503, 504) or exc.status is None or exc.status == 0:
            return unavailable("The Kubernetes API server is unavailable; retry later")
        if exc.status == 422:
            return bad_request(f"Rejected by validation: {reason(exc)}")
        if exc.status == 403:
            log.error("forbidden by the API server: %s", reason(exc))
            return unavailable("The SCIM service lacks a permission; see its logs")
        if exc.status is not None and 400 <= exc.status < 500:
            return bad_request(f"Rejected by the Kubernetes API server: {reason(exc)}")
    return unavailable("The Kubernetes API server is unavailable; retry later")


def reason(exc: ApiException) -> str:
    """The API server's message from an error body (at most 500 characters)."""
    try:
        return str(orjson.loads(exc.body or b"").get("message", exc.reason))[:500]
    except (orjson.JSONDecodeError, TypeError, AttributeError):
        return str(exc.reason)
