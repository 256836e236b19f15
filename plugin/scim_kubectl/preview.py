"""``kubectl scim preview WS -f mapping.yaml``: who would gain or lose access if a role
mapping changed, before it is applied.

Both sides are computed with the operator's own ``plan_group`` (member resolution, subject
naming, mapping match, allow-list, namespace selection), once with the workspace as it is and
once with the changed mappings, and compared as (subject, namespace, role) grants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from scim_core import constants as c
from scim_core.resources import RoleMapping
from scim_operator.rbac import pattern_problems, plan_group

from . import table

Obj = Mapping[str, Any]


class MappingFileError(ValueError):
    """The file is not a role mapping, a list of them, or a ScimWorkspace."""


@dataclass(frozen=True, order=True)
class Grant:
    """One subject holding one role in one namespace."""

    subject: str
    namespace: str
    role: str  # "ClusterRole/edit"


@dataclass
class Preview:
    gained: dict[Grant, list[str]] = field(default_factory=dict)  # grant -> "group/mapping" sources
    lost: dict[Grant, list[str]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # mappings of the new spec outside the allow-list
    invalid_patterns: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def grants(found: Mapping[Grant, list[str]]) -> list[dict[str, Any]]:
            return [
                {"subject": g.subject, "namespace": g.namespace, "role": g.role, "via": via}
                for g, via in sorted(found.items())
            ]

        return {
            "gained": grants(self.gained),
            "lost": grants(self.lost),
            "refused": self.refused,
            "invalidPatterns": self.invalid_patterns,
        }


def _validated(items: Iterable[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        try:
            model = RoleMapping.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "mapping"
            raise MappingFileError(f"invalid role mapping: {where}: {first['msg']}") from exc
        out.append(model.model_dump(mode="json", exclude_none=True))
    return out


def changed_spec(current: Obj, documents: Sequence[Any]) -> dict[str, Any]:
    """The workspace spec with the file's mappings applied.

    A ScimWorkspace (or ``{roleMappings: [...]}``) replaces every mapping; a single mapping or
    a list of them replaces the mappings of the same name and adds the others."""
    docs = [d for d in documents if d is not None]
    if not docs:
        raise MappingFileError("the file holds no role mapping")
    replace_all = False
    given: list[Any] = []
    for doc in docs:
        if isinstance(doc, list):
            given += doc
        elif isinstance(doc, dict) and doc.get("kind") == c.WORKSPACE_KIND:
            replace_all = True
            given += (doc.get("spec") or {}).get("roleMappings") or []
        elif isinstance(doc, dict) and "roleMappings" in doc:
            replace_all = True
            given += doc.get("roleMappings") or []
        elif isinstance(doc, dict):
            given.append(doc)
        else:
            raise MappingFileError("expected a role mapping, a list of them, or a ScimWorkspace")
    new = _validated(given)
    names = [m["name"] for m in new]
    if len(set(names)) != len(names):
        raise MappingFileError("the file names one role mapping twice")
    spec = dict(current)
    if replace_all:
        spec["roleMappings"] = new
        return spec
    by_name = {m["name"]: m for m in new}
    kept = [by_name.pop(m["name"], m) for m in current.get("roleMappings") or []]
    spec["roleMappings"] = kept + list(by_name.values())
    return spec


@dataclass(frozen=True)
class Snapshot:
    """What the grants are computed from, read once: a workspace namespace's groups (each
    with its whole member list) and users, the cluster's namespace labels, and the
    operator's allow-lists."""

    namespace: str
    groups: Sequence[tuple[Obj, Sequence[Obj]]]
    users: Mapping[str, Obj]
    namespace_labels: Mapping[str, Mapping[str, str]]
    allowed_cluster_roles: frozenset[str]
    allowed_roles: frozenset[str]


def grants(snap: Snapshot, workspace_spec: Obj) -> tuple[dict[Grant, list[str]], list[str]]:
    """Every grant the operator would make for the snapshot's groups under
    ``workspace_spec``, with where it comes from; and the refused mappings."""
    found: dict[Grant, list[str]] = {}
    refused: set[str] = set()
    for group, members in snap.groups:
        gspec = {**(group.get("spec") or {}), "members": list(members)}
        display = str(gspec.get("displayName", group["metadata"]["name"]))
        plan = plan_group(
            snap.namespace, group["metadata"]["name"], gspec, workspace_spec, snap.users,
            snap.namespace_labels, snap.allowed_cluster_roles, snap.allowed_roles,
        )  # fmt: skip
        for binding in plan.bindings:
            for subject in binding.subjects:
                grant = Grant(subject, binding.namespace, f"{binding.role_kind}/{binding.role_name}")
                found.setdefault(grant, []).append(f"{display}/{binding.mapping}")
        refused |= {f"{r.mapping} ({r.role_kind}/{r.role_name} is not allowed)" for r in plan.refusals}
    return found, sorted(refused)


def compare(before: Mapping[Grant, list[str]], after: Mapping[Grant, list[str]]) -> Preview:
    return Preview(
        gained={g: sorted(set(v)) for g, v in after.items() if g not in before},
        lost={g: sorted(set(v)) for g, v in before.items() if g not in after},
    )


def preview(snap: Snapshot, current: Obj, changed: Obj) -> Preview:
    """What changes between the workspace as it is and with ``changed`` mappings."""
    before, _ = grants(snap, current)
    after, refused = grants(snap, changed)
    result = compare(before, after)
    result.refused = refused
    result.invalid_patterns = [f"{name}: {why}" for name, why in pattern_problems(changed)]
    return result


def render(result: Preview, namespace: str) -> str:
    gained = {g.subject for g in result.gained}
    lost = {g.subject for g in result.lost}
    lines = [
        f"Workspace {namespace}: {len(gained)} subject(s) would gain access, {len(lost)} would lose some."
    ]
    rows = [
        [sign, g.subject, g.role, g.namespace, ", ".join(via)]
        for sign, found in (("+", result.gained), ("-", result.lost))
        for g, via in sorted(found.items())
    ]
    if rows:
        lines.append(table.render(["", "SUBJECT", "ROLE", "NAMESPACE", "VIA GROUP/MAPPING"], rows))
    else:
        lines.append("No change in access.")
    lines += [f"refused mapping: {r}" for r in result.refused]
    lines += [f"invalid pattern (matches no group): {p}" for p in result.invalid_patterns]
    return "\n".join(lines)
