"""API-server failures become retryable 503s or clean 400s, never 500s."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from scim_api.kube_errors import NETWORK_ERRORS, kube_error


def _api(status: int, body: str | None = None) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = body
    return exc


@pytest.mark.parametrize("status", [0, 429, 500, 502, 503, 504, 403])
def test_retryable_and_permission_errors_are_503(status: int) -> None:
    err = kube_error(_api(status))
    assert err.status == 503 and err.headers["Retry-After"]


@pytest.mark.parametrize(
    ("status", "body", "detail"),
    [
        (422, '{"message": "spec.members: Too many"}', "Rejected by validation: spec.members: Too many"),
        (400, "not json", "Rejected by the Kubernetes API server: Reason"),
        (409, None, "Rejected by the Kubernetes API server: Reason"),
    ],
)
def test_client_errors_are_400(status: int, body: str | None, detail: str) -> None:
    err = kube_error(_api(status, body))
    assert err.status == 400 and err.detail == detail and err.scim_type == "invalidValue"


@pytest.mark.parametrize(
    "exc", [aiohttp.ClientConnectionError(), TimeoutError(), ConnectionResetError(), OSError()]
)
def test_network_errors_are_503(exc: BaseException) -> None:
    assert isinstance(exc, NETWORK_ERRORS)
    assert kube_error(exc).status == 503
