"""The API's start at scale, on its own (task of issue 12): a control plane kept in
``BENCH_DATA`` (etcd persisted, so a second run skips the seeding), BENCH_GROUPS groups of
BENCH_PER_GROUP members out of BENCH_USERS users seeded straight into the API server like
``make bench-scale`` (no operator), then:

  - ``inproc``: the informers' list of each kind into a ``Directory`` in this process,
    timed per phase (HTTP, decode + ``Slim``, tables), and the peak RSS;
  - ``api``: ``scim-api`` processes, one per entry of BENCH_SOURCES (``:``-separated source
    trees put first on ``PYTHONPATH``, ``.`` = this checkout; e.g. an ``git archive`` of
    main for a side-by-side), BENCH_ROUNDS times interleaved: seconds to ready, RSS, and
    p50/p99 of ``displayName eq`` and of a page of 100 groups without members, one client.
    BENCH_PYSPY=1 records the start of the first one with py-spy into /tmp.

``BENCH_DATA`` holding ``make bench-scale``'s seed (its ``bench-seeded.json``) is reused as it
is: bench-scale's namespace, token and kube-apiserver flags, every kind listed once first
(``_warm``). Each ``api`` start also prints the CPU the API and kube-apiserver used in each
second until ready (who waits on whom); BENCH_PYSPY_IDLE=1 adds py-spy's ``--idle``.

``python -m bench.startup [raw|inproc|api]...`` (default: inproc api). Prints the load average
with each figure; writes bench/results/startup.json.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import resource
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from scim_core import constants as c
from scim_devenv.controlplane import ControlPlane, free_port

from .common import (
    api_client,
    create_many,
    load,
    rss_mb,
    save,
    start_process,
    workspace_with_token,
)

GROUPS = int(os.environ.get("BENCH_GROUPS", "20000"))
USERS = int(os.environ.get("BENCH_USERS", "20000"))
PER_GROUP = int(os.environ.get("BENCH_PER_GROUP", "10"))
DATA = Path(os.environ.get("BENCH_DATA", f"/tmp/scim-startup-{GROUPS}-{USERS}-{PER_GROUP}"))
SOURCES = os.environ.get("BENCH_SOURCES", ".").split(":")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
PYSPY = os.environ.get("BENCH_PYSPY", "0") == "1"
#: py-spy also samples the threads while they wait (``--idle``): where the start waits.
PYSPY_IDLE = os.environ.get("BENCH_PYSPY_IDLE", "0") == "1"
#: ``BENCH_DATA`` holds ``make bench-scale``'s seed (``bench-seeded.json``, its namespace and
#: sizes, reconciled by an operator): reused as it is, every kind listed once first (``_warm``)
#: so kube-apiserver's watch caches are built, as bench-scale does before it starts the API.
SCALE_SEED = (DATA / "bench-seeded.json").exists()
NS = "bench"
ROOT = Path(__file__).resolve().parent.parent


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _user(i: int) -> dict[str, Any]:
    return {"apiVersion": c.API_VERSION, "kind": c.USER_KIND, "metadata": {"name": f"usr-{i:06d}"},
            "spec": {"userName": f"user{i:06d}@example.com"}}  # fmt: skip


def _display(i: int) -> str:
    """Group i's displayName (bench-scale's seed names the first tenth, the mapped ones, Team)."""
    return f"{'Team' if SCALE_SEED and i < GROUPS // 10 else 'Group'} {i:06d}"


def _group(i: int) -> dict[str, Any]:
    return {"apiVersion": c.API_VERSION, "kind": c.GROUP_KIND, "metadata": {"name": f"grp-{i:06d}"},
            "spec": {"displayName": _display(i), "externalId": f"ext-{i}",
                     "members": [{"value": f"usr-{(i * PER_GROUP + k) % USERS:06d}"} for k in range(PER_GROUP)]}}  # fmt: skip


def seed(cp: ControlPlane) -> str:
    """The workspace's token; objects created once per data directory."""
    if SCALE_SEED:
        from kubernetes import config

        from .common import operator_token
        from .scale import _warm

        token = operator_token(config.new_client_from_config(config_file=str(cp.kubeconfig)), NS)
        print(
            f"bench-scale's seed in {DATA}: every kind listed once in {_warm(cp)}s, load {loadavg()}",
            flush=True,
        )
        time.sleep(10)
        return token
    marker = DATA / "seeded"
    if marker.exists():
        return marker.read_text()
    from scim_devenv.crds import install_crds

    install_crds(cp)
    token = workspace_with_token(cp, NS)
    t0 = time.monotonic()
    asyncio.run(create_many(cp, NS, c.USER_PLURAL, [_user(i) for i in range(USERS)]))
    for start in range(0, GROUPS, 10_000):
        asyncio.run(
            create_many(
                cp, NS, c.GROUP_PLURAL, [_group(i) for i in range(start, min(GROUPS, start + 10_000))]
            )
        )
        print(
            f"seeded {min(GROUPS, start + 10_000)} groups, {time.monotonic() - t0:.0f}s, load {loadavg()}",
            flush=True,
        )
    marker.write_text(token)
    return token


def inproc(cp: ControlPlane) -> dict[str, Any]:
    """Every kind listed into one Directory, as the API does (one kind after the other), timed
    per kind; this process's CPU time and the API server's for the whole."""
    from scim_api.directory import Directory
    from scim_api.state import WATCHED
    from scim_core.informer import Informer

    async def run() -> dict[str, Any]:
        api = await api_client(cp)
        directory = Directory()
        out: dict[str, Any] = {}
        gc.collect()
        rss0 = rss_mb(os.getpid())
        t_all, cpu0, server0 = time.monotonic(), time.process_time(), cpu_s(cp.pid("kube-apiserver"))
        for plural in WATCHED:
            informer = Informer(api, plural, directory)
            t0 = time.monotonic()
            await informer._list()
            out[plural] = round(time.monotonic() - t0, 2)
        out["total_s"] = round(time.monotonic() - t_all, 2)
        out["cpu_s"] = round(time.process_time() - cpu0, 2)
        out["apiserver_cpu_s"] = round(cpu_s(cp.pid("kube-apiserver")) - server0, 2)
        out["rss_mb_built"] = round(rss_mb(os.getpid()) - rss0, 1)
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        out["groups"] = len(directory.group_table(NS).ids)
        await api.close()
        return out

    out = asyncio.run(run())
    out["load"] = loadavg()
    print(f"in-process list: {out}", flush=True)
    return out


def raw(cp: ControlPlane, option: str = "") -> dict[str, Any]:
    """The API server's part alone: every page of groups and users fetched, not decoded
    (the continue token found with one search in the bytes)."""
    from scim_core.informer import LIST_PAGE

    async def run() -> dict[str, Any]:
        api = await api_client(cp)
        out: dict[str, Any] = {"option": option}
        headers = {"Accept-Encoding": option} if option in ("identity", "gzip") else {}
        for plural in (c.GROUP_PLURAL, c.USER_PLURAL):
            t0, token, size, pages = time.monotonic(), None, 0, 0
            server0 = cpu_s(cp.pid("kube-apiserver"))
            while True:
                params = [("limit", str(LIST_PAGE))] + ([("continue", token)] if token else [])
                if option == "rv0" and not token:
                    params.append(("resourceVersion", "0"))
                resp = await api.call_api(f"/apis/{c.GROUP}/{c.VERSION}/{plural}", "GET", query_params=params,
                                          auth_settings=["BearerToken"], _preload_content=False,
                                          header_params=headers)  # fmt: skip
                resp = resp[0] if isinstance(resp, tuple) else resp
                body = await resp.read()
                resp.release()
                size, pages = size + len(body), pages + 1
                at = body.rfind(b'"continue":"')
                token = body[at + 12 : body.index(b'"', at + 12)].decode() if at >= 0 else None
                if not token:
                    break
            out[plural] = {"s": round(time.monotonic() - t0, 2), "mb": round(size / 2**20, 1), "pages": pages,
                           "apiserver_cpu_s": round(cpu_s(cp.pid("kube-apiserver")) - server0, 2)}  # fmt: skip
        await api.close()
        return out

    out = asyncio.run(run())
    out["load"] = loadavg()
    print(f"raw pages: {out}", flush=True)
    return out


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used: less at the mercy of the load than
    wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(url: str, pid: int, server: int, timeout: float = 1200.0) -> list[tuple[int, int]]:
    """Wait until ``url`` answers 200; the CPU the API (``pid``) and kube-apiserver
    (``server``) used in each second meanwhile, in percent of a core: whether the API works
    flat out (its own work bounds the start) or waits on the API server."""
    deadline = time.monotonic() + timeout
    timeline: list[tuple[int, int]] = []
    mark, api0, server0 = time.monotonic(), cpu_s(pid), cpu_s(server)
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return timeline
        except OSError:
            pass
        time.sleep(0.1)
        if (now := time.monotonic()) - mark >= 1.0:
            api1, server1 = cpu_s(pid), cpu_s(server)
            timeline.append(
                (round(100 * (api1 - api0) / (now - mark)), round(100 * (server1 - server0) / (now - mark)))
            )
            mark, api0, server0 = now, api1, server1
    raise RuntimeError(f"{url} not ready after {timeout}s")


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def api_once(cp: ControlPlane, token: str, source: str, profile: bool) -> dict[str, Any]:
    """One ``scim-api`` process from ``source``: ready, RSS, filter and page latencies."""
    port = free_port()
    src = Path(source).resolve()
    env = {"KUBECONFIG": str(cp.kubeconfig), "SCIM_RATE_PER_SECOND": "1000000", "SCIM_RATE_BURST": "1000000",
           "SCIM_LOG_FORMAT": "json", "SCIM_API_METRICS_PORT": "0", "PYTHONPATH": f"{src / 'api'}:{src / 'core'}"}  # fmt: skip
    cmd = [sys.executable, "-m", "scim_api.main", "--port", str(port)]
    if profile and shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        profile = False
    svg = Path(f"/tmp/startup-{src.name}-{GROUPS}.speedscope.json")
    if profile:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        cmd = [
            spy,
            "record",
            "-f",
            "speedscope",
            "-o",
            str(svg),
            "-r",
            "200",
            *(["--idle"] if PYSPY_IDLE else []),
            "--",
            *cmd,
        ]
    load0 = loadavg()
    server0 = cpu_s(cp.pid("kube-apiserver"))
    t0 = time.monotonic()
    log = Path(f"/tmp/startup-api-{port}.log")
    proc = start_process(cmd, env, log)
    try:
        pid = proc.pid
        if profile:  # the API is py-spy's child
            time.sleep(0.5)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            pid = int(children[0]) if children else pid
        timeline = _wait_ready(f"http://127.0.0.1:{port}/readyz", pid, cp.pid("kube-apiserver"))
        out: dict[str, Any] = {
            "source": source,
            "ready_s": round(time.monotonic() - t0, 2),
            "load": f"{load0} -> {loadavg()}",
            "cpu_percent_per_second": timeline,
        }
        out["cpu_s"] = round(cpu_s(pid), 2)
        out["apiserver_cpu_s"] = round(cpu_s(cp.pid("kube-apiserver")) - server0, 2)
        out["rss_mb"] = round(rss_mb(pid), 1)
        out["lists"] = [
            orjson.loads(line)["message"] for line in log.read_bytes().splitlines() if b"listed" in line
        ]
        base = f"http://127.0.0.1:{port}{c.SCIM_BASE_PATH}"
        auth = {"Authorization": f"Bearer {token}"}
        rng = random.Random(3)
        filters = [f"{base}/Groups?filter=" + _q(f'displayName eq "{_display(i)}"') + "&excludedAttributes=members"
                   for i in (rng.randrange(GROUPS) for _ in range(500))]  # fmt: skip
        pages = [f"{base}/Groups?startIndex={1 + rng.randrange(max(1, GROUPS - 100))}&count=100&excludedAttributes=members"
                 for _ in range(200)]  # fmt: skip
        for name, urls in (("filter", filters), ("page_of_100", pages)):
            load({"method": "GET", "urls": urls, "headers": auth, "concurrency": 1, "duration_s": 1})
            one = load({"method": "GET", "urls": urls, "headers": auth, "concurrency": 1, "duration_s": 5})
            out[name] = {k: one[k] for k in ("requests", "errors", "p50_ms", "p99_ms")} | {"load": loadavg()}
        out["rss_mb_end"] = round(rss_mb(pid), 1)
        print(f"api: {out}", flush=True)
        return out
    finally:
        if profile:
            subprocess.run(["kill", "-INT", str(proc.pid)], check=False)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            print(f"profile: {svg}", flush=True)
        else:
            proc.terminate()
            proc.wait(timeout=60)


def main(argv: list[str]) -> None:
    modes = argv or ["inproc", "api"]
    DATA.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"groups": GROUPS, "users": USERS, "per_group": PER_GROUP}
    flags: tuple[str, ...] = ()
    if SCALE_SEED:
        from .scale import APISERVER_FLAGS as flags
    with ControlPlane(data_dir=DATA, apiserver_flags=flags) as cp:
        token = seed(cp)
        for n, mode in enumerate(modes):
            if mode.startswith("raw"):  # raw=identity: without gzip; raw=rv0: resourceVersion=0
                out[f"raw-{n}"] = raw(cp, mode.partition("=")[2])
            elif mode == "inproc":
                out[f"inproc-{n}"] = inproc(cp)
            elif mode == "api":
                out[f"api-{n}"] = [api_once(cp, token, s, PYSPY and r == 0 and i == 0)
                                   for r in range(ROUNDS) for i, s in enumerate(SOURCES)]  # fmt: skip
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    save(os.environ.get("BENCH_RESULT", "startup"), out)


if __name__ == "__main__":
    main(sys.argv[1:])
