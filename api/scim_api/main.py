"""``scim-api``: serve the SCIM API with uvicorn (one worker; scale with replicas)."""

from __future__ import annotations

import argparse
import logging
import os

import prometheus_client
import uvicorn

from scim_core import logs
from scim_core.settings import read_or_exit

from .app import create_app
from .config import ApiSettings
from .http_protocol import OneWriteProtocol


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
    app = create_app(settings)
    if settings.metrics_port:  # its own port: the SCIM port never serves /metrics
        try:
            prometheus_client.start_http_server(
                settings.metrics_port, args.host, registry=app.state.metrics.registry
            )
        except OSError as exc:
            logging.getLogger(__name__).warning("metrics port %s unavailable: %s", settings.metrics_port, exc)
    # access_log off: the Authorization header is never logged anyway, but request lines
    # at 2,000 req/s cost more than they tell.
    # http: uvicorn's httptools protocol, each answer in one socket write (http_protocol.py).
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http=OneWriteProtocol,
        access_log=False,
        log_level="info",
        log_config=None,
    )


if __name__ == "__main__":
    main()
