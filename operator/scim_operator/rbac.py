"""Pure RBAC rendering: from a group, its workspace and the workspace's users to the exact
RoleBindings that should exist. No I/O: every rule here is unit-tested.

Role-mapping patterns are RE2 expressions (linear time in the display name, whatever the
pattern): display names are chosen by the identity provider, so a backtracking engine would
let one ``(a+)+`` stall every reconcile of every workspace.

Large groups are split across several RoleBindings so no object nears etcd's size limit.
A subject's binding is picked by a stable hash into ``2**k`` buckets, ``k`` growing only
when a bucket would pass ``MAX_SUBJECTS_PER_BINDING``, so one member changing rewrites
one binding, not all of them.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

from scim_core import constants as c
from scim_core.resources import MAX_PATTERN_LENGTH

RBAC_API = "rbac.authorization.k8s.io"
#: Average subjects per RoleBinding before it is split (about 120 bytes each: ~500 KiB).
MAX_SUBJECTS_PER_BINDING = 4000
UNRESOLVED_SAMPLE = 10
#: RE2 memory budget per compiled pattern: bigger programs are refused at compile time, and
#: a matcher that outgrows it falls back to RE2's (still linear) NFA.
PATTERN_MAX_MEM = 1 << 20


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEM
    options.log_errors = False  # a refusal is reported on the workspace, not on stderr
    return options


@dataclass(frozen=True)
class CompiledPattern:
    """A role-mapping pattern: the RE2 matcher, or why the pattern is refused."""

    regex: Any  # re2._Regexp (untyped), None when refused
    problem: str | None


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> CompiledPattern:
    """Compile once per distinct pattern (reconciles of every group reuse it)."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return CompiledPattern(
            None, f"pattern is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH} are allowed"
        )
    try:
        return CompiledPattern(re2.compile(pattern, _re2_options()), None)
    except re2.error as exc:
        why = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        return CompiledPattern(None, f"pattern is not a valid RE2 expression: {why}")


def pattern_problems(workspace_spec: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(mapping name, why) for each role mapping whose pattern is refused (it matches nothing)."""
    problems: list[tuple[str, str]] = []
    for mapping in (workspace_spec or {}).get("roleMappings") or []:
        pattern = (mapping.get("groups") or {}).get("pattern")
        if pattern is not None and (problem := compile_pattern(str(pattern)).problem) is not None:
            problems.append((str(mapping.get("name", "")), problem))
    return problems


@dataclass(frozen=True)
class DesiredBinding:
    namespace: str
    name: str
    role_kind: str  # "ClusterRole" | "Role"
    role_name: str
    subjects: tuple[str, ...]  # user names, sorted
    mapping: str

    def manifest(self, group_namespace: str, group_name: str, group_uid: str) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {
                c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE,
                c.GROUP_LABEL: group_name,
                c.WORKSPACE_LABEL: group_namespace,
            },
        }
        if self.namespace == group_namespace:
            metadata["ownerReferences"] = [
                c.owner_reference(c.GROUP_KIND, group_name, group_uid, block_deletion=False)
            ]
        return {
            "apiVersion": f"{RBAC_API}/v1",
            "kind": "RoleBinding",
            "metadata": metadata,
            "roleRef": {"apiGroup": RBAC_API, "kind": self.role_kind, "name": self.role_name},
            "subjects": [{"kind": "User", "apiGroup": RBAC_API, "name": s} for s in self.subjects],
        }


@dataclass(frozen=True)
class Refusal:
    mapping: str
    role_kind: str
    role_name: str


@dataclass
class Resolution:
    """How a group's members turned into subjects."""

    subjects: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # no such ScimUser
    inactive: list[str] = field(default_factory=list)
    unmappable: list[str] = field(default_factory=list)  # user lacks the chosen field


@dataclass
class Plan:
    bindings: list[DesiredBinding]
    refusals: list[Refusal]
    resolution: Resolution


def subject_for(user_name: str, user: Mapping[str, Any], prefix: str, field_name: str) -> str | None:
    """The RBAC user name for a ScimUser, or None when it lacks the chosen field."""
    if user.get("subject"):
        return str(user["subject"])
    if field_name == "id":
        value: Any = user_name
    elif field_name == "email":
        emails = user.get("emails") or []
        primary = [e for e in emails if e.get("primary")] or emails
        value = primary[0].get("value") if primary else None
    else:
        value = user.get(field_name)
    return f"{prefix}{value}" if value else None


def resolve_members(
    members: list[Mapping[str, Any]], users: Mapping[str, Mapping[str, Any]], prefix: str, field_name: str
) -> Resolution:
    res = Resolution()
    seen: set[str] = set()
    for member in members:
        value = str(member.get("value", ""))
        user = users.get(value)
        if user is None:
            res.unresolved.append(value)
        elif not user.get("active", True):
            res.inactive.append(value)
        elif (subject := subject_for(value, user, prefix, field_name)) is None:
            res.unmappable.append(value)
        elif subject not in seen:
            seen.add(subject)
            res.subjects.append(subject)
    res.subjects.sort()
    return res


def mapping_matches(selector: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """Does a role mapping's group selector pick this group? Patterns are full matches."""
    if selector.get("displayName") is not None:
        return str(selector["displayName"]).casefold() == str(spec.get("displayName", "")).casefold()
    if selector.get("externalId") is not None:
        return bool(selector["externalId"] == spec.get("externalId"))
    if selector.get("pattern") is not None:
        regex = compile_pattern(str(selector["pattern"])).regex
        return regex is not None and regex.fullmatch(str(spec.get("displayName", ""))) is not None
    return False


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (an empty selector matches everything)."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _buckets(count: int) -> int:
    buckets = 1
    while count > buckets * MAX_SUBJECTS_PER_BINDING:
        buckets *= 2
    return buckets


def _bucket_of(subject: str, buckets: int) -> int:
    return int.from_bytes(hashlib.sha256(subject.encode()).digest()[:4], "big") % buckets


def split_subjects(subjects: list[str], buckets: int) -> list[list[str]]:
    """``subjects`` by bucket (``_bucket_of``); one bucket holds them all without hashing."""
    if buckets == 1:
        return [list(subjects)]
    split: list[list[str]] = [[] for _ in range(buckets)]
    for subject in subjects:
        split[_bucket_of(subject, buckets)].append(subject)
    return split


def binding_name(group_name: str, mapping: str, bucket: int, buckets: int) -> str:
    base = f"scim-{group_name}-{mapping}"
    return base if buckets == 1 else f"{base}-{bucket:03d}"


def plan_group(
    group_namespace: str,
    group_name: str,
    group_spec: Mapping[str, Any],
    workspace_spec: Mapping[str, Any] | None,
    users: Mapping[str, Mapping[str, Any]],
    namespace_labels: Mapping[str, Mapping[str, str]],
    allowed_cluster_roles: frozenset[str],
    allowed_roles: frozenset[str],
) -> Plan:
    """The RoleBindings a group should have, and why some mappings were refused."""
    subjects_cfg = (workspace_spec or {}).get("subjects") or {}
    resolution = resolve_members(
        list(group_spec.get("members") or []),
        users,
        subjects_cfg.get("prefix", ""),
        subjects_cfg.get("userField", "userName"),
    )
    bindings: list[DesiredBinding] = []
    refusals: list[Refusal] = []
    if workspace_spec is None:
        return Plan(bindings, refusals, resolution)
    buckets = _buckets(len(resolution.subjects))
    split: list[list[str]] | None = None  # planned once a mapping picks the group (most pick none)
    for mapping in workspace_spec.get("roleMappings") or []:
        if not mapping_matches(mapping.get("groups") or {}, group_spec):
            continue
        kind, role = (
            ("ClusterRole", mapping["clusterRole"])
            if mapping.get("clusterRole")
            else ("Role", mapping["role"])
        )
        allowed = allowed_cluster_roles if kind == "ClusterRole" else allowed_roles
        if role not in allowed:
            refusals.append(Refusal(mapping["name"], kind, role))
            continue
        targets: set[str] = set()
        if mapping.get("includeWorkspaceNamespace", True):
            targets.add(group_namespace)
        if mapping.get("namespaceSelector") is not None:
            targets |= {
                ns
                for ns, labels in namespace_labels.items()
                if label_selector_matches(mapping["namespaceSelector"], labels)
            }
        if split is None:
            split = split_subjects(resolution.subjects, buckets)
        for ns in sorted(targets):
            for bucket, subjects in enumerate(split):
                if subjects:
                    bindings.append(
                        DesiredBinding(
                            ns,
                            binding_name(group_name, mapping["name"], bucket, buckets),
                            kind,
                            role,
                            tuple(subjects),
                            mapping["name"],
                        )
                    )
    return Plan(bindings, refusals, resolution)


def needs_finalizer(group_namespace: str, bindings: Iterable[tuple[str, str]]) -> bool:
    """Does a group need the cleanup finalizer? Only while one of its bindings (namespace,
    name) lives in another namespace: an ownerReference cannot cross namespaces, so the
    garbage collector removes only the bindings in the group's own namespace. Every other
    group carries no finalizer, so deleting it (or its namespace) never waits for the operator."""
    return any(namespace != group_namespace for namespace, _ in bindings)


def binding_differs(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Does a live RoleBinding differ from the manifest in anything we own?"""
    if existing.get("roleRef") != desired["roleRef"]:
        return True
    live = [(s.get("kind"), s.get("name"), s.get("apiGroup")) for s in existing.get("subjects") or []]
    want = [(s["kind"], s["name"], s["apiGroup"]) for s in desired["subjects"]]
    if live != want:
        return True
    labels = (existing.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in desired["metadata"]["labels"].items()):
        return True
    owners = [
        (o.get("uid"), o.get("kind")) for o in (existing.get("metadata") or {}).get("ownerReferences") or []
    ]
    want_owners = [(o["uid"], o["kind"]) for o in desired["metadata"].get("ownerReferences", [])]
    return owners != want_owners


def revocation_patch(live: Mapping[str, Any], keep: frozenset[str]) -> list[dict[str, Any]]:
    """A JSON patch removing from a live RoleBinding every subject that is not a ``User`` in
    ``keep``, or ``[]`` when none is to go. Each removal is guarded by a ``test`` of the exact
    subject at that index (highest index first, so earlier indices stay valid): if the binding
    changed since it was read, the API server refuses the whole patch and nothing is half
    applied (the group's reconcile then rewrites it). Only removals: this never grants."""
    ops: list[dict[str, Any]] = []
    subjects = list(live.get("subjects") or [])
    for index in range(len(subjects) - 1, -1, -1):
        subject = subjects[index]
        if _kept(subject, keep):
            continue
        ops.append({"op": "test", "path": f"/subjects/{index}", "value": subject})
        ops.append({"op": "remove", "path": f"/subjects/{index}"})
    return ops


def _kept(subject: Mapping[str, Any], keep: frozenset[str]) -> bool:
    return subject.get("kind") == "User" and subject.get("name") in keep


def _still_granted(
    plan: Plan, live: Mapping[tuple[str, str], Mapping[str, Any]]
) -> Iterator[tuple[str, str, Mapping[str, Any], frozenset[str]]]:
    """(namespace, name, binding, users its plan still grants that binding's role) for each
    live binding of a group. A binding the plan no longer wants, or wants with another role,
    keeps nobody (the reconcile deletes or recreates it)."""
    wanted = {(b.namespace, b.name): b for b in plan.bindings}
    for (namespace, name), binding in sorted(live.items()):
        desired = wanted.get((namespace, name))
        same_role = desired is not None and (binding.get("roleRef") or {}) == {
            "apiGroup": RBAC_API,
            "kind": desired.role_kind,
            "name": desired.role_name,
        }
        keep = frozenset(desired.subjects) if desired is not None and same_role else frozenset()
        yield namespace, name, binding, keep


def revocations(
    plan: Plan, live: Mapping[tuple[str, str], Mapping[str, Any]]
) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(namespace, name, JSON patch) for each live binding of a group that names someone its
    plan no longer grants that role: the removals a reconcile would make, without its
    additions."""
    return [
        (namespace, name, ops)
        for namespace, name, binding, keep in _still_granted(plan, live)
        if (ops := revocation_patch(binding, keep))
    ]


def revokes_anyone(plan: Plan, live: Mapping[tuple[str, str], Mapping[str, Any]]) -> bool:
    """Whether ``revocations`` finds anything, without building its patches: asked by every
    reconcile that has something to write (``GroupSync._grants_wait``)."""
    return any(
        not all(_kept(subject, keep) for subject in binding.get("subjects") or [])
        for _, _, binding, keep in _still_granted(plan, live)
    )
