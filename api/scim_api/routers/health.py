"""Liveness and readiness for the kubelet (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import PlainTextResponse

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok")


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> PlainTextResponse:
    if request.app.state.scim.ready():
        return PlainTextResponse("ok")
    return PlainTextResponse("cache not synced", status_code=503)
