"""Find or build the control-plane binaries (etcd, kube-apiserver, ...) and helm.

Lookup order follows controller-runtime's envtest: ``TEST_ASSET_<NAME>`` for one binary,
then ``KUBEBUILDER_ASSETS``, then our own cache
(``$SCIM_KUBE_CACHE`` or ``~/.cache/scim-kube/bin/<module>-<version>/``), which is filled
by building from the Go module proxy with the wrapper modules in ``devenv/go/<module>``.
Versions are pinned only in those ``go.mod`` files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GO_MODULES_DIR = Path(__file__).resolve().parents[1] / "go"


@dataclass(frozen=True)
class GoBuild:
    """One binary and the wrapper module / package it is built from."""

    name: str
    module_dir: str
    required_module: str
    package: str

    @property
    def env_override(self) -> str:
        return "TEST_ASSET_" + self.name.upper().replace("-", "_")


BINARIES: dict[str, GoBuild] = {
    b.name: b
    for b in (
        GoBuild("etcd", "etcd", "go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/server/v3"),
        GoBuild(
            "kube-apiserver",
            "kubernetes",
            "k8s.io/kubernetes",
            "k8s.io/kubernetes/cmd/kube-apiserver",
        ),
        GoBuild(
            "kube-controller-manager",
            "kubernetes",
            "k8s.io/kubernetes",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
        ),
        GoBuild("kubectl", "kubernetes", "k8s.io/kubernetes", "k8s.io/kubernetes/cmd/kubectl"),
        GoBuild("helm", "helm", "helm.sh/helm/v3", "helm.sh/helm/v3/cmd/helm"),
    )
}


def pinned_version(module_dir: str, required_module: str) -> str:
    """The version a wrapper go.mod requires: the one place versions are pinned."""
    text = (GO_MODULES_DIR / module_dir / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(required_module)}\s+(v\S+)", text, re.M)
    if not match:
        raise RuntimeError(f"{required_module} is not required in devenv/go/{module_dir}/go.mod")
    return match.group(1)


def cache_root() -> Path:
    if env := os.environ.get("SCIM_KUBE_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scim-kube"


def cache_dir(build: GoBuild) -> Path:
    version = pinned_version(build.module_dir, build.required_module)
    return cache_root() / "bin" / f"{build.module_dir}-{version}"


def _external(name: str) -> Path | None:
    """A binary provided from outside (envtest conventions), if any."""
    build = BINARIES[name]
    if override := os.environ.get(build.env_override):
        return Path(override)
    if assets := os.environ.get("KUBEBUILDER_ASSETS"):
        candidate = Path(assets) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Serialise builds across processes (parallel test runs, make run + make test)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _exe_name(package: str) -> str:
    """The file name ``go build -o dir/`` gives a main package (skips a /vN suffix)."""
    parts = package.split("/")
    return parts[-2] if re.fullmatch(r"v[0-9]+", parts[-1]) else parts[-1]


def _go_build(builds: list[GoBuild], out_dir: Path) -> None:
    module_dir = GO_MODULES_DIR / builds[0].module_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=out_dir.parent) as tmp:
        cmd = [
            "go", "build", "-mod=mod", "-trimpath", "-ldflags=-s -w", "-o", tmp + "/",
            *[b.package for b in builds],
        ]  # fmt: skip
        env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false")
        # The wrapper go.mod must stay untouched in the repo: build from a scratch copy.
        work = Path(tmp) / "mod"
        shutil.copytree(module_dir, work)
        started = time.monotonic()
        print(f"[devenv] building {', '.join(b.name for b in builds)} with {shutil.which('go')} ...",
              file=sys.stderr, flush=True)  # fmt: skip
        subprocess.run(cmd, cwd=work, env=env, check=True)
        print(f"[devenv] built in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        for b in builds:
            os.replace(Path(tmp) / _exe_name(b.package), out_dir / b.name)


def ensure(names: list[str] | None = None) -> dict[str, Path]:
    """Paths to the named binaries (all by default), building what is missing."""
    wanted = names or list(BINARIES)
    found: dict[str, Path] = {}
    missing: list[GoBuild] = []
    for name in wanted:
        if (path := _external(name)) is not None:
            found[name] = path
        elif (cached := cache_dir(BINARIES[name]) / name).is_file():
            found[name] = cached
        else:
            missing.append(BINARIES[name])
    if missing:
        with _build_lock():
            by_module: dict[str, list[GoBuild]] = {}
            for b in missing:
                if not (cache_dir(b) / b.name).is_file():  # another process may have built it
                    by_module.setdefault(b.module_dir, []).append(b)
            for builds in by_module.values():
                _go_build(builds, cache_dir(builds[0]))
        for b in missing:
            found[b.name] = cache_dir(b) / b.name
    return found
