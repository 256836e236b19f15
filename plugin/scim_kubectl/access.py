"""``kubectl scim access USER``: why a person has (or lacks) access, as a chain.

user → the groups listing them (inline members and member shards) → the workspace's role
mappings each group matches (the operator's own ``mapping_matches``) → the RoleBindings the
operator made for that group and mapping → their roles; then what the API server's
SubjectAccessReview answers for the user's subject (see ``cluster.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scim_core import constants as c
from scim_core.members import assemble_members
from scim_operator.rbac import binding_name, mapping_matches, subject_for

from . import table

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Check:
    """One SubjectAccessReview question: ``verb`` on ``resource`` of API ``group``."""

    verb: str
    group: str
    resource: str

    @property
    def label(self) -> str:
        return f"{self.verb} {self.resource}" + (f".{self.group}" if self.group else "")


#: The common questions ``access`` asks in each namespace the user is bound in.
COMMON_CHECKS = (
    Check("get", "", "pods"),
    Check("list", "", "pods"),
    Check("create", "", "pods"),
    Check("delete", "", "pods"),
    Check("create", "apps", "deployments"),
    Check("get", "", "secrets"),
)
#: Every authenticated user has this group; the review asks with it, as a login would.
AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class BindingView:
    namespace: str
    name: str
    role_kind: str
    role_name: str
    holds_subject: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "role": f"{self.role_kind}/{self.role_name}",
            "holdsSubject": self.holds_subject,
        }


@dataclass(frozen=True)
class MappingView:
    name: str
    role: str  # "ClusterRole/edit"
    bindings: tuple[BindingView, ...]


@dataclass(frozen=True)
class GroupView:
    id: str
    display_name: str
    mappings: tuple[MappingView, ...]
    other_bindings: tuple[BindingView, ...]  # the group's bindings no current mapping explains


@dataclass(frozen=True)
class UserAccess:
    namespace: str
    id: str
    user_name: str
    active: bool
    subject: str | None
    explicit_subject: bool
    groups: tuple[GroupView, ...]

    def bound_namespaces(self) -> list[str]:
        """Where to ask the API server: the workspace namespace and every namespace with a
        binding that lists the subject."""
        found = {self.namespace}
        for group in self.groups:
            for binding in self._bindings(group):
                if binding.holds_subject:
                    found.add(binding.namespace)
        return sorted(found)

    @staticmethod
    def _bindings(group: GroupView) -> Iterable[BindingView]:
        for mapping in group.mappings:
            yield from mapping.bindings
        yield from group.other_bindings

    def as_json(self, reviews: Mapping[tuple[str, str], bool]) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "id": self.id,
            "userName": self.user_name,
            "active": self.active,
            "subject": self.subject,
            "explicitSubject": self.explicit_subject,
            "groups": [
                {
                    "id": g.id,
                    "displayName": g.display_name,
                    "mappings": [
                        {"name": m.name, "role": m.role, "bindings": [b.as_json() for b in m.bindings]}
                        for m in g.mappings
                    ],
                    "otherBindings": [b.as_json() for b in g.other_bindings],
                }
                for g in self.groups
            ],
            "access": [
                {"namespace": ns, "check": label, "allowed": allowed}
                for (ns, label), allowed in sorted(reviews.items())
            ],
        }


def find_users(users: Iterable[Obj], wanted: str) -> list[Obj]:
    """ScimUsers whose name (SCIM id) is ``wanted`` or whose userName is, case-insensitively."""
    folded = wanted.casefold()
    return [
        u
        for u in users
        if u["metadata"]["name"] == wanted
        or str((u.get("spec") or {}).get("userName", "")).casefold() == folded
    ]


def groups_of(uid: str, groups: Iterable[Obj], shards: Iterable[Obj]) -> list[Obj]:
    """The groups that list ``uid`` among their members (inline or in a shard), by name."""
    by_group: dict[str, list[Obj]] = {}
    for shard in shards:
        by_group.setdefault(str((shard.get("spec") or {}).get("group", "")), []).append(shard)
    found = [
        g
        for g in groups
        if any(m.get("value") == uid for m in assemble_members(g, by_group.get(g["metadata"]["name"], [])))
    ]
    return sorted(found, key=lambda g: str(g["metadata"]["name"]))


def owning_mapping(name: str, group_id: str, mappings: Sequence[str]) -> str | None:
    """Which mapping a binding of the group was made for, from its name (``scim-<group>-<mapping>``,
    plus ``-NNN`` when a large group's subjects are split). An exact name wins."""
    for mapping in mappings:
        if name == binding_name(group_id, mapping, 0, 1):
            return mapping
    for mapping in mappings:
        base = binding_name(group_id, mapping, 0, 1)
        tail = name[len(base) + 1 :]
        if name.startswith(f"{base}-") and len(tail) == 3 and tail.isdigit():
            return mapping
    return None


def _binding_view(binding: Obj, subject: str | None) -> BindingView:
    meta = binding.get("metadata") or {}
    ref = binding.get("roleRef") or {}
    names = {s.get("name") for s in binding.get("subjects") or [] if s.get("kind") == "User"}
    return BindingView(
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
        str(ref.get("kind", "")),
        str(ref.get("name", "")),
        subject is not None and subject in names,
    )


def _role(mapping: Obj) -> str:
    if mapping.get("clusterRole"):
        return f"ClusterRole/{mapping['clusterRole']}"
    return f"Role/{mapping.get('role', '')}"


def trace(
    namespace: str,
    user: Obj,
    workspace_spec: Obj | None,
    groups: Iterable[Obj],
    shards: Iterable[Obj],
    bindings: Iterable[Obj],
) -> UserAccess:
    """The chain from one ScimUser to the RoleBindings that (should) grant them access.

    ``bindings``: the RoleBindings the operator manages for this workspace (any namespace)."""
    uid = str(user["metadata"]["name"])
    spec = user.get("spec") or {}
    subjects_cfg = (workspace_spec or {}).get("subjects") or {}
    subject = subject_for(
        uid, spec, subjects_cfg.get("prefix", ""), subjects_cfg.get("userField", "userName")
    )
    mappings = list((workspace_spec or {}).get("roleMappings") or [])
    by_group: dict[str, list[Obj]] = {}
    for binding in bindings:
        labels = (binding.get("metadata") or {}).get("labels") or {}
        by_group.setdefault(str(labels.get(c.GROUP_LABEL, "")), []).append(binding)
    views: list[GroupView] = []
    for group in groups_of(uid, groups, shards):
        gid = str(group["metadata"]["name"])
        gspec = group.get("spec") or {}
        matched = [m for m in mappings if mapping_matches(m.get("groups") or {}, gspec)]
        names = [str(m["name"]) for m in matched]
        owned: dict[str | None, list[BindingView]] = {}
        for binding in sorted(
            by_group.get(gid, []), key=lambda b: (b["metadata"]["namespace"], b["metadata"]["name"])
        ):
            owner = owning_mapping(str(binding["metadata"]["name"]), gid, names)
            owned.setdefault(owner, []).append(_binding_view(binding, subject))
        views.append(
            GroupView(
                gid,
                str(gspec.get("displayName", "")),
                tuple(
                    MappingView(n, _role(m), tuple(owned.get(n, [])))
                    for n, m in zip(names, matched, strict=True)
                ),
                tuple(owned.get(None, [])),
            )
        )
    return UserAccess(
        namespace,
        uid,
        str(spec.get("userName", "")),
        bool(spec.get("active", True)),
        subject,
        bool(spec.get("subject")),
        tuple(views),
    )


def _binding_line(binding: BindingView) -> str:
    held = "lists the user" if binding.holds_subject else "does NOT list the user"
    where = f"{binding.namespace}/{binding.name}"
    return f"      RoleBinding {where} -> {binding.role_kind}/{binding.role_name} ({held})"


def render(access: UserAccess, reviews: Mapping[tuple[str, str], bool], checks: Sequence[Check]) -> str:
    """The chain, then a table: one row per namespace, one column per check."""
    how = "explicit spec.subject" if access.explicit_subject else "workspace subject mapping"
    lines = [
        f"User {access.user_name} (id {access.id}) in workspace namespace {access.namespace}",
        f"  RBAC subject: {access.subject or '(none: the user lacks the mapped field)'} ({how})",
        f"  active: {'yes' if access.active else 'NO (deactivated: bound nowhere)'}",
    ]
    if not access.groups:
        lines.append("  member of no group")
    for group in access.groups:
        lines.append(f"  group {group.display_name!r} (id {group.id})")
        if not group.mappings:
            lines.append("    matches no role mapping")
        for mapping in group.mappings:
            lines.append(f"    mapping {mapping.name} -> {mapping.role}")
            if not mapping.bindings:
                lines.append("      no RoleBinding (refused by the allow-list, or not reconciled yet)")
            lines += [_binding_line(b) for b in mapping.bindings]
        if group.other_bindings:
            lines.append("    bindings of no current mapping (being removed):")
            lines += [_binding_line(b) for b in group.other_bindings]
    if access.subject is None:
        return "\n".join(lines)
    lines += ["", f"SubjectAccessReview as {access.subject} (group {AUTHENTICATED}):"]
    namespaces = sorted({ns for ns, _ in reviews})
    rows = [
        [ns, *("yes" if reviews.get((ns, check.label)) else "no" for check in checks)] for ns in namespaces
    ]
    lines.append(table.render(["NAMESPACE", *(check.label.upper() for check in checks)], rows))
    return "\n".join(lines)
