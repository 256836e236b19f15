"""``scim-devenv``: build binaries, regenerate CRDs, run the local stack."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scim-devenv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("binaries", help="find or build etcd, kube-apiserver, kubectl, ... and print their paths")
    sub.add_parser("crds", help="write deploy/crds/*.yaml from the Python models")
    run = sub.add_parser("run", help="local control plane + operator + SCIM API + demo workspace")
    run.add_argument("--fresh", action="store_true", help="wipe run/ first (objects do not survive)")
    args = parser.parse_args(argv)

    if args.command == "binaries":
        from . import binaries

        for name, path in binaries.ensure().items():
            print(f"{name}: {path}")
        return 0
    if args.command == "crds":
        from .crds import write_crd_files

        for path in write_crd_files():
            print(path)
        return 0
    if args.command == "run":
        from .stack import run_stack

        return run_stack(fresh=args.fresh)
    parser.error(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
