"""``scim-operator``: run the Kopf operator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets

import kopf

from scim_core import logs


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
    parser.add_argument("--liveness", default=os.environ.get("SCIM_LIVENESS", "http://0.0.0.0:8081/healthz"))
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
            liveness_endpoint=args.liveness or None,
        )
    )


if __name__ == "__main__":
    main()
