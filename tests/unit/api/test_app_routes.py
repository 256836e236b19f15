"""The app's route table (``app.py``): every route a plain route on the app itself, in the
order that keeps the Entra alias paths from being taken for a group id. Plain routes are the
read-throughput fix of docs/benchmarks.md ("reads"): an included router made FastAPI match
each request twice against every route before ours."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Match

from scim_api.app import create_app
from scim_api.config import ApiSettings
from scim_api.routers import discovery, groups, health, users
from scim_core import constants as c

APP = create_app(ApiSettings())
BASE = c.SCIM_BASE_PATH


def _endpoint(method: str, path: str) -> Any:
    """The endpoint the app dispatches ``method path`` to: the first full match, in order."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "path_params": {}}
    for route in APP.router.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "endpoint", None)
    return None


def test_every_route_is_a_plain_route_of_the_app() -> None:
    routes = [r for r in APP.router.routes if getattr(r, "path", "") != APP.openapi_url]
    assert routes and all(type(r) is APIRoute for r in routes), {type(r).__name__ for r in routes}


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("GET", "/healthz", health.healthz),
        ("GET", f"{BASE}/Groups", groups.list_groups),
        ("POST", f"{BASE}/Groups", groups.create_group),
        ("GET", f"{BASE}/Groups/grp-1", groups.get_group),
        ("PATCH", f"{BASE}/Groups/grp-1", groups.patch_group),
        ("PATCH", f"{BASE}/Groups", groups.groups_collection_write),
        ("GET", f"{BASE}/Users", users.list_users),
        ("GET", f"{BASE}/Users/usr-1", users.get_user),
        ("GET", f"{BASE}/ServiceProviderConfig", discovery.service_provider_config),
        ("PUT", f"{BASE}/Schemas", discovery.read_only),
        # the alias of an older Entra guide's Tenant URL (".../scim/v2/Groups"): never a group id
        ("GET", f"{BASE}/Groups/Users", users.list_users),
        ("GET", f"{BASE}/Groups/Groups", groups.list_groups),
        ("POST", f"{BASE}/Groups/Groups", groups.create_group),
        ("GET", f"{BASE}/Groups/Groups/grp-1", groups.get_group),
        ("DELETE", f"{BASE}/Groups/Users/usr-1", users.delete_user),
        ("GET", f"{BASE}/Groups/ServiceProviderConfig", discovery.service_provider_config),
    ],
)
def test_each_path_reaches_its_endpoint(method: str, path: str, endpoint: Any) -> None:
    assert _endpoint(method, path) is endpoint


def test_the_alias_routes_stay_out_of_the_schema() -> None:
    documented = {r.path for r in APP.router.routes if isinstance(r, APIRoute) and r.include_in_schema}
    assert f"{BASE}/Groups/{{gid}}" in documented
    assert not any(
        p.startswith(f"{BASE}/Groups/Users") or p.startswith(f"{BASE}/Groups/Groups") for p in documented
    )


def _position(method: str, path: str) -> int:
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "path_params": {}}
    return next(n for n, r in enumerate(APP.router.routes) if r.matches(scope)[0] == Match.FULL)


def test_the_list_reads_are_matched_before_the_alias_routes() -> None:
    """Routes are tried in order: the IdPs' most frequent requests never walk the alias."""
    first_alias = min(
        n
        for n, r in enumerate(APP.router.routes)
        if getattr(r, "path", "").startswith(f"{BASE}/Groups/Users")
    )
    for path in ("/Groups", "/Users"):
        assert _position("GET", BASE + path) < first_alias
    assert _position("GET", f"{BASE}/Groups/grp-1") > first_alias
