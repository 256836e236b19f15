"""``scim-operator``: parse flags, read settings once, hand them to the composition root."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import urllib.parse

from scim_core import heap, kube, logs
from scim_core.settings import read_or_exit

from . import app
from .settings import OperatorSettings


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


def tune_memory() -> None:
    """Process-wide memory settings, made before anything large is allocated: glibc's mmap
    threshold pinned (``heap.fix_mmap_threshold``) and TLS read buffers of 64 KiB
    (``kube.small_tls_buffers``). What each saves at 100,000 groups and users: docs/operator.md,
    "Memory"."""
    heap.fix_mmap_threshold(heap.libc_function("mallopt"))
    kube.small_tls_buffers()


def main(argv: list[str] | None = None) -> None:
    tune_memory()
    settings = read_or_exit("scim-operator", OperatorSettings.from_env)  # one line, not a traceback
    parser = argparse.ArgumentParser(prog="scim-operator")
    parser.add_argument(
        "--lease", default=settings.lease_name,
        help="name of the coordination.k8s.io Lease that elects the one active replica",
    )  # fmt: skip
    parser.add_argument(
        "--lease-namespace", default=settings.lease_namespace,
        help="namespace of the Lease (default: this Pod's namespace, $SCIM_LEASE_NAMESPACE)",
    )  # fmt: skip
    parser.add_argument("--identity", default=settings.identity, help="holderIdentity in the Lease")
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
    settings = dataclasses.replace(
        settings, lease_name=args.lease, lease_namespace=args.lease_namespace, identity=args.identity
    )
    asyncio.run(app.run(settings, liveness=args.liveness or None))


if __name__ == "__main__":
    main()
