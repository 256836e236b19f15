"""``kubectl scim status``: each workspace at a glance, from its status alone.

The status fields come from three writers: the operator (conditions, counts, token hashes
and expiry) and the SCIM API (``status.idp``, ``status.tokenUsage``, when it writes them).
Any of them may be absent: an absent field is shown as such, never guessed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scim_core.timestamps import format_utc, parse_time

from . import table
from .timefmt import relative

HEADERS = (
    "NAMESPACE",
    "WORKSPACE",
    "TOKEN EXPIRES",
    "IDP LAST SEEN",
    "IDP ERRORS",
    "GROUPS",
    "USERS",
    "CONDITIONS",
)


@dataclass(frozen=True)
class ConditionView:
    type: str
    status: str
    reason: str

    def short(self) -> str:
        """``Ready`` when True, else ``Synced=False(IdpSilent)``: the trouble stands out."""
        if self.status == "True":
            return self.type
        return f"{self.type}={self.status}({self.reason})" if self.reason else f"{self.type}={self.status}"


@dataclass(frozen=True)
class WorkspaceView:
    namespace: str
    name: str
    token_fingerprint: str | None
    token_expires: datetime | None
    has_token: bool
    #: when the API last saw the current token used (``status.tokenUsage``), if it reports it
    token_last_used: datetime | None
    idp_last_seen: datetime | None
    idp_errors: int | None
    idp_last_error: Mapping[str, Any] | None
    groups: int | None
    users: int | None
    conditions: tuple[ConditionView, ...]

    def as_json(self) -> dict[str, Any]:
        def stamp(when: datetime | None) -> str | None:
            return format_utc(when) if when is not None else None

        return {
            "namespace": self.namespace,
            "name": self.name,
            "token": {
                "fingerprint": self.token_fingerprint,
                "expiresAt": stamp(self.token_expires),
                "published": self.has_token,
                "lastUsedTime": stamp(self.token_last_used),
            },
            "idp": {
                "lastRequestTime": stamp(self.idp_last_seen),
                "errors": self.idp_errors,
                "lastError": dict(self.idp_last_error) if self.idp_last_error else None,
            },
            "groups": self.groups,
            "users": self.users,
            "conditions": [{"type": c.type, "status": c.status, "reason": c.reason} for c in self.conditions],
        }


def _time(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def summarize(workspace: Mapping[str, Any]) -> WorkspaceView:
    """What ``status`` shows of one ScimWorkspace."""
    meta = workspace.get("metadata") or {}
    status = workspace.get("status") or {}
    idp: Mapping[str, Any] = status["idp"] if isinstance(status.get("idp"), dict) else {}
    last_error = idp.get("lastError")
    fingerprint = status.get("tokenFingerprint")
    usage = [
        u
        for u in status.get("tokenUsage") or []
        if isinstance(u, dict) and u.get("fingerprint") == fingerprint
    ]
    return WorkspaceView(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        token_fingerprint=fingerprint,
        token_expires=_time(status.get("tokenExpiresAt")),
        has_token=bool(status.get("tokenHashes")),
        token_last_used=_time(usage[0].get("lastUsedTime")) if usage else None,
        idp_last_seen=_time(idp.get("lastRequestTime")),
        idp_errors=_int(idp.get("errors")),
        idp_last_error=last_error if isinstance(last_error, dict) and last_error else None,
        groups=_int(status.get("groups")),
        users=_int(status.get("users")),
        conditions=tuple(
            ConditionView(str(c.get("type", "")), str(c.get("status", "Unknown")), str(c.get("reason", "")))
            for c in status.get("conditions") or []
        ),
    )


def token_cell(view: WorkspaceView, now: datetime) -> str:
    """When the token expires; ``never`` for a published token with no expiry (no lifetime
    set), ``none`` when no token is published."""
    if not view.has_token:
        return "none"
    return relative(view.token_expires, now, missing="never")


def errors_cell(view: WorkspaceView) -> str:
    """Errors since the API's last report, and the last one's status and scimType."""
    if view.idp_errors is None and view.idp_last_error is None:
        return "-"
    count = str(view.idp_errors) if view.idp_errors is not None else "?"
    if view.idp_last_error is None:
        return count
    last = "/".join(
        str(view.idp_last_error[k]) for k in ("status", "scimType") if view.idp_last_error.get(k) is not None
    )
    return f"{count} (last {last})" if last else count


def row(view: WorkspaceView, now: datetime) -> list[str]:
    def count(value: int | None) -> str:
        return "-" if value is None else str(value)

    return [
        view.namespace,
        view.name,
        token_cell(view, now),
        relative(view.idp_last_seen, now, missing="never"),
        errors_cell(view),
        count(view.groups),
        count(view.users),
        ",".join(c.short() for c in view.conditions) or "-",
    ]


def render(views: Sequence[WorkspaceView], now: datetime) -> str:
    if not views:
        return "No ScimWorkspaces found."
    ordered = sorted(views, key=lambda v: (v.namespace, v.name))
    return table.render(HEADERS, [row(v, now) for v in ordered])
