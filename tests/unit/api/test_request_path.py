"""The read path's cuts (docs/benchmarks.md "Reads"): SCIM routes served without FastAPI's
per-request handler when it has nothing to do, and the request metrics' label look-up done
once per label set. Behaviour must stay what it was: same answers, same errors, same series."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.testclient import TestClient

from scim_api.app import add_routes, create_app, direct_app
from scim_api.config import ApiSettings
from scim_api.errors import ScimError
from scim_api.metrics import LATENCY, REFUSED, REQUESTS, ApiMetrics
from scim_api.routers.common import base_url
from scim_core import constants as c

router = APIRouter()


@router.get("/things/{tid}")
async def thing(request: Request, tid: str) -> Response:
    if tid == "missing":
        raise ScimError(404, f"Thing {tid!r} not found")
    return PlainTextResponse(f"{tid} {request.query_params.get('q', '')}")


@router.get("/counted/{n:int}")
async def counted(request: Request, n: int) -> Response:
    return PlainTextResponse(str(n + 1))


@router.get("/typed")
async def typed(request: Request, q: int = 0) -> Response:
    return PlainTextResponse(str(q * 2))


@router.get("/sync")
def sync(request: Request) -> Response:
    return PlainTextResponse("sync")


def _app() -> FastAPI:
    app = FastAPI()

    @app.exception_handler(ScimError)
    async def _scim_error(request: Request, exc: ScimError) -> Response:
        return PlainTextResponse(f"handled {exc.status}: {exc.detail}", status_code=exc.status)

    add_routes(app, router.routes)
    return app


def _route(app: FastAPI, path: str) -> APIRoute:
    return next(r for r in app.router.routes if isinstance(r, APIRoute) and r.path == path)


def test_only_routes_fastapi_has_nothing_to_do_for_are_served_directly() -> None:
    app = _app()
    assert direct_app(_route(app, "/things/{tid}")) is not None
    assert direct_app(_route(app, "/counted/{n:int}")) is None  # FastAPI converts and validates n
    assert direct_app(_route(app, "/typed")) is None  # FastAPI reads and validates q
    assert direct_app(_route(app, "/sync")) is None  # FastAPI runs it in its thread pool


def test_every_resource_endpoint_is_served_directly() -> None:
    app = create_app(ApiSettings())
    resources = [
        r
        for r in app.router.routes
        if isinstance(r, APIRoute)
        and r.path.startswith((f"{c.SCIM_BASE_PATH}/Groups", f"{c.SCIM_BASE_PATH}/Users"))
        and not any(d in r.path for d in ("/Schemas", "/ResourceTypes", "/ServiceProviderConfig", "/.search"))
    ]
    assert len(resources) > 20  # /Groups, /Users, their ids, the Entra alias
    assert [r.path for r in resources if r.app.__qualname__ != direct_app.__name__ + ".<locals>.app"] == []


def test_same_answers_through_either_handler() -> None:
    client = TestClient(_app())
    assert client.get("/things/a1?q=x").text == "a1 x"
    missing = client.get("/things/missing")
    assert (missing.status_code, missing.text) == (404, "handled 404: Thing 'missing' not found")
    assert client.get("/counted/41").text == "42"
    assert client.get("/counted/x").status_code == 404  # no route matches
    assert client.get("/typed?q=4").text == "8"
    assert client.get("/typed?q=x").status_code == 422  # FastAPI's validation, kept
    assert client.get("/sync").text == "sync"
    assert client.head("/things/a1").status_code == 405  # GET only, as an APIRoute declares it
    assert client.post("/things/a1").status_code == 405


def _sample(metrics: ApiMetrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_request_metrics_count_each_label_set_apart() -> None:
    metrics = ApiMetrics()
    for _ in range(3):
        metrics.observe("ws-a", "GET", "/Groups", 200, 0.002)
    metrics.observe("ws-a", "GET", "/Groups", 404, 0.003)
    metrics.observe("ws-b", "GET", "/Groups", 200, 0.004)
    metrics.observe("", "GET", "/Groups", 401, 0.001)
    metrics.observe("", "GET", "/Groups", 401, 0.001)
    get = {"method": "GET", "route": "/Groups"}
    assert _sample(metrics, REQUESTS, {"workspace": "ws-a", **get, "status": "200"}) == 3
    assert _sample(metrics, REQUESTS, {"workspace": "ws-a", **get, "status": "404"}) == 1
    assert _sample(metrics, REQUESTS, {"workspace": "ws-b", **get, "status": "200"}) == 1
    assert _sample(metrics, REQUESTS, {"workspace": "", **get, "status": "401"}) == 2
    assert _sample(metrics, f"{LATENCY}_count", get) == 7
    assert _sample(metrics, f"{LATENCY}_sum", get) == pytest.approx(0.002 * 3 + 0.003 + 0.004 + 0.002)
    assert _sample(metrics, REFUSED, {"status": "401"}) == 2


@pytest.mark.parametrize(
    "scope",
    [
        {"scheme": "http", "server": ("127.0.0.1", 8080), "headers": [(b"host", b"scim.example.com")]},
        {"scheme": "https", "server": ("10.0.0.1", 443), "headers": [(b"host", b"scim.example.com:8443")]},
        {"scheme": "https", "server": ("10.0.0.1", 443), "headers": []},  # no Host: the server's address
        {"scheme": "http", "server": ("10.0.0.1", 80), "headers": []},
        {"scheme": "http", "server": ("::1", 8080), "headers": []},
        {"scheme": "http", "server": ["testserver", 80], "headers": [(b"host", b"testserver")]},  # TestClient
        {"scheme": "http", "server": None, "headers": [(b"host", b"[::1]:8080")]},
        {"scheme": "http", "server": ("127.0.0.1", 8080), "headers": [(b"host", b"bad host:x")]},
        {
            "scheme": "https",
            "server": ("127.0.0.1", 8080),
            "headers": [(b"host", b"a.example")],
            "root_path": "/p",
        },
        {
            "scheme": "https",
            "server": ("127.0.0.1", 8080),
            "headers": [(b"host", b"a.example")],
            "root_path": "/p/",
        },
        {"scheme": "http", "server": ("127.0.0.1", 8080), "headers": [(b"host", b"a"), (b"host", b"b")]},
    ],
)
def test_base_url_is_starlettes(scope: dict[str, Any]) -> None:
    full = {
        "type": "http",
        "method": "GET",
        "path": "/api/auth/scim/v2/Groups",
        "query_string": b"x=1",
        **scope,
    }
    for _ in range(2):  # made, then from the cache
        assert base_url(Request(full)) == str(Request(full).base_url).rstrip("/") + c.SCIM_BASE_PATH
