"""Typed shapes of the four custom resources (spec and status).

These pydantic models are the source of truth for the CRD schemas (see ``crds.py``):
the YAML under ``deploy/crds`` is generated from them and a test keeps the two equal.
Field names are camelCase because they are the Kubernetes field names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .tokens import MAX_DURATION_DAYS
from .write_notes import LIMIT as NOTES_LIMIT
from .write_notes import NOTED_KINDS

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DURATION = r"^[0-9]+(s|m|h|d)$"
#: A lowercase DNS domain name (two labels at least), as in a userName's part after the '@'.
DOMAIN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Longest role-mapping ``pattern`` (RE2 syntax); the operator refuses longer ones too.
MAX_PATTERN_LENGTH = 256


def _duration(description: str) -> Any:
    """A ``DURATION`` string field (``90d``, ``24h``) with its description."""
    return Field(pattern=DURATION, max_length=16, description=description)


def _rules(*rules: tuple[str, str]) -> dict[str, Any]:
    """CEL validation rules attached to a schema node."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


def _cel_seconds(duration: str) -> str:
    """CEL for the seconds in a ``DURATION`` string (``90d``): Go's ``duration()`` has no days."""
    return (
        f"int({duration}.substring(0, {duration}.size() - 1)) * ({duration}.endsWith('d') ? 86400 : "
        f"{duration}.endsWith('h') ? 3600 : {duration}.endsWith('m') ? 60 : 1)"
    )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- shared status


class Condition(_Model):
    """A KEP-1623 condition, as in ``metav1.Condition``."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: Literal["True", "False", "Unknown"]
    observedGeneration: Annotated[int, Field(ge=0)] | None = None
    lastTransitionTime: datetime
    reason: Annotated[
        str,
        Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"),
    ]
    message: Annotated[str, Field(max_length=32768)] = ""


Conditions = Annotated[
    list[Condition],
    Field(
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        max_length=16,
    ),
]


# --------------------------------------------------------------------------- ScimWorkspace


class TokenSettings(_Model):
    """Where the workspace token lives and how long it lasts."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_rules(
            # has(): the schema checks the rules against the bare default ({}) too
            (
                "!has(self.gracePeriod) || !has(self.lifetime) || "
                f"{_cel_seconds('self.gracePeriod')} < {_cel_seconds('self.lifetime')}",
                "gracePeriod must be shorter than lifetime",
            ),
            (
                f"!has(self.lifetime) || {_cel_seconds('self.lifetime')} <= {MAX_DURATION_DAYS * 86400}",
                f"lifetime must be at most {MAX_DURATION_DAYS}d",
            ),
        ),
    )

    secretName: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            pattern=DNS_LABEL,
            description="Secret holding the bearer token; created when missing.",
        ),
    ] = "scim-token"
    lifetime: (
        Annotated[
            str,
            _duration(
                "How long a token is valid, e.g. 90d, 2160h (at most "
                f"{MAX_DURATION_DAYS}d); the operator rotates it one gracePeriod before. "
                "Unset (the default): the token never expires; rotate it on request."
            ),
        ]
        | None
    ) = None
    gracePeriod: Annotated[
        str,
        _duration(
            "How long the previous token stays valid after a rotation, at most (it is dropped "
            "as soon as the IdP is seen using the new one); shorter than lifetime."
        ),
    ] = "24h"
    expiryWarning: Annotated[
        str,
        _duration(
            "With a lifetime: how long before a token the IdP may still use expires the "
            "TokenExpiring condition turns True (and a Warning Event is posted)."
        ),
    ] = "14d"


class SubjectMapping(_Model):
    """How a SCIM member becomes an RBAC subject: prefix + a field of the ScimUser."""

    prefix: Annotated[
        str,
        Field(
            max_length=64,
            description="Prefix the cluster's authenticator puts on user names, e.g. 'oidc:'.",
        ),
    ] = ""
    userField: Literal["userName", "externalId", "email", "id"] = "userName"


class GroupSelector(_Model):
    """Which groups a role mapping applies to: exactly one of the three fields."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_rules(
            (
                "[has(self.displayName), has(self.externalId), has(self.pattern)].filter(x, x).size() == 1",
                "set exactly one of displayName, externalId, pattern",
            ),
            # CEL's matches() is RE2 (Go's regexp): an invalid pattern fails here, at admission
            (
                "!has(self.pattern) || [''.matches(self.pattern)].size() == 1",
                "pattern must be a valid RE2 regular expression",
            ),
        ),
    )

    displayName: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    externalId: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    pattern: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_PATTERN_LENGTH,
                description=(
                    "RE2 regular expression (https://github.com/google/re2/wiki/Syntax) that must "
                    "match the whole displayName; case-sensitive unless it starts with (?i)."
                ),
            ),
        ]
        | None
    ) = None


class LabelSelectorRequirement(_Model):
    key: Annotated[str, Field(min_length=1, max_length=317)]
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[Annotated[str, Field(max_length=63)]] | None = None


class LabelSelector(_Model):
    matchLabels: dict[str, str] | None = None
    matchExpressions: list[LabelSelectorRequirement] | None = None


class RoleMapping(_Model):
    """Groups matching ``groups`` get ``clusterRole`` or ``role`` bound."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_rules(
            ("has(self.clusterRole) != has(self.role)", "set exactly one of clusterRole, role"),
        ),
    )

    name: Annotated[str, Field(min_length=1, max_length=40, pattern=DNS_LABEL)]
    groups: GroupSelector
    clusterRole: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    role: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    namespaceSelector: Annotated[
        LabelSelector | None, Field(description="Also bind in namespaces with these labels.")
    ] = None
    includeWorkspaceNamespace: bool = True


class UserProvisioning(_Model):
    """Opt-in POST /Users: off (no domains) unless the workspace lists some."""

    allowedDomains: Annotated[
        list[Annotated[str, Field(min_length=3, max_length=253, pattern=DOMAIN)]],
        Field(
            max_length=64,
            json_schema_extra={"x-kubernetes-list-type": "set"},
            description=(
                "The identity provider may create ScimUsers whose userName ends in '@' plus one "
                "of these domains (exact match, case-insensitive). Empty: users are never created "
                "over SCIM."
            ),
        ),
    ] = Field(default_factory=list)


class UserSettings(_Model):
    """What the identity provider may do with users beyond matching and deactivating them."""

    provisioning: UserProvisioning = Field(
        default_factory=UserProvisioning, json_schema_extra={"default": {}}
    )


class ScimWorkspaceSpec(_Model):
    displayName: Annotated[str, Field(min_length=1, max_length=256)]
    token: TokenSettings = Field(default_factory=TokenSettings, json_schema_extra={"default": {}})
    subjects: SubjectMapping = Field(default_factory=SubjectMapping, json_schema_extra={"default": {}})
    roleMappings: Annotated[
        list[RoleMapping],
        Field(
            max_length=64,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = Field(default_factory=list)
    idpSilenceAfter: (
        Annotated[
            str,
            _duration(
                "The Synced condition turns False when the IdP has sent no request for this "
                "long (default: the operator's SCIM_IDP_SILENCE_SECONDS, 2h)."
            ),
        ]
        | None
    ) = None
    users: UserSettings = Field(default_factory=UserSettings, json_schema_extra={"default": {}})


class TokenHash(_Model):
    """What the API authenticates against: never the token itself."""

    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    fingerprint: Annotated[str, Field(max_length=64)]
    notAfter: datetime


class IdpError(_Model):
    """The last request the API refused: status, scimType, detail (never a token or members)."""

    time: datetime
    status: Annotated[int, Field(ge=100, le=599)]
    scimType: Annotated[str, Field(max_length=64)] | None = None
    detail: Annotated[str, Field(max_length=1024)] = ""


class IdpTrace(_Model):
    """What the IdP last did, written by the API; requests and errors count since its last write."""

    lastRequestTime: datetime | None = None
    lastWriteTime: datetime | None = None
    requests: Annotated[int, Field(ge=0)] | None = None
    errors: Annotated[int, Field(ge=0)] | None = None
    lastError: IdpError | None = None


class TokenUsage(_Model):
    """When the API last saw a token used (fingerprint as in tokenHashes)."""

    fingerprint: Annotated[str, Field(max_length=64)]
    lastUsedTime: datetime


class WriteNote(_Model):
    """An object the API wrote while its watch of that kind was down (``write_notes``)."""

    kind: Annotated[str, Field(json_schema_extra={"enum": list(NOTED_KINDS)})]
    name: Annotated[str, Field(min_length=1, max_length=253)]
    resourceVersion: Annotated[str, Field(max_length=64)]
    time: datetime
    #: the write was the object's deletion (``write_notes.Note.deleted``)
    deleted: bool | None = None


class ScimWorkspaceStatus(_Model):
    observedGeneration: int | None = None
    conditions: Conditions | None = None
    groups: int | None = None
    users: int | None = None
    tokenHashes: Annotated[list[TokenHash], Field(max_length=8)] | None = None
    tokenFingerprint: str | None = None
    tokenExpiresAt: datetime | None = None
    idp: IdpTrace | None = None
    tokenUsage: (
        Annotated[
            list[TokenUsage],
            Field(
                max_length=8,
                json_schema_extra={
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["fingerprint"],
                },
            ),
        ]
        | None
    ) = None
    #: API replica -> the objects it wrote while its watch of them was down, newest last
    unwatchedWrites: (
        Annotated[dict[str, Annotated[list[WriteNote], Field(max_length=NOTES_LIMIT)]], Field(max_length=16)]
        | None
    ) = None


# --------------------------------------------------------------------------- ScimGroup


class GroupMember(_Model):
    value: Annotated[
        str,
        Field(min_length=1, max_length=256, description="SCIM id of the member (a ScimUser name)."),
    ]
    display: Annotated[str, Field(max_length=256)] | None = None


#: A member list, stored inline in a ScimGroup or in a ScimMemberShard. Atomic, not a
#: list-map keyed by ``value``: the API server then keeps one managedFields entry for the
#: list instead of one per member and skips the per-key bookkeeping, which made each write
#: of a 5,000-member object 3-4 times dearer (docs/benchmarks.md, "profiles"). Duplicate
#: values are kept out by the API (members are held keyed by value), not by the schema.
MemberList = Annotated[
    list[GroupMember],
    Field(max_length=5000, json_schema_extra={"x-kubernetes-list-type": "atomic"}),
]


class ScimGroupSpec(_Model):
    displayName: Annotated[str, Field(min_length=1, max_length=256)]
    externalId: Annotated[str, Field(max_length=256)] | None = None
    members: MemberList = Field(default_factory=list)


class ScimMemberShardSpec(_Model):
    """Members of a large group beyond what its ScimGroup holds inline. Owned by the group
    (garbage-collected with it); written by the API, read by the operator."""

    group: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            description="Name (SCIM id) of the ScimGroup these members belong to.",
            json_schema_extra=_rules(("self == oldSelf", "group is immutable")),
        ),
    ]
    members: MemberList = Field(default_factory=list)
    packedMembers: (
        Annotated[
            str,
            Field(
                max_length=1_200_000,
                description="The members as one JSON string, flat [value, display-or-null, ...] "
                "(read after members): the API server does not walk it per member, so a write "
                "costs a fifth.",
            ),
        ]
        | None
    ) = None


class ScimMemberShardStatus(_Model):
    observedGeneration: int | None = None


class ScimGroupStatus(_Model):
    observedGeneration: int | None = None
    conditions: Conditions | None = None
    memberCount: int | None = None
    resolvedMembers: int | None = None
    unresolvedMembers: int | None = None
    unresolvedSample: Annotated[list[str], Field(max_length=20)] | None = None
    boundSubjects: int | None = None
    roleBindings: Annotated[list[str], Field(max_length=1000)] | None = None
    lastSyncTime: datetime | None = None


# --------------------------------------------------------------------------- ScimUser


class UserName(_Model):
    formatted: Annotated[str, Field(max_length=512)] | None = None
    familyName: Annotated[str, Field(max_length=256)] | None = None
    givenName: Annotated[str, Field(max_length=256)] | None = None


class UserEmail(_Model):
    value: Annotated[str, Field(min_length=1, max_length=320)]
    type: Annotated[str, Field(max_length=64)] | None = None
    primary: bool | None = None


class ScimUserSpec(_Model):
    userName: Annotated[str, Field(min_length=1, max_length=256)]
    externalId: Annotated[str, Field(max_length=256)] | None = None
    displayName: Annotated[str, Field(max_length=256)] | None = None
    name: UserName | None = None
    emails: Annotated[list[UserEmail], Field(max_length=16)] | None = None
    active: bool = True
    subject: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=256,
                description="Explicit RBAC user name; overrides the workspace mapping.",
            ),
        ]
        | None
    ) = None


class ScimUserStatus(_Model):
    observedGeneration: int | None = None
    conditions: Conditions | None = None
    groups: int | None = None
