"""The FastAPI application: wiring only. Protocol logic lives in ``protocol/``, storage in
``store.py``/``directory.py``; this module connects them to HTTP."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from kubernetes_asyncio import client
from starlette.convertors import StringConvertor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from scim_core import constants as c

from .config import ApiSettings
from .errors import ScimError
from .limits import BodyLimitMiddleware
from .metrics import ApiMetrics
from .observation import observation
from .observe import ObserveMiddleware
from .responses import scim_response
from .routers import discovery, groups, health, users
from .state import ApiState
from .trace import IdpTrace, TraceWriter

log = logging.getLogger(__name__)

ApiFactory = Callable[[], Awaitable[client.ApiClient]]


def create_app(
    settings: ApiSettings | None = None, api_factory: ApiFactory | None = None, state: ApiState | None = None
) -> FastAPI:
    """The app over ``state``; its informers are started by the lifespan unless they already
    run (``scim-api`` starts them before it imports this module: main.py)."""
    settings = settings or ApiSettings.from_env()
    state = state or ApiState(settings)
    metrics = ApiMetrics(lambda: state.informers)
    writer = TraceWriter(IdpTrace(settings.status_interval), state.directory, metrics, lambda: state.api)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not state.started:
            if api_factory is None:
                from scim_core.kube import api_client

                api = await api_client()
            else:
                api = await api_factory()
            await state.start(api)
        writer.start()
        yield
        await writer.stop()
        await state.stop()

    app = FastAPI(
        title="SCIM 2.0 for Kubernetes",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{c.SCIM_BASE_PATH}/openapi.json",
        # No OpenTelemetry here (the API's metrics are Prometheus, docs/api.md): FastAPI's native
        # telemetry otherwise asks OpenTelemetry's global providers, through os.environ, on
        # every request whether to trace it (about 3 % of a filter read's CPU, py-spy).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.scim = state
    app.state.metrics = metrics
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # outermost (added last): sees 413s and refusals too
    app.add_middleware(ObserveMiddleware, metrics=metrics, writer=writer)

    def answer(request: Request, err: ScimError, headers: dict[str, str] | None = None) -> Response:
        observation(request).failed(err.scim_type, err.detail)  # for the IdP trace and audit
        return scim_response(request, err.body(), err.status, headers)

    @app.exception_handler(ScimError)
    async def _scim_error(request: Request, exc: ScimError) -> Response:
        return answer(request, exc, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = {404: "Resource not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
        return answer(request, ScimError(exc.status_code, detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return answer(
            request,
            ScimError(400, f"Invalid request: {where}: {first.get('msg', 'invalid')}", "invalidValue"),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return answer(request, ScimError(500, "Internal error; the request was not applied"))

    add_routes(app, health.router.routes)
    # Alias for admins who followed the product's older Entra guide and entered
    # ".../scim/v2/Groups" as the Tenant URL: Entra then calls ".../Groups/Users" and
    # ".../Groups/Groups". Registered before the one kind of route that could take them for a
    # group id (a template under "/Groups/"); every other route before the alias, so a list
    # read is matched within its first few routes (routes are tried in order).
    real = [*groups.router.routes, *users.router.routes, *discovery.router.routes]
    add_routes(app, [r for r in real if not _under_groups(r)], prefix=c.SCIM_BASE_PATH)
    alias = f"{c.SCIM_BASE_PATH}/Groups"
    for router in (discovery.router, users.router, groups.router):
        add_routes(app, router.routes, prefix=alias, include_in_schema=False)
    add_routes(app, [r for r in real if _under_groups(r)], prefix=c.SCIM_BASE_PATH)
    return app


def _under_groups(route: BaseRoute) -> bool:
    return isinstance(route, APIRoute) and route.path.startswith("/Groups/")


def add_routes(
    app: FastAPI, routes: Sequence[BaseRoute], prefix: str = "", include_in_schema: bool = True
) -> None:
    """A router's routes added to the app itself, in order, as plain routes.

    Not ``include_router``: FastAPI 0.165 keeps an included router as one lazy node that
    matches every request against each of its routes twice (``_IncludedRouter.matches``, then
    ``_handle_selected``), saving and restoring scope keys around each candidate; with the
    Entra alias routers in front, a ``/Groups`` read ran about 75 route checks in Python
    (a fifth of its CPU, py-spy; docs/benchmarks.md). A plain route is one regex match."""
    for route in routes:
        assert isinstance(route, APIRoute), route
        app.add_api_route(
            prefix + route.path,
            route.endpoint,
            methods=sorted(route.methods or ()),
            name=route.name,
            status_code=route.status_code,
            response_model=route.response_model,
            include_in_schema=include_in_schema and route.include_in_schema,
        )
        added = app.router.routes[-1]
        assert isinstance(added, APIRoute) and added.endpoint is route.endpoint, added
        direct = direct_app(added)
        if direct is not None:
            added.app = direct


def direct_app(route: APIRoute) -> ASGIApp | None:
    """The route served without FastAPI's request handler, when that handler has nothing to do.

    Every SCIM endpoint takes the request and its path parameters (strings) and returns a
    ``Response``; it reads its own query, body and headers. For those, FastAPI's handler per
    request (two ``AsyncExitStack``s, ``solve_dependencies``, its response checks) is work
    without effect: a sixth of a filter read's Python function calls (docs/benchmarks.md "Reads").
    The endpoint is called directly; an exception it raises reaches the app's exception
    handlers (``ExceptionMiddleware``) as before. None: the route keeps FastAPI's handler."""
    endpoint = route.endpoint
    names = list(inspect.signature(endpoint).parameters)
    if (
        not inspect.iscoroutinefunction(endpoint)
        or names[:1] != ["request"]
        or set(names[1:]) != set(route.param_convertors)
        or any(type(conv) is not StringConvertor for conv in route.param_convertors.values())
    ):
        return None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send), **scope["path_params"])
        await response(scope, receive, send)

    return app
