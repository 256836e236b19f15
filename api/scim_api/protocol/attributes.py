"""``attributes`` / ``excludedAttributes`` (RFC 7644 §3.4.2.5) on SCIM JSON."""

from __future__ import annotations

from typing import Any

from .filters import normalize_attr

ALWAYS = frozenset({"id", "schemas"})


def parse_attribute_list(text: str | None) -> list[str] | None:
    if text is None or not text.strip():
        return None
    return [normalize_attr(a.strip()) for a in text.split(",") if a.strip()]


def wants(name: str, attributes: list[str] | None, excluded: list[str] | None) -> bool:
    """Whether the response needs the (costly) attribute ``name`` at all, e.g. a group's
    ``members`` or a user's ``groups``: when not, it is never assembled or serialised."""
    if attributes is not None:
        return any(a == name or a.startswith(name + ".") for a in attributes)
    return not (excluded and name in excluded)


def project(
    resource: dict[str, Any], attributes: list[str] | None, excluded: list[str] | None
) -> dict[str, Any]:
    if attributes:
        keep: dict[str, set[str] | None] = {}
        for a in attributes:
            top, _, sub = a.partition(".")
            if sub:
                current = keep.get(top, set())
                if current is not None:
                    current.add(sub)
                    keep[top] = current
            else:
                keep[top] = None
        out: dict[str, Any] = {}
        for key, value in resource.items():
            low = key.lower()
            if low in ALWAYS:
                out[key] = value
            elif low in keep:
                subs = keep[low]
                out[key] = value if subs is None else _only(value, subs)
        return out
    if excluded:
        drop_top = {a for a in excluded if "." not in a and a not in ALWAYS}
        drop_sub: dict[str, set[str]] = {}
        for a in excluded:
            top, _, sub = a.partition(".")
            if sub:
                drop_sub.setdefault(top, set()).add(sub)
        out = {}
        for key, value in resource.items():
            low = key.lower()
            if low in drop_top:
                continue
            out[key] = _without(value, drop_sub[low]) if low in drop_sub else value
        return out
    return resource


def _only(value: Any, subs: set[str]) -> Any:
    if isinstance(value, list):
        return [_only(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k.lower() in subs}
    return value


def _without(value: Any, subs: set[str]) -> Any:
    if isinstance(value, list):
        return [_without(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k.lower() not in subs}
    return value
