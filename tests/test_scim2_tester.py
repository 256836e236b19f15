"""scim2-tester's conformance checks against the live API (real control plane).

The tester needs to create every resource it reads, changes or points a reference at.
This server never creates users over SCIM (``POST /Users`` is a 403 by design), so the
client describes Group alone: the tester then runs only the Group resource checks, plus
all discovery and miscellaneous checks, and makes the targets of ``members`` Groups too.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest
from scim2_models import Group, ScimProvider
from scim2_tester import CheckResult, Status, check_server

from .conftest import ScimClient
from .scim_engine import HttpxSyncSCIMClient

pytestmark = pytest.mark.cluster

#: Every tag family (``crud`` also selects ``crud:read:attributes``). Not ``exclude_tags``:
#: in scim2-tester 0.5.2 any exclusion also drops the ``*`` discovery checks it starts from.
INCLUDE_TAGS = {"discovery", "misc", "crud", "patch"}

#: (check, attribute) results left out, with the reason. One check yields one result per
#: attribute, so the other attributes of these checks still count.
EXCLUDED = {
    # A group's members are Users (the Group schema's members.$ref names only "User"), and
    # a real member needs a User created over SCIM, which this server refuses. With User
    # hidden from the tester, it adds Groups as members ($ref .../Groups/x, type "Group")
    # and expects them back as such; the server keeps only value and display and renders
    # every member as a User, so these two comparisons cannot hold.
    ("check_add_attribute", "members"),
    ("check_replace_attribute", "members"),
}

#: Checks the server may skip, and why.
MAY_SKIP = {
    # POST /.search at the root (all resource types at once) is not offered: the server
    # answers 501, which the tester reports as SKIPPED.
    "search_with_attributes",
}


def _attribute(result: CheckResult) -> Any:
    return result.data.get("urn") if isinstance(result.data, dict) else None


def test_scim2_tester(scim: ScimClient) -> None:
    client = HttpxSyncSCIMClient(
        scim.tc,
        base_path=scim.base,
        headers={"Authorization": f"Bearer {scim.token}"},
        provider=ScimProvider(models=[Group]),  # see the module docstring
    )
    results = check_server(client, include_tags=INCLUDE_TAGS)

    counted = [r for r in results if (r.title, _attribute(r)) not in EXCLUDED]
    counted_ids = {id(r) for r in counted}
    for r in results:  # the excluded ones in parentheses
        status = r.status.name if id(r) in counted_ids else f"({r.status.name})"
        reason = (r.reason or "").splitlines()[0] if r.reason else ""
        print(f"{status:12} {r.resource_type or '-':6} {r.title}: {reason}")
    print(
        "summary:",
        dict(collections.Counter(r.status.name for r in counted)),
        "excluded:",
        len(results) - len(counted),
    )

    failed = [r for r in counted if r.status in (Status.ERROR, Status.CRITICAL)]
    assert not failed, "\n".join(f"{r.resource_type} {r.title}: {r.reason}" for r in failed)
    skipped = {r.title for r in counted if r.status is Status.SKIPPED}
    assert skipped <= MAY_SKIP, skipped
    # the Group checks did run: creation, reads, replacement, deletion and the three PATCH ops
    succeeded = {r.title for r in counted if r.resource_type == "Group" and r.status is Status.SUCCESS}
    assert succeeded >= {
        "object_creation",
        "object_query",
        "object_query_without_id",
        "object_query_with_attributes",
        "object_list_with_attributes",
        "object_replacement",
        "object_deletion",
        "check_add_attribute",
        "check_remove_attribute",
        "check_replace_attribute",
    }, succeeded
    # the exclusions still name results the tester produces (drop them when it stops)
    assert {(r.title, _attribute(r)) for r in results} >= EXCLUDED


def test_root_search_is_not_implemented(scim: ScimClient) -> None:
    r = scim.post("/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})
    assert r.status_code == 501
    assert r.headers["content-type"].startswith("application/scim+json")
    assert r.json()["status"] == "501"
    assert scim.tc.post(scim.base + "/.search", json={}).status_code == 401
