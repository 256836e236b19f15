"""Generate the CustomResourceDefinitions from the pydantic models in ``resources.py``.

Pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema. The
conversion inlines ``$ref``s, turns ``X | None`` into plain optional ``X``, and drops
keywords the API server rejects (``title``, ``additionalProperties: false``, ...).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from . import constants as c
from .resources import (
    ScimGroupSpec,
    ScimGroupStatus,
    ScimMemberShardSpec,
    ScimMemberShardStatus,
    ScimUserSpec,
    ScimUserStatus,
    ScimWorkspaceSpec,
    ScimWorkspaceStatus,
)

_DROP = {"title", "additionalProperties", "$defs", "examples"}
#: Every status is one field to the API server's field manager: the operator alone writes it
#: (merge patches of the status subresource, whose merging this does not change), so nobody
#: needs ownership of its parts, and tracking them was half of a group's managedFields (one
#: entry per condition key and field: 27 of a reconciled group's 59 JSON objects, each a map
#: the API server decodes and keeps in its watch cache; docs/operator.md, "What the API server
#: keeps of our objects").
ATOMIC = {"x-kubernetes-map-type": "atomic"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Rewrite one pydantic JSON-schema node into its structural OpenAPI form."""
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        target.update(extra)
        return _structural(target, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {node['anyOf']!r} structurally")
        merged = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        merged.update(options[0])
        return _structural(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            if key == "additionalProperties" and isinstance(value, dict):
                out[key] = _structural(value, defs)
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key in ("items",):
            out[key] = _structural(value, defs)
        elif key == "default" and value is None:
            continue
        else:
            out[key] = value
    if "format" in out and out["format"] not in ("date-time", "int64", "int32", "byte"):
        del out["format"]
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Structural OpenAPI v3 schema of a pydantic model."""
    raw = model.model_json_schema(mode="validation")
    defs = raw.get("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    return schema


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    spec: type[BaseModel],
    status: type[BaseModel],
    columns: list[dict[str, Any]],
    description: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{c.GROUP}"},
        "spec": {
            "group": c.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                **({} if kind == c.SHARD_KIND else {"categories": ["scim"]}),
            },
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": model_schema(spec),
                                "status": {**model_schema(status), **ATOMIC},
                            },
                        }
                    },
                }
            ],
        },
    }


def _ready_column() -> dict[str, Any]:
    return {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    }


def _age_column() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def all_crds() -> list[dict[str, Any]]:
    """The four CRDs (workspaces, groups, member shards, users), in install order."""
    return [
        _crd(
            c.WORKSPACE_KIND,
            c.WORKSPACE_PLURAL,
            ["scimws"],
            ScimWorkspaceSpec,
            ScimWorkspaceStatus,
            [
                {"name": "Display Name", "type": "string", "jsonPath": ".spec.displayName"},
                {"name": "Groups", "type": "integer", "jsonPath": ".status.groups"},
                {"name": "Users", "type": "integer", "jsonPath": ".status.users"},
                {"name": "Token Expires", "type": "string", "jsonPath": ".status.tokenExpiresAt"},
                _ready_column(),
                _age_column(),
            ],
            "A SCIM tenant: one per namespace. Holds token settings and role mappings.",
        ),
        _crd(
            c.GROUP_KIND,
            c.GROUP_PLURAL,
            ["scimgrp"],
            ScimGroupSpec,
            ScimGroupStatus,
            [
                {"name": "Display Name", "type": "string", "jsonPath": ".spec.displayName"},
                {"name": "Members", "type": "integer", "jsonPath": ".status.memberCount"},
                {
                    "name": "Unresolved",
                    "type": "integer",
                    "jsonPath": ".status.unresolvedMembers",
                    "priority": 1,
                },
                {"name": "Bindings", "type": "integer", "jsonPath": ".status.boundSubjects"},
                _ready_column(),
                _age_column(),
            ],
            "A SCIM Group pushed by an identity provider; metadata.name is its SCIM id.",
        ),
        _crd(
            c.SHARD_KIND,
            c.SHARD_PLURAL,
            ["scimshard"],
            ScimMemberShardSpec,
            ScimMemberShardStatus,
            [
                {"name": "Group", "type": "string", "jsonPath": ".spec.group"},
                _age_column(),
            ],
            "Overflow member storage of a large ScimGroup (internal; owned by the group).",
        ),
        _crd(
            c.USER_KIND,
            c.USER_PLURAL,
            ["scimusr"],
            ScimUserSpec,
            ScimUserStatus,
            [
                {"name": "User Name", "type": "string", "jsonPath": ".spec.userName"},
                {"name": "Active", "type": "boolean", "jsonPath": ".spec.active"},
                {"name": "Groups", "type": "integer", "jsonPath": ".status.groups"},
                _ready_column(),
                _age_column(),
            ],
            "A person who already exists in the workspace; SCIM may read it and set active.",
        ),
    ]
