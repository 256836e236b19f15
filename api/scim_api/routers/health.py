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
    reason = request.app.state.scim.not_ready()
    if reason is None:
        return PlainTextResponse("ok")
    return PlainTextResponse(reason, status_code=503)
