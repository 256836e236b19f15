"""The krew manifest (plugins/krew/scim.yaml), the release archive build-archive.sh makes
and the launcher krew puts on PATH (through a symlink, as krew does)."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
KREW = REPO / "plugins" / "krew"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def manifest(path: Path = KREW / "scim.yaml") -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_manifest_structure() -> None:
    doc = manifest()
    assert doc["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2" and doc["kind"] == "Plugin"
    assert doc["metadata"] == {"name": "scim"}  # `kubectl scim` <-> the binary kubectl-scim
    spec = doc["spec"]
    assert spec["version"] == f"v{VERSION}"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", spec["version"])
    assert spec["homepage"].startswith("https://") and 0 < len(spec["shortDescription"]) <= 60
    for command in ("status", "access", "rotate-token", "token", "preview"):
        assert f"kubectl scim {command}" in spec["description"]
    assert set(spec) <= {"version", "homepage", "shortDescription", "description", "caveats", "platforms"}
    oses: set[str] = set()
    for platform in spec["platforms"]:
        assert set(platform) == {"selector", "uri", "sha256", "bin", "files"}
        [expr] = platform["selector"]["matchExpressions"]
        assert expr["key"] == "os" and expr["operator"] == "In"
        oses |= set(expr["values"])
        assert platform["uri"].startswith("https://") and platform["uri"].endswith(
            f"/v{VERSION}/kubectl-scim-v{VERSION}.tar.gz"
        )
        assert re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
        assert platform["bin"] == "kubectl-scim"
        sources = [f["from"] for f in platform["files"]]
        assert "kubectl-scim" in sources and all(f["to"] == "." for f in platform["files"])
    assert oses == {"linux", "darwin"}  # the launcher is a POSIX shell script


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """build-archive.sh run on a copy of the manifest: (the archive, the updated copy)."""
    work = tmp_path_factory.mktemp("krew")
    copy = work / "scim.yaml"
    shutil.copy(KREW / "scim.yaml", copy)
    env = {**os.environ, "KREW_MANIFEST": str(copy), "PYTHON": sys.executable}
    subprocess.run(
        [str(KREW / "build-archive.sh"), str(work / "dist")], check=True, capture_output=True, env=env
    )
    return work / "dist" / f"kubectl-scim-v{VERSION}.tar.gz", copy


def test_archive_matches_the_manifest(archive: tuple[Path, Path]) -> None:
    path, copy = archive
    [platform] = manifest(copy)["spec"]["platforms"]
    assert platform["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert platform["uri"].endswith("/" + path.name)
    with tarfile.open(path) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
    assert members["kubectl-scim"].mode & 0o111
    assert sorted(members) == ["README.md", "kubectl-scim", f"scim_kube-{VERSION}-py3-none-any.whl"]
    for entry in platform["files"]:
        assert fnmatch.filter(members, entry["from"]), entry
    # the repository's manifest is left alone
    assert manifest()["spec"]["platforms"][0]["uri"] == platform["uri"]


def installed(archive: Path, tmp: Path) -> Path:
    """The archive unpacked as krew does: a store directory and a symlink on PATH."""
    store, bindir = tmp / "store", tmp / "bin"
    store.mkdir()
    bindir.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(store, filter="data")
    (bindir / "kubectl-scim").symlink_to(store / "kubectl-scim")
    return bindir / "kubectl-scim"


def test_launcher_runs_the_plugin_through_krews_symlink(archive: tuple[Path, Path], tmp_path: Path) -> None:
    link = installed(archive[0], tmp_path)
    venv = tmp_path / "cache" / "kubectl-scim" / VERSION
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "kubectl-scim").symlink_to(Path(sys.executable).with_name("kubectl-scim"))
    (venv / ".installed").touch()  # installed before: no network needed here
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run([str(link), "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "rotate-token" in out.stdout and "preview" in out.stdout


def test_launcher_needs_python_311(archive: tuple[Path, Path], tmp_path: Path) -> None:
    link = installed(archive[0], tmp_path)
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "KUBECTL_SCIM_PYTHON": "/nonexistent/python",
    }
    out = subprocess.run([str(link), "status"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 1 and "needs Python >= 3.11" in out.stderr
    assert not (tmp_path / "cache" / "kubectl-scim").exists()
