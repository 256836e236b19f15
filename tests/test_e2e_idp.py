"""End to end, as an identity provider drives it: the real API and operator processes run
under their own ServiceAccounts (deploy/rbac, what the chart installs) against a private
control plane with the RBAC authorizer on. Two API processes run, as the chart's two
replicas do, and the IdP's requests alternate between them. After every step the API server
itself is asked (SubjectAccessReview) what each person may do: exactly what the IdP state
implies."""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane, free_port
from scim_devenv.crds import install_crds

from .helpers import allowed, create_user, create_workspace, eventually
from .test_least_privilege import install_rbac, sa_kubeconfig

pytestmark = pytest.mark.cluster
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAPPINGS = [
    {"name": "admins", "groups": {"pattern": ".*Admins.*"}, "clusterRole": "edit"},
    {"name": "readers", "groups": {"pattern": ".*"}, "clusterRole": "view"},
]


API_REPLICAS = 2


@dataclass
class Stack:
    cp: ControlPlane
    kube: client.ApiClient
    bases: list[str]  # one base URL per API replica
    procs: list[subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e")
    with ControlPlane(controller_manager=True) as cp:
        install_crds(cp)
        install_rbac(cp)
        bin_dir = Path(sys.executable).parent
        ports = [free_port() for _ in range(API_REPLICAS)]
        procs = [
            subprocess.Popen(
                [str(bin_dir / "scim-operator"), "--liveness", f"http://127.0.0.1:{free_port()}/healthz"],
                env=dict(os.environ, KUBECONFIG=str(sa_kubeconfig(cp, "scim-operator", tmp)), SCIM_METRICS_PORT="0",
                         SCIM_WORKSPACE_RESYNC_SECONDS="2", SCIM_LEASE_NAMESPACE="scim-system"),  # its Lease Role
                stdout=(tmp / "operator.log").open("wb"), stderr=subprocess.STDOUT,
            ),
        ] + [
            subprocess.Popen(
                [str(bin_dir / "scim-api"), "--port", str(port)],
                env=dict(os.environ, KUBECONFIG=str(sa_kubeconfig(cp, "scim-api", tmp)), SCIM_API_METRICS_PORT="0"),
                stdout=(tmp / f"api-{n}.log").open("wb"), stderr=subprocess.STDOUT,
            )
            for n, port in enumerate(ports)
        ]  # fmt: skip
        try:
            for port in ports:  # as a Service would: route only to ready replicas
                eventually(lambda port=port: _ready(f"http://127.0.0.1:{port}/readyz"), timeout=180)
            kube = config.new_client_from_config(config_file=str(cp.kubeconfig))
            yield Stack(cp, kube, [f"http://127.0.0.1:{port}{c.SCIM_BASE_PATH}" for port in ports], procs)
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=20)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return bool(r.status == 200)
    except OSError:  # not listening yet, or 503 while its cache syncs
        return False


class Idp:
    """Sends requests the way an IdP does: bearer token, scim+json; each request goes to
    the next API replica in turn (``replica=`` pins one)."""

    def __init__(self, stack: Stack, namespace: str) -> None:
        self.stack = stack
        self.ns = namespace
        self._next = itertools.cycle(range(len(stack.bases)))
        create_workspace(
            stack.kube,
            namespace,
            subjects={"prefix": "oidc:", "userField": "userName"},
            roleMappings=MAPPINGS,
        )
        secret = eventually(
            lambda: client.CoreV1Api(stack.kube).read_namespaced_secret("scim-token", namespace), timeout=60
        )
        self.token = base64.b64decode(secret.data["token"]).decode()
        for n in range(len(stack.bases)):
            eventually(
                lambda n=n: self.call("GET", "/ServiceProviderConfig", replica=n)[0] == 200, timeout=30
            )

    def call(self, method: str, path: str, body: Any = None, **options: Any) -> tuple[int, Any]:
        """Status and JSON body; ``options`` as for :meth:`call_full`."""
        status, answer, _ = self.call_full(method, path, body, **options)
        return status, answer

    def call_full(
        self,
        method: str,
        path: str,
        body: Any = None,
        replica: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """Status, JSON body and headers (lowercase names)."""
        base = self.stack.bases[next(self._next) if replica is None else replica]
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/scim+json", **(headers or {})})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                raw = r.read()
                return (
                    r.status,
                    json.loads(raw) if raw else None,
                    {k.lower(): v for k, v in r.headers.items()},
                )
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null"), {k.lower(): v for k, v in err.headers.items()}

    def can(self, user: str, verb: str, resource: str, group: str = "") -> bool:
        return allowed(self.stack.kube, f"oidc:{user}", self.ns, verb, resource, group)

    def access(self, user: str) -> str:
        """none / view / edit, as the API server decides."""
        if self.can(user, "update", "deployments", "apps"):
            return "edit"
        return "view" if self.can(user, "get", "pods") else "none"

    def expect(self, **wanted: str) -> None:
        for user, level in wanted.items():
            email = f"{user}@example.com"
            eventually(lambda e=email, lv=level: self.access(e) == lv, timeout=20)


def _new_ns(stack: Stack, name: str) -> str:
    client.CoreV1Api(stack.kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    for uid in ("alice", "bob", "carol"):
        create_user(stack.kube, name, f"usr-{uid}", f"{uid}@example.com")
    return name


def test_entra_flow(stack: Stack) -> None:
    idp = Idp(stack, _new_ns(stack, "entra"))
    # connection test and user matching
    assert idp.call("GET", "/Users?filter=userName%20eq%20%22nobody%40example.com%22")[1]["totalResults"] == 0
    found = eventually(
        lambda: idp.call("GET", "/Users?filter=userName%20eq%20%22alice%40example.com%22")[1]["Resources"]
    )
    alice = found[0]["id"]
    bob = idp.call("GET", "/Users?filter=userName%20eq%20%22bob%40example.com%22")[1]["Resources"][0]["id"]
    status, g = idp.call("POST", "/Groups", {"schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                                              "externalId": "e-1", "displayName": "Readers", "meta": {"resourceType": "Group"}})  # fmt: skip
    assert status == 201
    gid = g["id"]
    idp.expect(alice="none", bob="none")
    add = {
        "schemas": [PATCH],
        "Operations": [
            {
                "op": "Add",
                "path": "members",
                "value": [{"$ref": None, "value": alice}, {"$ref": None, "value": bob}],
            }
        ],
    }
    assert idp.call("PATCH", f"/Groups/{gid}", add)[0] == 204
    idp.expect(alice="view", bob="view")
    rename = {
        "schemas": [PATCH],
        "Operations": [{"op": "Replace", "path": "displayName", "value": "Cluster Admins"}],
    }
    assert idp.call("PATCH", f"/Groups/{gid}", rename)[0] == 204
    idp.expect(alice="edit", bob="edit")
    remove = {
        "schemas": [PATCH],
        "Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": None, "value": bob}]}],
    }
    assert idp.call("PATCH", f"/Groups/{gid}", remove)[0] == 204
    idp.expect(alice="edit", bob="none")
    assert idp.call("PATCH", f"/Groups/{gid}", add)[0] == 204
    flagged = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{bob}"]'}]}
    assert idp.call("PATCH", f"/Groups/{gid}", flagged)[0] == 204
    idp.expect(alice="edit", bob="none")
    deactivate = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    assert idp.call("PATCH", f"/Users/{alice}", deactivate)[0] == 204
    idp.expect(alice="none")
    reactivate = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]}
    assert idp.call("PATCH", f"/Users/{alice}", reactivate)[0] == 204
    idp.expect(alice="edit")
    assert idp.call("DELETE", f"/Groups/{gid}")[0] == 204
    idp.expect(alice="none", bob="none", carol="none")


def test_okta_flow(stack: Stack) -> None:
    idp = Idp(stack, _new_ns(stack, "okta"))
    assert (
        idp.call("GET", "/Groups?filter=displayName%20eq%20%22Engineering%22&startIndex=1&count=100")[1][
            "totalResults"
        ]
        == 0
    )
    status, g = idp.call("POST", "/Groups", {"schemas": [GROUP], "displayName": "Engineering", "members": []})
    assert status == 201
    gid = g["id"]
    idp.expect(alice="none")
    rename = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "value": {"id": gid, "displayName": "Engineering Admins"}}],
    }
    assert idp.call("PATCH", f"/Groups/{gid}", rename)[0] == 204
    members = {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": 'members[value eq "usr-carol"]'},
        {"op": "add", "path": "members", "value": [{"value": "usr-alice", "display": "alice@example.com"}]},
    ]}  # fmt: skip
    assert idp.call("PATCH", f"/Groups/{gid}", members)[0] == 204
    idp.expect(alice="edit", bob="none")
    full = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "replace", "path": "members", "value": [{"value": "usr-bob"}, {"value": "usr-carol"}]}
        ],
    }
    assert idp.call("PATCH", f"/Groups/{gid}", full)[0] == 204
    idp.expect(alice="none", bob="edit", carol="edit")
    assert idp.call("DELETE", f"/Groups/{gid}")[0] == 204
    idp.expect(alice="none", bob="none", carol="none")


def test_onelogin_flow(stack: Stack) -> None:
    idp = Idp(stack, _new_ns(stack, "onelogin"))
    assert (
        idp.call("GET", "/Users?filter=userName%20eq%20%22ol-probe%40example.com%22")[1]["totalResults"] == 0
    )
    status, g = idp.call("POST", "/Groups", {"schemas": [GROUP], "displayName": "Support"})
    assert status == 201
    ops = {
        "schemas": [PATCH],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": "usr-carol"}]}],
    }
    assert idp.call("PATCH", f"/Groups/{g['id']}", ops)[0] == 204
    idp.expect(carol="view", alice="none")
    ops = {
        "schemas": [PATCH],
        "Operations": [{"op": "remove", "path": "members", "value": [{"value": "usr-carol"}]}],
    }
    assert idp.call("PATCH", f"/Groups/{g['id']}", ops)[0] == 204
    idp.expect(carol="none")


A, B = 0, 1


def test_large_group_across_replicas(stack: Stack) -> None:
    """Issue 8: a group past 1,000 members built through replica A, changed through B."""
    idp = Idp(stack, _new_ns(stack, "large"))
    client.CustomObjectsApi(stack.kube).create_namespaced_custom_object(
        c.GROUP, c.VERSION, "large", c.USER_PLURAL,
        {"apiVersion": c.API_VERSION, "kind": c.USER_KIND, "metadata": {"name": "usr-dave"},
         "spec": {"userName": "dave@example.com"}},
    )  # fmt: skip
    status, g = idp.call("POST", "/Groups", {"schemas": [GROUP], "displayName": "Everyone"}, replica=A)
    assert status == 201
    gid = g["id"]
    fillers = [{"value": f"usr-filler-{i:04d}"} for i in range(1000)]
    add = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": fillers}]}
    assert idp.call("PATCH", f"/Groups/{gid}", add, replica=A)[0] == 204
    spill = [{"value": "usr-dave"}, {"value": "usr-alice"}] + [
        {"value": f"usr-extra-{i:03d}"} for i in range(99)
    ]
    add = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": spill}]}
    assert idp.call("PATCH", f"/Groups/{gid}", add, replica=A)[0] == 204  # lands in a member shard
    idp.expect(dave="view", alice="view")

    # B lists the same 1,101 members and the same ETag as A
    def same_on_both() -> bool:
        on = [idp.call_full("GET", f"/Groups/{gid}", replica=r) for r in (A, B)]
        views = [({m["value"] for m in body["members"]}, headers["etag"]) for _, body, headers in on]
        return len(views[0][0]) == 1101 and views[0] == views[1]

    eventually(same_on_both, timeout=20)

    # removing a member who lives in the shard, through B, takes access away
    remove = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": 'members[value eq "usr-dave"]'}]}
    assert idp.call("PATCH", f"/Groups/{gid}", remove, replica=B)[0] == 204
    idp.expect(dave="none", alice="view")

    # PUT members [] through B empties the group, shard included
    status, body = idp.call(
        "PUT", f"/Groups/{gid}", {"schemas": [GROUP], "displayName": "Everyone", "members": []}, replica=B
    )
    assert status == 200 and body.get("members", []) == []
    idp.expect(alice="none")
    assert idp.call("GET", f"/Groups/{gid}", replica=A)[1].get("members", []) == []

    # DELETE through B with A's current ETag
    assert idp.call("PATCH", f"/Groups/{gid}", add, replica=A)[0] == 204
    idp.expect(alice="view")
    status, _, headers = idp.call_full("GET", f"/Groups/{gid}", replica=A)
    assert status == 200
    assert idp.call("DELETE", f"/Groups/{gid}", replica=B, headers={"If-Match": headers["etag"]})[0] == 204
    idp.expect(alice="none", dave="none")
