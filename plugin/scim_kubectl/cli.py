"""``kubectl scim`` (the console script ``kubectl-scim``): argument parsing and the five
subcommands, each a short sequence of reads (``cluster``) and pure steps."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import ConfigException

from scim_core import constants as c
from scim_core.members import assemble_members
from scim_operator.settings import OperatorSettings

from . import access, preview, status
from .cluster import Cluster, PluginError, connect, kubeconfig_path

TOKEN_WARNING = (
    "warning: this is the bearer token of workspace {ns}: whoever holds it can create, rename and "
    "delete groups and change their members there. Paste it into the identity provider now; do not "
    "store it or share it. It is printed only this once."
)


def _names(text: str) -> frozenset[str]:
    return frozenset(n.strip() for n in text.split(",") if n.strip())


def parser() -> argparse.ArgumentParser:
    # accepted before and after the subcommand, as kubectl does; SUPPRESS keeps a subparser
    # from resetting a value given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--kubeconfig",
        default=argparse.SUPPRESS,
        help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)",
    )
    common.add_argument("--context", default=argparse.SUPPRESS, help="the kubeconfig context to use")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-o", "--output", choices=("table", "json"), default="table")
    top = argparse.ArgumentParser(
        prog="kubectl scim", description="See and steer scim-kube workspaces.", parents=[common]
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "status", parents=[common, output], help="workspaces, token expiry, IdP last seen, conditions"
    )
    p.add_argument("-n", "--namespace", help="only this workspace namespace (default: all)")
    p = sub.add_parser("access", parents=[common, output], help="why a user has (or lacks) access")
    p.add_argument("user", help="ScimUser name (SCIM id) or userName")
    p.add_argument("-n", "--namespace", help="only this workspace namespace (default: all)")
    p = sub.add_parser(
        "rotate-token", parents=[common], help="rotate a workspace token and wait for the new one"
    )
    p.add_argument("workspace", metavar="WS", help="the workspace namespace")
    p.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the operator (default 60)"
    )
    p = sub.add_parser("token", parents=[common], help="print a workspace token once (with a warning)")
    p.add_argument("workspace", metavar="WS", help="the workspace namespace")
    p = sub.add_parser(
        "preview", parents=[common, output], help="who a changed role mapping would add or remove"
    )
    p.add_argument("workspace", metavar="WS", help="the workspace namespace")
    p.add_argument(
        "-f",
        "--filename",
        required=True,
        help="a role mapping, a list of them, or a ScimWorkspace ('-': stdin)",
    )
    defaults = OperatorSettings.from_env({})
    p.add_argument(
        "--allowed-cluster-roles",
        type=_names,
        default=defaults.allowed_cluster_roles,
        help="the operator's SCIM_ALLOWED_CLUSTER_ROLES (default, as the operator's: "
        f"{','.join(sorted(defaults.allowed_cluster_roles))})",
    )
    p.add_argument(
        "--allowed-roles",
        type=_names,
        default=defaults.allowed_roles,
        help="the operator's SCIM_ALLOWED_ROLES",
    )
    return top


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


async def cmd_status(cluster: Cluster, args: argparse.Namespace) -> int:
    views = [status.summarize(w) for w in await cluster.objects(c.WORKSPACE_PLURAL, args.namespace)]
    if args.output == "json":
        _print_json([v.as_json() for v in sorted(views, key=lambda v: (v.namespace, v.name))])
    else:
        print(status.render(views, datetime.now(UTC)))
    return 0


async def cmd_access(cluster: Cluster, args: argparse.Namespace) -> int:
    users = access.find_users(await cluster.objects(c.USER_PLURAL, args.namespace), args.user)
    if not users:
        raise PluginError(f"no ScimUser named {args.user!r} (by id or userName)")
    results: list[tuple[access.UserAccess, dict[tuple[str, str], bool]]] = []
    for user in sorted(users, key=lambda u: (u["metadata"]["namespace"], u["metadata"]["name"])):
        ns = user["metadata"]["namespace"]
        workspaces = await cluster.objects(c.WORKSPACE_PLURAL, ns)
        spec = min(workspaces, key=lambda w: w["metadata"]["name"]).get("spec") if workspaces else None
        trace = access.trace(
            ns, user, spec, await cluster.objects(c.GROUP_PLURAL, ns),
            await cluster.objects(c.SHARD_PLURAL, ns), await cluster.managed_bindings(ns),
        )  # fmt: skip
        reviews = (
            await cluster.reviews(trace.subject, trace.bound_namespaces(), access.COMMON_CHECKS)
            if trace.subject
            else {}
        )
        results.append((trace, reviews))
    if args.output == "json":
        _print_json([t.as_json(r) for t, r in results])
    else:
        print("\n\n".join(access.render(t, r, access.COMMON_CHECKS) for t, r in results))
    return 0


async def cmd_rotate(cluster: Cluster, args: argparse.Namespace) -> int:
    workspace = await cluster.workspace(args.workspace)
    old = (workspace.get("status") or {}).get("tokenFingerprint")
    await cluster.request_rotation(workspace, datetime.now(UTC).isoformat(timespec="microseconds"))
    print(f"rotation requested for workspace {args.workspace}; waiting for the operator...", file=sys.stderr)
    try:
        async with asyncio.timeout(args.timeout):
            rotated = await cluster.wait_for_new_fingerprint(args.workspace, old)
    except TimeoutError as exc:
        raise PluginError(
            f"the operator did not publish a new token within {args.timeout:g}s; is it running? "
            f"(kubectl -n {args.workspace} describe scimworkspace {workspace['metadata']['name']})"
        ) from exc
    new_status = rotated.get("status") or {}
    previous = [h for h in new_status.get("tokenHashes") or [] if h.get("fingerprint") == old]
    print(f"token rotated: {old or '(none)'} -> {new_status['tokenFingerprint']}")
    if previous:
        print(
            f"the previous token stays valid until {previous[0].get('notAfter')} at the latest; "
            f"give the identity provider the new one: kubectl scim token {args.workspace}"
        )
    return 0


async def cmd_token(cluster: Cluster, args: argparse.Namespace) -> int:
    workspace = await cluster.workspace(args.workspace)
    token = await cluster.token(workspace)
    print(TOKEN_WARNING.format(ns=args.workspace), file=sys.stderr)
    print(token)
    return 0


def _read_documents(filename: str) -> list[Any]:
    text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise PluginError(f"{filename}: not YAML: {exc}") from exc


async def cmd_preview(cluster: Cluster, args: argparse.Namespace) -> int:
    documents = _read_documents(args.filename)
    workspace = await cluster.workspace(args.workspace)
    current = workspace.get("spec") or {}
    try:
        changed = preview.changed_spec(current, documents)
    except preview.MappingFileError as exc:
        raise PluginError(f"{args.filename}: {exc}") from exc
    warning = await cluster.validate_mappings(workspace, changed["roleMappings"])
    if warning:
        print(warning, file=sys.stderr)
    ns = args.workspace
    shards = await cluster.objects(c.SHARD_PLURAL, ns)
    by_group: dict[str, list[dict[str, Any]]] = {}
    for shard in shards:
        by_group.setdefault(str((shard.get("spec") or {}).get("group", "")), []).append(shard)
    groups = [
        (g, assemble_members(g, by_group.get(g["metadata"]["name"], [])))
        for g in await cluster.objects(c.GROUP_PLURAL, ns)
    ]
    users = {u["metadata"]["name"]: u.get("spec") or {} for u in await cluster.objects(c.USER_PLURAL, ns)}
    snap = preview.Snapshot(
        ns, groups, users, await cluster.namespace_labels(), args.allowed_cluster_roles, args.allowed_roles
    )
    result = preview.preview(snap, current, changed)
    if args.output == "json":
        _print_json(result.as_json())
    else:
        print(preview.render(result, ns))
    return 0


COMMANDS = {
    "status": cmd_status,
    "access": cmd_access,
    "rotate-token": cmd_rotate,
    "token": cmd_token,
    "preview": cmd_preview,
}


async def run(args: argparse.Namespace, kubeconfig: str | None) -> int:
    api = await connect(kubeconfig, getattr(args, "context", None))
    try:
        return await COMMANDS[args.command](Cluster(api), args)
    finally:
        await api.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(run(args, kubeconfig_path(getattr(args, "kubeconfig", None))))
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except ApiException as exc:
        print(f"error: the API server answered {exc.status} {exc.reason}", file=sys.stderr)
    except (OSError, ConfigException) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
