"""SCIM API benchmark against the real control plane (``make bench-api``).

Seeds a workspace with 10,000 groups and 10,000 users, runs one API worker, and measures
with the Go load generator (keep-alive HTTP, N concurrent clients):
  - GET /Groups?filter=displayName eq "…"&excludedAttributes=members: p99 with 1 client, req/s with 8;
  - GET /Users?filter=userName eq "…": the same;
  - member add on one group growing 0 -> 600 with 8 clients, through SCIM (concurrent PATCHes
    to one group share API-server writes: group commit) vs the raw API-server JSON Patch append,
    same client and concurrency;
  - a 50,000-member group built with PATCH adds of 100, read back in full; largest stored object;
  - a 1,000-operation PATCH on that group (500 ``members[value eq …]`` removals spread over
    every object + 500 additions), three times, with /healthz polled meanwhile (its slowest
    answer shows how long the event loop was held);
  - API memory (RSS).
  - the same filter reads and member adds against scim2-server (in memory, same machine;
    bench/peer.py, BENCH_GROUPS groups stored before it serves), with our/peer ratios; the
    8-client filter also interleaved with the peer's (ours, the peer, ours … BENCH_ROUNDS
    rounds of BENCH_ROUND_SECONDS, the load average printed with each): the ratio judged.
Prints a table and writes bench/results/api.json. Sizes: BENCH_GROUPS, BENCH_USERS, BENCH_BIG
(0 skips the big group), BENCH_ADDS, BENCH_CLIENTS, BENCH_SECONDS; BENCH_PEER=0 skips the peer;
BENCH_ONLY=member_add runs only the member adds, BENCH_ONLY=filter only the group filter reads
(ours and, interleaved, the peer's: ``BENCH_ONLY=filter BENCH_GROUPS=100000 BENCH_USERS=1000
BENCH_BIG=0`` is the ratio at 100,000 groups).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import threading
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane, free_port
from scim_devenv.crds import install_crds

from .common import (
    bin_path,
    check,
    create_many,
    load,
    rss_mb,
    save,
    start_process,
    wait_http,
    workspace_with_token,
)
from .peer import filter_urls, run_peer, started_peer

GROUPS = int(os.environ.get("BENCH_GROUPS", "10000"))
USERS = int(os.environ.get("BENCH_USERS", "10000"))
BIG = int(os.environ.get("BENCH_BIG", "50000"))
DURATION = float(os.environ.get("BENCH_SECONDS", "8"))
ADDS = int(os.environ.get("BENCH_ADDS", "600"))  # member adds on one growing group
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
PEER = os.environ.get("BENCH_PEER", "1") != "0"  # scim2-server side by side
#: ``member_add`` runs only the member adds (SCIM and raw, and the peer's unless BENCH_PEER=0)
ONLY = os.environ.get("BENCH_ONLY", "")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "6"))  # interleaved filter rounds, ours vs the peer
ROUND_SECONDS = float(os.environ.get("BENCH_ROUND_SECONDS", "4"))
LOG_DIR = Path(os.environ.get("BENCH_LOG_DIR", "/tmp"))
NS = "bench"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _request(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=120) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def main() -> None:
    results: dict[str, Any] = {"groups": GROUPS, "users": USERS}
    with ControlPlane() as cp:
        install_crds(cp)
        token = workspace_with_token(cp, NS)
        t0 = time.monotonic()
        groups = [{"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": f"grp-{i:06d}"},
                   "spec": {"displayName": f"Group {i:06d}", "externalId": f"ext-{i}",
                            "members": [{"value": f"usr-{(i * 7 + k) % USERS:06d}"} for k in range(3)]}}
                  for i in range(GROUPS)]  # fmt: skip
        users = [{"apiVersion": c.API_VERSION, "kind": c.USER_KIND, "metadata": {"name": f"usr-{i:06d}"},
                  "spec": {"userName": f"user{i:06d}@example.com", "active": True}} for i in range(USERS)]  # fmt: skip
        asyncio.run(create_many(cp, NS, c.GROUP_PLURAL, groups))
        asyncio.run(create_many(cp, NS, c.USER_PLURAL, users))
        results["seed_seconds"] = round(time.monotonic() - t0, 1)
        print(f"seeded {GROUPS} groups + {USERS} users in {results['seed_seconds']}s", flush=True)

        port = free_port()
        log = LOG_DIR / "bench-api.log"
        api = start_process([bin_path("scim-api"), "--port", str(port)],
                            {"KUBECONFIG": str(cp.kubeconfig), "SCIM_RATE_PER_SECOND": "1000000",
                             "SCIM_RATE_BURST": "1000000", "SCIM_LOG_FORMAT": "json"}, log)  # fmt: skip
        stack = ExitStack()
        try:
            base = f"http://127.0.0.1:{port}{c.SCIM_BASE_PATH}"
            auth = {"Authorization": f"Bearer {token}"}
            wait_http(f"http://127.0.0.1:{port}/readyz")
            while _request(f"{base}/Groups?count=0", token)["totalResults"] < GROUPS:
                time.sleep(0.2)
            results["api_rss_mb_after_sync"] = round(rss_mb(api.pid), 1)
            # the peer, started once ours has synced (its seeding takes a core meanwhile)
            peer = (
                stack.enter_context(started_peer(LOG_DIR, GROUPS)) if PEER and ONLY != "member_add" else None
            )

            group_urls = [
                f"{base}/Groups?filter="
                + _q('displayName eq "Group %06d"' % i)
                + "&excludedAttributes=members"
                for i in range(0, GROUPS, max(1, GROUPS // 500))
            ]
            user_urls = [
                f"{base}/Users?filter=" + _q('userName eq "user%06d@example.com"' % i)
                for i in range(0, USERS, max(1, USERS // 500))
            ]
            reads = {"member_add": (), "filter": (("groups_filter", group_urls),)}.get(
                ONLY, (("groups_filter", group_urls), ("users_filter", user_urls))
            )
            for name, urls in reads:
                load(
                    {"method": "GET", "urls": urls, "headers": auth, "concurrency": 2, "duration_s": 2}
                )  # warm-up
                one = load(
                    {"method": "GET", "urls": urls, "headers": auth, "concurrency": 1, "duration_s": DURATION}
                )
                eight = load(
                    {"method": "GET", "urls": urls, "headers": auth, "concurrency": 8, "duration_s": DURATION}
                )
                results[name] = {"one_client": one, "eight_clients": eight}
                print(f"{name}: 1 client p50 {one['p50_ms']:.2f} ms p99 {one['p99_ms']:.2f} ms; "
                      f"8 clients {eight['rps']:.0f} req/s (p99 {eight['p99_ms']:.2f} ms, errors {eight['errors']})", flush=True)  # fmt: skip
            if peer is not None:
                results["filter_interleaved"] = _interleaved(group_urls, auth, filter_urls(peer, GROUPS))

            if ONLY != "filter":
                results["member_add"] = _member_add(cp, base, auth)
            if BIG and not ONLY:
                results.update(_big_group(cp, base, token, f"http://127.0.0.1:{port}/healthz"))
            results["api_rss_mb_end"] = round(rss_mb(api.pid), 1)
            print(f"API RSS at the end {results['api_rss_mb_end']} MB", flush=True)
            if PEER and ONLY != "filter":
                results["peer"] = run_peer(LOG_DIR, GROUPS, DURATION, ADDS, CLIENTS, base=peer)
        finally:
            stack.close()
            api.terminate()
            api.wait(timeout=20)

    if PEER:
        results["ratios"] = _ratios(results)
        print("our/peer: " + ", ".join(f"{k} {v:.2f}" for k, v in results["ratios"].items()), flush=True)
    results["load_average"] = os.getloadavg()
    results["verdicts"] = verdicts = _verdicts(results)
    results["verdicts"] = verdicts
    print("\n".join(verdicts))
    print(f"written {save(f'api-{ONLY}' if ONLY else 'api', results)}")


def _member_add(cp: ControlPlane, base: str, auth: dict[str, str]) -> dict[str, Any]:
    """ADDS member adds by CLIENTS clients on one group growing from 0, through SCIM and as
    the raw JSON Patch append on a ScimGroup through the API server (the reference)."""
    token = auth["Authorization"].split(" ", 1)[1]
    scim_group = _request(f"{base}/Groups", token, "POST", {"displayName": "Patch target"})["id"]
    cp.apply([{"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": "grp-raw", "namespace": NS},
               "spec": {"displayName": "Raw target", "members": []}}])  # fmt: skip
    scim = load({
        "method": "PATCH", "urls": [f"{base}/Groups/{scim_group}"], "concurrency": CLIENTS, "requests": ADDS,
        "headers": {**auth, "Content-Type": "application/scim+json"},
        "body": json.dumps({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "usr-p{n}"}]}]}),
    })  # fmt: skip
    raw = load({
        "method": "PATCH", "concurrency": CLIENTS, "requests": ADDS,
        "urls": [f"{cp.url}/apis/{c.GROUP}/{c.VERSION}/namespaces/{NS}/{c.GROUP_PLURAL}/grp-raw"],
        "headers": {"Content-Type": "application/json-patch+json"},
        "body": json.dumps([{"op": "add", "path": "/spec/members/-", "value": {"value": "usr-p{n}"}}]),
        "ca": str(cp.pki.ca_cert), "cert": str(cp.pki.admin_cert), "key": str(cp.pki.admin_key),
    })  # fmt: skip
    members = len(_request(f"{base}/Groups/{scim_group}?attributes=members", token).get("members", []))
    ratio = scim["rps"] / raw["rps"] if raw["rps"] else 0.0
    print(f"member add x{ADDS} ({CLIENTS} clients, one group 0 -> {members}): SCIM {scim['rps']:.0f}/s "
          f"p50 {scim['p50_ms']:.1f} p99 {scim['p99_ms']:.1f} ms | raw API server {raw['rps']:.0f}/s "
          f"p50 {raw['p50_ms']:.1f} p99 {raw['p99_ms']:.1f} ms | ratio {ratio:.2f}", flush=True)  # fmt: skip
    return {"scim": scim, "raw_api_server": raw, "ratio": round(ratio, 3), "members_after": members}


def _big_group(cp: ControlPlane, base: str, token: str, healthz: str) -> dict[str, Any]:
    """A BIG-member group built with PATCH adds of 100, read back, then the 1,000-op PATCH."""
    big = _request(f"{base}/Groups", token, "POST", {"displayName": "Everyone"})["id"]
    t0 = time.monotonic()
    body: dict[str, Any] = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": []}]}
    for start in range(0, BIG, 100):
        body["Operations"][0]["value"] = [{"value": f"usr-{i:06d}", "display": f"user{i:06d}@example.com"}
                                          for i in range(start, min(BIG, start + 100))]  # fmt: skip
        _request(f"{base}/Groups/{big}", token, "PATCH", body)
    build_s = time.monotonic() - t0
    t0 = time.monotonic()
    full = _request(f"{base}/Groups/{big}", token)
    read_s = time.monotonic() - t0
    objects = _all_objects(cp)
    sizes = [len(json.dumps(o)) for o in objects]
    managed = [len(json.dumps(o["metadata"].get("managedFields", []))) for o in objects]
    print(f"big group: {len(full['members'])} members built in {build_s:.1f}s (100 per PATCH), read in "
          f"{read_s:.2f}s; largest stored object {max(sizes)} bytes (managedFields at most {max(managed)})",
          flush=True)  # fmt: skip
    return {
        "big_group": {"members": len(full["members"]), "build_seconds": round(build_s, 1),
                      "read_seconds": round(read_s, 2), "largest_object_bytes": max(sizes),
                      "largest_managed_fields_bytes": max(managed)},
        "thousand_op_patch": _thousand_op_patch(base, token, healthz, big),
    }  # fmt: skip


def _ratios(results: dict[str, Any]) -> dict[str, float]:
    """Ours divided by the peer's (above 1: we are faster)."""
    ratios: dict[str, float] = {}
    if "filter_interleaved" in results:
        ratios["filter_rps_8_clients_interleaved"] = results["filter_interleaved"]["ratio"]
    if "peer" not in results:
        return ratios
    ours, peer = results, results["peer"]
    if "member_add" in ours:
        ratios["member_add_rps"] = ours["member_add"]["scim"]["rps"] / peer["member_add"]["rps"]
    if "groups_filter" in ours:
        ratios |= {
            "filter_rps_8_clients": ours["groups_filter"]["eight_clients"]["rps"] / peer["groups_filter"]["eight_clients"]["rps"],
            "filter_p99_1_client (peer/ours)": peer["groups_filter"]["one_client"]["p99_ms"] / ours["groups_filter"]["one_client"]["p99_ms"],
        }  # fmt: skip
    return ratios


def _interleaved(ours: list[str], auth: dict[str, str], peers: list[str]) -> dict[str, Any]:
    """The 8-client filter, ours then the peer's, ROUNDS times (one run after the other
    shares the machine's load alike, which two runs minutes apart do not): requests per
    second summed over the rounds, their ratio, and each round's figures with the load."""
    load({"method": "GET", "urls": peers, "concurrency": 2, "duration_s": 2})  # warm-up
    rounds = []
    for n in range(ROUNDS):
        row: dict[str, Any] = {"load_average": round(os.getloadavg()[0], 2)}
        for side, urls, headers in (("ours", ours, auth), ("peer", peers, {})):
            r = load(
                {
                    "method": "GET",
                    "urls": urls,
                    "headers": headers,
                    "concurrency": 8,
                    "duration_s": ROUND_SECONDS,
                }
            )
            row[side] = {"rps": round(r["rps"], 1), "p99_ms": r["p99_ms"], "errors": r["errors"]}
        row["ratio"] = round(row["ours"]["rps"] / row["peer"]["rps"], 3) if row["peer"]["rps"] else 0.0
        rounds.append(row)
        print(f"filter round {n}: ours {row['ours']['rps']:.0f} req/s, peer {row['peer']['rps']:.0f} req/s, "
              f"ratio {row['ratio']:.2f} (load {row['load_average']:.2f})", flush=True)  # fmt: skip
    ours_rps = sum(r["ours"]["rps"] for r in rounds)
    peer_rps = sum(r["peer"]["rps"] for r in rounds)
    ratio = ours_rps / peer_rps if peer_rps else 0.0
    median = statistics.median(r["ratio"] for r in rounds)
    print(
        f"filter, 8 clients, interleaved: ours/peer {ratio:.2f} (per round median {median:.2f})", flush=True
    )
    return {
        "rounds": rounds,
        "ours_rps_sum": ours_rps,
        "peer_rps_sum": peer_rps,
        "ratio": ratio,
        "median_ratio": median,
    }


def _verdicts(results: dict[str, Any]) -> list[str]:
    verdicts = []
    for name, path in (("groups_filter", "/Groups"), ("users_filter", "/Users")):
        if name in results:
            g = results[name]
            verdicts += [
                check(f"GET {path} filter p99 < 2 ms (1 client)", g["one_client"]["p99_ms"] < 2.0),
                check(f"GET {path} filter > 2000 req/s (8 clients)", g["eight_clients"]["rps"] > 2000),
            ]
    if "member_add" in results:
        m = results["member_add"]
        verdicts += [
            check(f"member add >= 60/s ({CLIENTS} clients)", m["scim"]["rps"] >= 60),
            check("member add >= 5x the raw API-server rate", m["ratio"] >= 5),
            check("member add p99 < 1 s", m["scim"]["p99_ms"] < 1000),
            check(f"every member added ({ADDS})", m["members_after"] == ADDS),
        ]
    if "big_group" in results:
        b, t = results["big_group"], results["thousand_op_patch"]
        verdicts += [
            check(f"{BIG}-member group read back in full", b["members"] == BIG),
            check("no stored object above 1 MiB", b["largest_object_bytes"] < 1024 * 1024),
            check(f"1,000-op PATCH on {BIG} members < 1 s (slowest of 3)", max(t["seconds"]) < 1.0),
            check("/healthz answered within 0.5 s meanwhile", t["healthz_max_ms"] < 500),
        ]
    if "filter_interleaved" in results:
        verdicts.append(
            check(f"filter >= 3x the peer (8 clients, {GROUPS} groups, interleaved)", results["filter_interleaved"]["ratio"] >= 3)
        )  # fmt: skip
    return verdicts


def _thousand_op_patch(base: str, token: str, healthz: str, gid: str) -> dict[str, Any]:
    """Three 1,000-operation PATCHes on the big group, alternating removals and additions,
    while a thread polls /healthz; the time of each and the slowest /healthz answer."""
    removed = [f"usr-{i:06d}" for i in range(0, BIG, max(1, BIG // 500))][:500]
    extra = [f"extra-{i:04d}" for i in range(1000 - len(removed))]

    def ops(out: list[str], into: list[str]) -> list[dict[str, Any]]:
        return [{"op": "remove", "path": f'members[value eq "{v}"]'} for v in out] + [
            {"op": "add", "path": "members", "value": [{"value": v}]} for v in into
        ]

    slowest = 0.0
    done = threading.Event()

    def probe() -> None:
        nonlocal slowest
        while not done.is_set():
            t0 = time.monotonic()
            with urllib.request.urlopen(healthz, timeout=30) as r:
                r.read()
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    seconds = []
    try:
        for out, into in ((removed, extra), (extra, removed), (removed, extra)):
            t0 = time.monotonic()
            _request(
                f"{base}/Groups/{gid}", token, "PATCH", {"schemas": [PATCH], "Operations": ops(out, into)}
            )
            seconds.append(round(time.monotonic() - t0, 3))
    finally:
        done.set()
        prober.join()
    members = len(_request(f"{base}/Groups/{gid}?attributes=members", token)["members"])
    print(f"1,000-op PATCH on {members} members: {seconds} s; slowest /healthz meanwhile "
          f"{slowest * 1000:.0f} ms", flush=True)  # fmt: skip
    return {"seconds": seconds, "healthz_max_ms": round(slowest * 1000, 1), "members_after": members}


def _all_objects(cp: ControlPlane) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for plural in (c.GROUP_PLURAL, c.SHARD_PLURAL):
        out += json.loads(cp.kubectl("get", f"{plural}.{c.GROUP}", "-n", NS, "-o", "json"))["items"]
    return out


if __name__ == "__main__":
    main()
