"""``scim-operator``: parse flags, read settings once, hand them to the composition root."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os

from scim_core import logs

from . import app
from .settings import OperatorSettings


def main(argv: list[str] | None = None) -> None:
    settings = OperatorSettings.from_env()
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
    parser.add_argument("--liveness", default=os.environ.get("SCIM_LIVENESS", "http://0.0.0.0:8081/healthz"))
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
