"""A synchronous scim2-client engine over plain ``httpx`` (0.28).

scim2-client ships a network engine only for ``httpx2`` (its ``[httpx2]`` extra); this one
mirrors it on ``httpx.Client``. Starlette's ``TestClient`` is an ``httpx.Client``, so the
engine also drives the FastAPI app in-process. ``base_path`` and ``headers`` let it share
the session's ``TestClient`` (base URL ``http://testserver``, no default headers) instead
of opening a second one, whose lifespan would start another set of informers.
"""

from __future__ import annotations

from typing import Any

import httpx
from scim2_client import BaseSyncSCIMClient
from scim2_client.errors import RequestNetworkException


class HttpxSyncSCIMClient(BaseSyncSCIMClient):
    def __init__(
        self,
        client: httpx.Client,
        *args: Any,
        base_path: str = "",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.client = client
        self.base_path = base_path.rstrip("/")
        self.headers = headers or {}

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if url.startswith("/"):
            url = self.base_path + url
        kwargs["headers"] = {**self.headers, **(kwargs.get("headers") or {})}
        try:
            return self.client.request(method, url, **kwargs)
        except httpx.RequestError as exc:
            err = RequestNetworkException()
            err.add_note(str(exc))
            raise err from exc
