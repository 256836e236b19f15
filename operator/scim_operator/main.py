"""``scim-operator``: run the Kopf operator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import urllib.parse

import kopf

from scim_core import logs


def liveness_endpoint(value: str) -> str | None:
    """``--liveness``: an http URL with an explicit port, or empty for no endpoint.

    Kopf serves port 80 when the URL has no port or port 0, which a non-root user cannot
    bind (and a second operator on the machine collides on): refuse those up front."""
    if not value:
        return None
    parts = urllib.parse.urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or not port:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give an http URL with a host and a port from 1 to 65535, "
            "e.g. http://0.0.0.0:8081/healthz (empty: no endpoint)"
        )
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scim-operator")
    parser.add_argument(
        "--peering",
        default=os.environ.get("SCIM_PEERING"),
        help="ClusterKopfPeering name: replicas elect one active operator; standalone when unset",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=int(os.environ.get("SCIM_PEERING_PRIORITY", "0")) or secrets.randbelow(1_000_000) + 1,
        help="peering priority (random by default, so replicas of one Deployment differ)",
    )
    parser.add_argument(
        "--liveness",
        type=liveness_endpoint,
        default=os.environ.get("SCIM_LIVENESS", "http://0.0.0.0:8081/healthz"),
        help="Kopf's health endpoint, an http URL with its port (empty: none)",
    )
    parser.add_argument(
        "--log-format", choices=["json", "plain"], default=os.environ.get("SCIM_LOG_FORMAT", "json")
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logs.configure(args.log_format, logging.DEBUG if args.verbose else logging.INFO)
    # Kopf logs every successful handler call at INFO: keep those out of production logs.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if args.peering:
        os.environ["SCIM_PEERING"] = args.peering  # read by the handlers' settings
    from . import handlers  # noqa: F401  (registers the handlers)

    asyncio.run(
        kopf.operator(
            clusterwide=True,
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=args.priority,
            liveness_endpoint=args.liveness,
        )
    )


if __name__ == "__main__":
    main()
