"""Request helpers shared by the resource routers."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import Response

from scim_core import constants as c

from ..directory import Table
from ..errors import ScimError, invalid_syntax, not_found
from ..protocol import attributes as attrs
from ..protocol.listing import paging
from ..responses import empty_response, scim_response
from ..state import ApiState

_JSON_TYPES = ("application/scim+json", "application/json", "text/json")


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.scim
    return state


def base_url(request: Request) -> str:
    """The SCIM base URL as the client addressed it (``request.base_url`` + the SCIM path)."""
    scope = request.scope
    host = next((value for key, value in scope["headers"] if key == b"host"), None)
    root = scope.get("app_root_path", scope.get("root_path", ""))
    server = scope.get("server")  # a tuple, or a list (Starlette's TestClient)
    return _base_url(scope.get("scheme", "http"), None if server is None else tuple(server), root, host)


@functools.lru_cache(maxsize=64)
def _base_url(scheme: str, server: tuple[str, int | None] | None, root: str, host: bytes | None) -> str:
    """Starlette's ``base_url`` of a request with these parts, made once per distinct parts
    (a replica sees a few Host headers) instead of a scope copy and a URL parse per request.
    Bounded: the Host header is the client's."""
    scope = {
        "type": "http",
        "scheme": scheme,
        "server": server,
        "root_path": root,
        "path": root if root.endswith("/") else root + "/",
        "query_string": b"",
        "headers": [] if host is None else [(b"host", host)],
    }
    return str(URL(scope=scope)).rstrip("/") + c.SCIM_BASE_PATH


async def json_body(request: Request) -> Any:
    """The request body as JSON: bad UTF-8, malformed or too-deep JSON is a 400."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in _JSON_TYPES and not ctype.endswith("+json"):
        raise ScimError(415, f"Unsupported content type {ctype!r}; send application/scim+json")
    raw = await request.body()
    if not raw.strip():
        raise invalid_syntax("The request body is empty")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_syntax("The request body is not valid UTF-8") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_syntax(f"The request body is not valid JSON: {exc.msg}") from exc


_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def resource_id(value: str, kind: str) -> str:
    """A SCIM id is a Kubernetes object name; anything else cannot exist: 404, never a call."""
    if not _NAME.fullmatch(value) or ".." in value:
        raise not_found(f"{kind} {value!r} not found")
    return value


LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@dataclass(frozen=True)
class Query:
    """The list/get query parameters every resource endpoint understands."""

    attributes: list[str] | None
    excluded: list[str] | None
    start: int
    count: int
    filter: str | None

    def project(self, resource: dict[str, Any]) -> dict[str, Any]:
        return attrs.project(resource, self.attributes, self.excluded)

    def wants(self, name: str) -> bool:
        return attrs.wants(name, self.attributes, self.excluded)


def read_query(request: Request) -> Query:
    q = request.query_params
    start, count = paging(q.get("startIndex"), q.get("count"), state_of(request).settings.max_results)
    return Query(
        attrs.parse_attribute_list(q.get("attributes")),
        attrs.parse_attribute_list(q.get("excludedAttributes")),
        start,
        count,
        q.get("filter"),
    )


def index_lookup(table: Table, indexed: dict[str, str]) -> Callable[[str, str], set[str] | None]:
    """Equality lookups a filter can use: ``id`` and the table's indexes (SCIM attribute,
    lowercase, -> index name)."""

    def lookup(attr: str, value: str) -> set[str] | None:
        if attr == "id":
            return {value} if value in table.by_id else set()
        return table.lookup(indexed[attr], value) if attr in indexed else None

    return lookup


def list_response(
    request: Request,
    query: Query,
    ids: list[str],
    render: Callable[[str], dict[str, Any]],
    cost: Callable[[str], int] | None = None,
    budget: int = 0,
) -> Response:
    """A ListResponse of one page of ``ids`` (``itemsPerPage`` = what is returned).

    With ``cost``, the page ends early (never empty) once the costs of the resources on it
    exceed ``budget``: RFC 7644 §3.4.2.4 lets a server return fewer than ``count``."""
    page = ids[query.start - 1 : query.start - 1 + query.count] if query.count else []
    if cost is not None:
        page = within_budget(page, cost, budget)
    resources = [query.project(render(i)) for i in page]
    body = {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(ids),
        "startIndex": query.start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
    return scim_response(request, body)


def within_budget(page: list[str], cost: Callable[[str], int], budget: int) -> list[str]:
    """The longest head of ``page`` whose costs stay within ``budget``, and never empty."""
    spent = 0
    for n, i in enumerate(page):
        spent += cost(i)
        if spent > budget and n > 0:
            return page[:n]
    return page


def not_modified(request: Request, tag: str) -> Response | None:
    """304 when ``If-None-Match`` names the current version."""
    inm = request.headers.get("if-none-match")
    if inm and (inm.strip() == "*" or tag in {t.strip() for t in inm.split(",")}):
        return empty_response(304, {"ETag": tag})
    return None
