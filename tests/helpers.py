"""Small helpers shared by the cluster tests."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from scim_core import constants as c

T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy (or raise with the last error)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (AssertionError, ApiException, KeyError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last error: {last!r}")


def custom(kube: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube)


def create_workspace(kube: client.ApiClient, namespace: str, name: str = "ws", **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": c.API_VERSION,
        "kind": c.WORKSPACE_KIND,
        "metadata": {"name": name},
        "spec": {"displayName": f"Workspace {namespace}", **spec},
    }
    result: dict[str, Any] = custom(kube).create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, body
    )
    return result


def get_workspace(kube: client.ApiClient, namespace: str, name: str = "ws") -> dict[str, Any]:
    result: dict[str, Any] = custom(kube).get_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, name
    )
    return result


def read_token(kube: client.ApiClient, namespace: str, secret: str = "scim-token") -> str | None:
    try:
        obj = client.CoreV1Api(kube).read_namespaced_secret(secret, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    raw = (obj.data or {}).get(c.TOKEN_SECRET_KEY)
    return base64.b64decode(raw).decode() if raw else None


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def workspace_with_token(kube: client.ApiClient, namespace: str) -> str:
    """Create a workspace, wait for the operator to publish its token hash; the token."""
    from scim_core.tokens import token_sha256

    create_workspace(kube, namespace)

    def ready() -> str | None:
        token = read_token(kube, namespace)
        status = get_workspace(kube, namespace).get("status") or {}
        hashes = {h["sha256"] for h in status.get("tokenHashes") or []}
        return token if token and token_sha256(token) in hashes else None

    return eventually(ready)


def create_user(
    kube: client.ApiClient, namespace: str, uid: str, user_name: str, **spec: Any
) -> dict[str, Any]:
    body = {
        "apiVersion": c.API_VERSION,
        "kind": c.USER_KIND,
        "metadata": {"name": uid},
        "spec": {"userName": user_name, **spec},
    }
    result: dict[str, Any] = custom(kube).create_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.USER_PLURAL, body
    )
    return result


@contextmanager
def health_probed(get_status: Callable[[], int], pause: float = 0.01) -> Iterator[list[float]]:
    """Poll a health endpoint (``get_status`` returns its HTTP status) in a thread while the
    block runs; yields the list of answer times, filled as the probe goes. Every answer
    must be 200."""
    times: list[float] = []
    statuses: list[int] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            t0 = time.monotonic()
            statuses.append(get_status())
            times.append(time.monotonic() - t0)
            time.sleep(pause)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        yield times
    finally:
        done.set()
        prober.join()
    assert set(statuses) <= {200}, sorted(set(statuses))


def allowed(
    kube: client.ApiClient,
    user: str,
    namespace: str,
    verb: str = "get",
    resource: str = "pods",
    group: str = "",
) -> bool:
    """What the API server's authorizer says now (a SubjectAccessReview): the one judge of
    whether access is really gone."""
    attributes = client.V1ResourceAttributes(namespace=namespace, verb=verb, resource=resource, group=group)
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user=user, resource_attributes=attributes)
    )
    return bool(client.AuthorizationV1Api(kube).create_subject_access_review(review).status.allowed)
