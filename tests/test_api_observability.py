"""What the API tells the people who run it, against the real control plane: metrics on
their own port, one audit line per SCIM write, and the IdP's trace and token use in the
workspace status (throttled, a rotation's new token written at once)."""

from __future__ import annotations

import concurrent.futures
import copy
import itertools
import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes import watch as kube_watch
from prometheus_client import generate_latest
from starlette.testclient import TestClient

from scim_api.trace import known_tokens
from scim_core import constants as c
from scim_core.logs import JsonFormatter
from scim_core.tokens import fingerprint, token_sha256
from scim_devenv import processes
from scim_devenv.controlplane import ControlPlane, free_port
from scim_operator.token_policy import ROTATE_REQUEST

from .conftest import ScimClient
from .helpers import custom, eventually, get_workspace, read_token, workspace_with_token
from .replicas import REPLICAS, STATUS_INTERVAL, ApiProcess, api_processes, clients_of  # noqa: F401 - fixture

pytestmark = pytest.mark.cluster
BASE = c.SCIM_BASE_PATH
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP_ROUTE = "/Groups/{gid}"  # route templates are relative to the SCIM base path


@pytest.fixture
def make_app(control_plane: ControlPlane, operator_running: None) -> Iterator[Callable[[float], TestClient]]:
    """``make_app(status_interval)``: an API of its own (its own metrics and trace throttle),
    stopped at the end of the test."""
    from scim_api.app import create_app
    from scim_api.config import ApiSettings

    os.environ["KUBECONFIG"] = str(control_plane.kubeconfig)
    clients: list[TestClient] = []

    def make(interval: float) -> TestClient:
        settings = ApiSettings(rate_per_second=1e6, rate_burst=10**6, status_interval=interval)
        tc = TestClient(create_app(settings), base_url="http://testserver")
        tc.__enter__()
        clients.append(tc)
        eventually(lambda: tc.get("/readyz").status_code == 200, timeout=30)
        return tc

    yield make
    for tc in clients:
        tc.__exit__(None, None, None)


def _h(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def _ready_token(tc: TestClient, kube: client.ApiClient, namespace: str) -> str:
    token = workspace_with_token(kube, namespace)
    eventually(lambda: tc.get(f"{BASE}/ServiceProviderConfig", headers=_h(token)).status_code == 200)
    return token


def _sample(tc: TestClient, name: str, **labels: str) -> float:
    value = tc.app.state.metrics.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return float(value or 0.0)


def _answered(tc: TestClient, workspace: str, method: str, route: str, status: int) -> float:
    """``scim_api_requests_total`` for one workspace, method, route template and status."""
    labels = {"workspace": workspace, "method": method, "route": route, "status": str(status)}
    return _sample(tc, "scim_api_requests_total", **labels)


def _writes(tc: TestClient) -> float:
    return _sample(tc, "scim_api_workspace_status_writes_total", result="ok")


def _status(kube: client.ApiClient, namespace: str) -> dict[str, Any]:
    return dict(get_workspace(kube, namespace).get("status") or {})


# ------------------------------------------------------------------------------ metrics


def test_metrics_by_workspace_route_template_and_status(
    make_app: Callable[[float], TestClient], kube: client.ApiClient, namespace: str
) -> None:
    tc = make_app(60)
    token = _ready_token(tc, kube, namespace)
    assert tc.get(f"{BASE}/Groups/grp-no-such-group", headers=_h(token)).status_code == 404
    gid = tc.post(f"{BASE}/Groups", headers=_h(token), json={"displayName": "Metrics"}).json()["id"]
    ops = [
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "replace", "path": "displayName", "value": "M2"},
    ]
    assert (
        tc.patch(
            f"{BASE}/Groups/{gid}", headers=_h(token), json={"schemas": [PATCH_OP], "Operations": ops}
        ).status_code
        == 204
    )
    refused = _sample(tc, "scim_api_refused_requests_total", status="401")
    assert tc.get(f"{BASE}/Groups", headers=_h("scim_not-a-token")).status_code == 401

    assert _answered(tc, namespace, "GET", GROUP_ROUTE, 404) == 1
    assert _answered(tc, namespace, "POST", "/Groups", 201) == 1
    assert _answered(tc, namespace, "PATCH", GROUP_ROUTE, 204) == 1
    assert _answered(tc, "", "GET", "/Groups", 401) >= 1
    assert _sample(tc, "scim_api_refused_requests_total", status="401") == refused + 1
    assert _sample(tc, "scim_api_patch_operations_total", workspace=namespace, resource="Groups") == 2
    assert _sample(tc, "scim_api_request_duration_seconds_count", method="PATCH", route=GROUP_ROUTE) >= 1
    text = generate_latest(tc.app.state.metrics.registry).decode()  # type: ignore[attr-defined]
    assert "grp-no-such-group" not in text and gid not in text  # route templates, never raw paths
    assert token not in text
    # the watch-cache lag: one gauge per watched kind, fresh
    for plural in (c.WORKSPACE_PLURAL, c.GROUP_PLURAL, c.SHARD_PLURAL, c.USER_PLURAL):
        assert 0 <= _sample(tc, "scim_api_watch_silence_seconds", resource=plural) < 30
    # the SCIM port never serves metrics
    assert tc.get("/metrics").status_code == 404
    assert tc.get(f"{BASE}/metrics", headers=_h(token)).status_code == 404


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def test_scim_api_serves_metrics_on_their_own_port(control_plane: ControlPlane, tmp_path: Path) -> None:
    """The installed ``scim-api`` command: /metrics on SCIM_API_METRICS_PORT, not on SCIM_PORT."""
    port, metrics = free_port(), free_port()
    env = dict(os.environ, KUBECONFIG=str(control_plane.kubeconfig), SCIM_PORT=str(port),
               SCIM_API_METRICS_PORT=str(metrics), SCIM_LOG_FORMAT="plain")  # fmt: skip
    proc = processes.spawn([str(Path(sys.executable).parent / "scim-api")], tmp_path / "api.log", env=env)
    try:
        eventually(lambda: _get(f"http://127.0.0.1:{port}/readyz")[0] == 200, timeout=60)
        assert _get(f"http://127.0.0.1:{port}{BASE}/Users")[0] == 401
        status, text = _get(f"http://127.0.0.1:{metrics}/metrics")
        assert status == 200
        assert 'scim_api_requests_total{method="GET",route="/Users",status="401",workspace=""} 1.0' in text
        assert "scim_api_watch_silence_seconds" in text
        assert "scim_operator_" not in text  # its own registry
        assert _get(f"http://127.0.0.1:{port}/metrics")[0] == 404
    finally:
        processes.stop(proc)
        print(processes.log_tail(tmp_path / "api.log"))


# ------------------------------------------------------------------------------ audit


def test_one_audit_line_per_write_with_counts_never_members_or_tokens(
    make_app: Callable[[float], TestClient], kube: client.ApiClient, namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    tc = make_app(60)
    token = _ready_token(tc, kube, namespace)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    members = [{"value": f"usr-audit-secret-{i}"} for i in range(3)]
    r = tc.post(f"{BASE}/Groups", headers=_h(token, **{"X-Request-Id": "req-42"}),
                json={"displayName": "Audited", "members": members})  # fmt: skip
    assert r.status_code == 201 and r.headers["x-request-id"] == "req-42"
    gid = r.json()["id"]
    ops = [{"op": "add", "path": "members", "value": [{"value": "usr-audit-secret-7"}, {"value": "usr-audit-secret-8"}]},
           {"op": "remove", "path": 'members[value eq "usr-audit-secret-0"]'}]  # fmt: skip
    r = tc.patch(f"{BASE}/Groups/{gid}", headers=_h(token), json={"schemas": [PATCH_OP], "Operations": ops})
    assert r.status_code == 204
    generated = r.headers["x-request-id"]
    assert len(generated) == 32
    assert tc.get(f"{BASE}/Groups/{gid}", headers=_h(token)).status_code == 200  # a read: no line
    bad = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "members[value eq"}]}
    refused = tc.patch(f"{BASE}/Groups/{gid}", headers=_h(token), json=bad)
    assert refused.status_code == 400
    assert (
        tc.put(f"{BASE}/Groups/{gid}", headers=_h(token), json={"displayName": "Audited"}).status_code == 200
    )
    assert tc.delete(f"{BASE}/Groups/{gid}", headers=_h(token)).status_code == 204

    audit = [rec for rec in caplog.records if rec.name == "scim_api.audit"]
    lines = [json.loads(JsonFormatter().format(rec)) for rec in audit]
    fp = fingerprint(token_sha256(token))
    assert [(x["method"], x["status"]) for x in lines] == [
        ("POST", 201),
        ("PATCH", 204),
        ("PATCH", 400),
        ("PUT", 200),
        ("DELETE", 204),
    ]
    for x in lines:
        assert x["workspace"] == namespace and x["token_fingerprint"] == fp
        assert x["resource_type"] == "Groups" and x["resource_id"] == gid
    assert lines[0]["request_id"] == "req-42" and lines[1]["request_id"] == generated
    assert (lines[0]["members_added"], lines[0]["members_removed"]) == (3, 0)
    assert (lines[1]["members_added"], lines[1]["members_removed"], lines[1]["patch_operations"]) == (2, 1, 2)
    assert lines[2]["scim_type"] == refused.json()["scimType"]
    assert (lines[2]["members_added"], lines[2]["members_removed"]) == (0, 0)
    assert (lines[3]["members_added"], lines[3]["members_removed"]) == (0, 4)  # PUT without members
    assert lines[4]["members_removed"] == 0
    # never a member, never the token: in the audit lines, nor anywhere in the logs
    for rec in audit:
        assert "usr-audit-secret" not in JsonFormatter().format(rec)
    assert token not in caplog.text


# ------------------------------------------------------------------------------ IdP trace


def test_idp_trace_appears_is_throttled_and_shows_the_last_error(
    make_app: Callable[[float], TestClient], kube: client.ApiClient, namespace: str
) -> None:
    interval = 2.0
    tc = make_app(interval)
    before = _writes(tc)
    token = _ready_token(tc, kube, namespace)
    fp = fingerprint(token_sha256(token))

    def usage() -> dict[str, str]:
        return {u["fingerprint"]: u["lastUsedTime"] for u in _status(kube, namespace).get("tokenUsage") or []}

    # the first request with a token: its use, and the trace, are written at once
    eventually(lambda: fp in usage(), timeout=10)
    idp = _status(kube, namespace)["idp"]
    assert idp["requests"] >= 1 and idp["lastRequestTime"]
    # a write sets lastWriteTime
    assert tc.post(f"{BASE}/Groups", headers=_h(token), json={"displayName": "Traced"}).status_code == 201
    eventually(lambda: _status(kube, namespace)["idp"].get("lastWriteTime"), timeout=10)
    # a steady stream of requests: at most one write per interval (plus the one under way)
    start_writes, started = _writes(tc), time.monotonic()
    sent = 0
    while time.monotonic() - started < 3 * interval:
        assert tc.get(f"{BASE}/Groups", headers=_h(token)).status_code == 200
        sent += 1
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    written = _writes(tc) - start_writes
    assert sent > 20
    assert 1 <= written <= elapsed / interval + 1, (written, elapsed)
    # a refused request shows up as lastError: status, scimType, detail, time; nothing else
    bad = {"schemas": [PATCH_OP], "Operations": [{"op": "jump", "path": "members"}]}
    r = tc.patch(f"{BASE}/Groups/grp-missing", headers=_h(token), json=bad)
    assert r.status_code == 400
    error = eventually(lambda: _status(kube, namespace)["idp"].get("lastError"), timeout=10)
    assert set(error) <= {"time", "status", "scimType", "detail"}
    assert error["status"] == 400 and error["scimType"] == r.json()["scimType"]
    assert error["detail"] == r.json()["detail"][:256]
    assert eventually(lambda: _status(kube, namespace)["idp"]["errors"] >= 1, timeout=10)
    assert token not in json.dumps(_status(kube, namespace))
    assert _writes(tc) - before >= 3
    assert _sample(tc, "scim_api_workspace_status_writes_total", result="error") == 0


def test_a_rotated_token_is_shown_used_at_once(
    make_app: Callable[[float], TestClient], kube: client.ApiClient, namespace: str
) -> None:
    """With an hour between reports, only the first-sight rule can write: a rotation's new
    fingerprint still appears within seconds of its first use."""
    tc = make_app(3600)
    old = _ready_token(tc, kube, namespace)
    old_fp = fingerprint(token_sha256(old))

    def usage() -> dict[str, str]:
        return {u["fingerprint"]: u["lastUsedTime"] for u in _status(kube, namespace).get("tokenUsage") or []}

    eventually(lambda: old_fp in usage(), timeout=10)
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws",
        {"metadata": {"annotations": {ROTATE_REQUEST: "test-rotation"}}},
    )  # fmt: skip
    new = eventually(lambda: (t := read_token(kube, namespace)) != old and t, timeout=30)
    eventually(
        lambda: tc.get(f"{BASE}/ServiceProviderConfig", headers=_h(new)).status_code == 200, timeout=30
    )
    new_fp = fingerprint(token_sha256(new))
    seen = time.monotonic()
    got = eventually(lambda: new_fp in usage() and usage(), timeout=10)
    assert time.monotonic() - seen < 10
    assert old_fp in got  # the old token's last use is kept while it is still published
    assert _writes(tc) == 2


# ------------------------------------------------------------------------------ content types


@pytest.mark.parametrize(
    ("idp", "headers", "expected"),
    [
        (
            "entra",
            {"User-Agent": "Microsoft.Identity.Provisioning", "Accept": "application/scim+json"},
            "application/scim+json",
        ),
        (
            "okta",
            {"User-Agent": "Okta SCIM Client 1.0.0", "Accept": "application/json, */*"},
            "application/scim+json",
        ),
        ("onelogin", {"User-Agent": "OneLogin SCIM"}, "application/json"),
        ("onelogin-wildcard", {"User-Agent": "onelogin-provisioning/2", "Accept": "*/*"}, "application/json"),
        ("plain-json-client", {"Accept": "application/json"}, "application/json"),
    ],
)
def test_each_idp_gets_the_content_type_it_expects(
    make_app: Callable[[float], TestClient], kube: client.ApiClient, namespace: str,
    idp: str, headers: dict[str, str], expected: str,
) -> None:  # fmt: skip
    """The connection test (a userName filter that matches nothing), a create, a PATCH with
    the resource returned, and an error, in the form each IdP expects."""
    tc = make_app(60)
    token = _ready_token(tc, kube, namespace)
    h = _h(token, **headers)
    r = tc.get(f"{BASE}/Users", params={"filter": 'userName eq "nobody@example.com"'}, headers=h)
    assert r.status_code == 200 and r.json()["totalResults"] == 0
    created = tc.post(f"{BASE}/Groups", headers=h, json={"displayName": f"CT {idp}"})
    assert created.status_code == 201
    ops = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": f"CT2 {idp}"}],
    }
    patched = tc.patch(
        f"{BASE}/Groups/{created.json()['id']}", params={"attributes": "displayName"}, headers=h, json=ops
    )
    assert patched.status_code == 200
    failed = tc.get(f"{BASE}/Groups/grp-no-such-group", headers=h)
    unauthenticated = tc.get(f"{BASE}/Users", headers={**headers, "Authorization": "Bearer nope"})
    assert (failed.status_code, unauthenticated.status_code) == (404, 401)
    for response in (r, created, patched, failed, unauthenticated):
        assert response.headers["content-type"].split(";")[0] == expected, (idp, response.request.url)


# ------------------------------------------------------------------------------ two API processes


def _usage_kept(events: list[dict[str, Any]]) -> list[str]:
    """Each status (in watch order) that dropped a fingerprint the previous one showed used
    while the fingerprint is still published: a replica's write replaced another's."""
    lost = []
    for before, after in itertools.pairwise(events):
        published = {h.get("fingerprint") for h in after.get("tokenHashes") or []}
        was = {u["fingerprint"] for u in before.get("tokenUsage") or []}
        now = {u["fingerprint"] for u in after.get("tokenUsage") or []}
        lost += sorted((was & published) - now)
    return lost


@contextmanager
def _statuses(kube: client.ApiClient, namespace: str) -> Iterator[list[dict[str, Any]]]:
    """The status of the workspace ``ws`` now, then every one the watch shows while the
    block runs."""
    now = get_workspace(kube, namespace)
    seen: list[dict[str, Any]] = [dict(now.get("status") or {})]
    done = threading.Event()
    errors: list[BaseException] = []

    def follow() -> None:
        last = now["metadata"]["resourceVersion"]
        try:
            while not done.is_set():  # short watches, resumed: the thread ends with the block
                for event in kube_watch.Watch().stream(
                    custom(kube).list_namespaced_custom_object, c.GROUP, c.VERSION, namespace,
                    c.WORKSPACE_PLURAL, field_selector="metadata.name=ws", resource_version=last,
                    timeout_seconds=1,
                ):  # fmt: skip
                    seen.append(dict(event["object"].get("status") or {}))
                    last = event["object"]["metadata"]["resourceVersion"]
        except Exception as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join(timeout=10)
    assert not errors and not thread.is_alive(), errors


def _rotated(kube: client.ApiClient, namespace: str) -> tuple[str, str]:
    """A fresh workspace's token rotated: (previous, current), both published, neither used."""
    old = workspace_with_token(kube, namespace)
    custom(kube).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.WORKSPACE_PLURAL, "ws",
        {"metadata": {"annotations": {ROTATE_REQUEST: "test-rotation"}}},
    )  # fmt: skip
    new = eventually(lambda: (t := read_token(kube, namespace)) != old and t, timeout=30)
    fps = {fingerprint(token_sha256(t)) for t in (old, new)}
    eventually(lambda: fps <= {h["fingerprint"] for h in _status(kube, namespace).get("tokenHashes") or []})
    return old, new


def test_two_api_processes_keep_every_token_use_and_throttle(
    api_processes: list[ApiProcess],  # noqa: F811 - the fixture
    kube: client.ApiClient,
    namespace: str,
    operator_running: None,
) -> None:
    """Both replicas write ``status.idp`` and ``status.tokenUsage``: a rotation's previous
    token used through one replica while the new one is first used through the other, at
    the same instant, must not make either write drop the other's fingerprint; and with a
    steady stream through both, each replica writes at most once per interval."""
    old, new = _rotated(kube, namespace)
    time.sleep(1.0)  # both processes' watches have the two hashes (milliseconds, in fact)
    with clients_of(api_processes, [old, new], namespace) as (a, b), _statuses(kube, namespace) as seen:
        gate = threading.Barrier(2)

        def first_use(replica: ScimClient) -> int:
            gate.wait()  # (a replica whose watch is late answers 401 for a moment)
            return eventually(
                lambda: int(replica.get("/ServiceProviderConfig").status_code) == 200, timeout=10
            )

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            assert all(pool.map(first_use, (a, b)))
        eventually(
            lambda: fingerprint(token_sha256(new)) in known_tokens(get_workspace(kube, namespace)), timeout=10
        )
        # a steady stream through both replicas with the new token (the operator retires
        # the old one once it sees the new one used)
        a_new = ScimClient(a.tc, new, namespace)
        started, sent = time.monotonic(), 0
        while time.monotonic() - started < 3 * STATUS_INTERVAL:
            for replica in (a_new, b):
                assert replica.get("/Groups").status_code == 200
                sent += 1
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        time.sleep(0.5)
    assert sent > 40
    assert not _usage_kept(seen), (_usage_kept(seen), seen)
    traces = [s.get("idp") for s in seen]
    idp_writes = sum(1 for x, y in itertools.pairwise([None, *traces]) if y is not None and y != x)
    # two first-sight writes, then per replica at most one per interval (plus one under way)
    assert 2 <= idp_writes <= 2 + REPLICAS * (elapsed / STATUS_INTERVAL + 1), (idp_writes, elapsed)


def test_a_lagging_replica_keeps_the_other_replicas_token_use(
    api_processes: list[ApiProcess],  # noqa: F811 - the fixture
    make_app: Callable[[float], TestClient],
    kube: client.ApiClient,
    namespace: str,
) -> None:
    """Replica A (a process) writes the previous token's use; replica B (in-process), whose
    cache has not seen that write yet, writes the new token's first use: B's write must
    keep A's fingerprint (it is still published), not replace the list with its own."""
    old, new = _rotated(kube, namespace)
    tc = make_app(3600)
    directory = tc.app.state.scim.directory  # type: ignore[attr-defined]
    key = (namespace, "ws")
    hashes = {token_sha256(t) for t in (old, new)}
    eventually(lambda: hashes <= {h["sha256"] for h in directory.workspaces[key]["status"]["tokenHashes"]})
    stale = copy.deepcopy(directory.workspaces[key])
    with clients_of(api_processes[:1], [old], namespace) as (a,):
        assert a.get("/ServiceProviderConfig").status_code == 200
    old_fp, new_fp = (fingerprint(token_sha256(t)) for t in (old, new))
    eventually(lambda: old_fp in known_tokens(directory.workspaces[key]), timeout=10)
    with _statuses(kube, namespace) as seen:
        directory.workspaces[key] = stale  # B's cache lags A's write
        assert tc.get(f"{BASE}/ServiceProviderConfig", headers=_h(new)).status_code == 200
        eventually(lambda: new_fp in known_tokens(get_workspace(kube, namespace)), timeout=10)
        time.sleep(0.5)
    assert not _usage_kept(seen), seen
