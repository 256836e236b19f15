"""``scim-api``: serve the SCIM API with uvicorn (one worker; scale with replicas).

The process's composition root. It starts listing the cluster before it imports the web
stack: the informers' first pages are requested, then FastAPI, the routers and scim2-models
are imported in a worker thread while kube-apiserver encodes them. Imported first, they held
the start for about 3 s of one core with kube-apiserver idle (at 100,000 groups the start is
bounded by kube-apiserver serving the lists: docs/benchmarks.md, "API start"). Nothing is
served before the app exists; ``/readyz`` waits for every informer's first list as before.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import TYPE_CHECKING

import prometheus_client
import uvicorn
from uvicorn.loops.auto import auto_loop_factory

from scim_core import logs
from scim_core.settings import read_or_exit

from .config import ApiSettings
from .http_protocol import OneWriteProtocol
from .state import ApiState

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    settings = read_or_exit("scim-api", ApiSettings.from_env)  # one line, not a traceback
    parser = argparse.ArgumentParser(prog="scim-api")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument(
        "--log-format", choices=["json", "plain"], default=os.environ.get("SCIM_LOG_FORMAT", "json")
    )
    args = parser.parse_args(argv)
    logs.configure(args.log_format, logging.INFO)
    # the loop uvicorn.run would pick (uvloop when installed)
    with asyncio.Runner(loop_factory=auto_loop_factory(use_subprocess=False)) as runner:
        runner.run(serve(settings, args.host, args.port))


async def serve(settings: ApiSettings, host: str, port: int) -> None:
    """List the cluster, import and build the app meanwhile, then serve it until a signal."""
    from scim_core.kube import api_client

    try:
        api = await api_client()
    except Exception as exc:  # no kubeconfig and not in a pod: one line, not a traceback
        log.error("no cluster to connect to: %s", exc)
        raise SystemExit(3) from None
    state = ApiState(settings)
    await state.start(api)
    app = await asyncio.to_thread(web_app, settings, state)
    if settings.metrics_port:  # its own port: the SCIM port never serves /metrics
        try:
            registry = app.state.metrics.registry
            prometheus_client.start_http_server(settings.metrics_port, host, registry=registry)
        except OSError as exc:
            log.warning("metrics port %s unavailable: %s", settings.metrics_port, exc)
    # access_log off: the Authorization header is never logged anyway, but request lines
    # at 2,000 req/s cost more than they tell.
    # http: uvicorn's httptools protocol, each answer in one socket write (http_protocol.py).
    config = uvicorn.Config(
        app, host=host, port=port, http=OneWriteProtocol, access_log=False, log_level="info", log_config=None
    )
    await uvicorn.Server(config).serve()


def web_app(settings: ApiSettings, state: ApiState) -> FastAPI:
    """The FastAPI app over ``state`` (its informers already listing), imported here."""
    from .app import create_app

    return create_app(settings, state=state)


if __name__ == "__main__":
    main()
