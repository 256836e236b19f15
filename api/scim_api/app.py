"""The FastAPI application: wiring only. Protocol logic lives in ``protocol/``, storage in
``store.py``/``directory.py``; this module connects them to HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from kubernetes_asyncio import client
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from scim_core import constants as c

from .config import ApiSettings
from .errors import ScimError
from .limits import BodyLimitMiddleware
from .responses import scim_response
from .routers import discovery, groups, health, users
from .state import ApiState

log = logging.getLogger(__name__)

ApiFactory = Callable[[], Awaitable[client.ApiClient]]


def create_app(settings: ApiSettings | None = None, api_factory: ApiFactory | None = None) -> FastAPI:
    settings = settings or ApiSettings.from_env()
    state = ApiState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if api_factory is None:
            from scim_core.kube import api_client

            api = await api_client()
        else:
            api = await api_factory()
        await state.start(api)
        yield
        await state.stop()

    app = FastAPI(
        title="SCIM 2.0 for Kubernetes",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{c.SCIM_BASE_PATH}/openapi.json",
    )
    app.state.scim = state
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)

    @app.exception_handler(ScimError)
    async def _scim_error(request: Request, exc: ScimError) -> Response:
        return scim_response(request, exc.body(), exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = {404: "Resource not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
        err = ScimError(exc.status_code, detail)
        return scim_response(request, err.body(), exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        err = ScimError(400, f"Invalid request: {where}: {first.get('msg', 'invalid')}", "invalidValue")
        return scim_response(request, err.body(), 400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        err = ScimError(500, "Internal error; the request was not applied")
        return scim_response(request, err.body(), 500)

    app.include_router(health.router)
    # Alias for admins who followed the product's older Entra guide and entered
    # ".../scim/v2/Groups" as the Tenant URL: Entra then calls ".../Groups/Users" and
    # ".../Groups/Groups". Registered first so "Users"/"Groups" are never taken for a group id.
    alias = f"{c.SCIM_BASE_PATH}/Groups"
    for router in (discovery.router, users.router, groups.router):
        app.include_router(router, prefix=alias, include_in_schema=False)
    for router in (discovery.router, groups.router, users.router):
        app.include_router(router, prefix=c.SCIM_BASE_PATH)
    return app
