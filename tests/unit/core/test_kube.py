"""The shared "already gone is fine" idiom."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core.kube import ignoring


@pytest.mark.parametrize(
    ("statuses", "raised", "swallowed"),
    [
        ((), 404, True),
        ((), 409, False),
        ((404, 409, 422), 409, True),
        ((404, 409, 422), 500, False),
        ((409,), 404, False),
    ],
)
def test_ignoring(statuses: tuple[int, ...], raised: int, swallowed: bool) -> None:
    def call() -> None:
        with ignoring(*statuses):
            raise ApiException(status=raised)

    if swallowed:
        call()
    else:
        with pytest.raises(ApiException):
            call()


def test_ignoring_passes_other_errors_and_success() -> None:
    with ignoring():
        pass
    with pytest.raises(ValueError), ignoring():
        raise ValueError("not an API error")
