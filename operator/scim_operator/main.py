"""``scim-operator``: run the Kopf operator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

import kopf


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scim-operator")
    parser.add_argument(
        "--peering",
        default=os.environ.get("SCIM_PEERING"),
        help="Kopf peering name (HA); standalone when unset",
    )
    parser.add_argument("--liveness", default=os.environ.get("SCIM_LIVENESS", "http://0.0.0.0:8081/healthz"))
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    from . import handlers  # noqa: F401  (registers the handlers)

    asyncio.run(
        kopf.operator(
            clusterwide=True,
            standalone=args.peering is None,
            peering_name=args.peering,
            liveness_endpoint=args.liveness or None,
        )
    )


if __name__ == "__main__":
    main()
