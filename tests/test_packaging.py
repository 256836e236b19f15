"""The runtime wheel (what the image installs) holds the API, the operator, their shared
core and the kubectl plugin, and nothing of the development environment (``scim_devenv``, ``cryptography``).

The wheel is built from exactly the files the Dockerfile copies into its builder stage, so
this also proves those lines are enough to build the image's package."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def context_copies(dockerfile: str) -> list[str]:
    """Sources of the ``COPY`` lines that take from the build context (not ``--from=``)."""
    sources: list[str] = []
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("COPY a b ./\nCOPY core/ core/\n", ["a", "b", "core/"]),
        ("COPY --chown=1:1 api/ api/\nCOPY --from=builder /opt/venv /opt/venv\n", ["api/"]),
        ("RUN echo COPY x y\n# COPY z z\n", []),
    ],
)
def test_context_copies(dockerfile: str, expected: list[str]) -> None:
    assert context_copies(dockerfile) == expected


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    src = tmp_path_factory.mktemp("context")
    out = tmp_path_factory.mktemp("wheel")
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in context_copies((REPO / "Dockerfile").read_text()):
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=skip)
        else:
            shutil.copy2(path, src / name)
    # No build isolation: the dev venv's setuptools (pinned in the dev extra) builds it,
    # so the test needs no index.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(src)],
        check=True, capture_output=True,
    )  # fmt: skip
    [built] = out.glob("scim_kube-*.whl")
    with zipfile.ZipFile(built) as whl:
        yield whl


def _dist_info(whl: zipfile.ZipFile, name: str) -> str:
    [path] = [n for n in whl.namelist() if n.endswith(f".dist-info/{name}")]
    return whl.read(path).decode()


def test_runtime_wheel_holds_only_the_runtime_packages(wheel: zipfile.ZipFile) -> None:
    top = {n.split("/", 1)[0] for n in wheel.namelist() if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"scim_api", "scim_core", "scim_operator", "scim_kubectl"}
    assert not [n for n in wheel.namelist() if "scim_devenv" in n]


def test_runtime_wheel_does_not_require_dev_dependencies(wheel: zipfile.ZipFile) -> None:
    requires = Parser().parsestr(_dist_info(wheel, "METADATA")).get_all("Requires-Dist") or []
    assert requires, "the wheel declares its runtime dependencies"
    assert not [r for r in requires if r.lower().startswith("cryptography")]
    runtime = [r for r in requires if "extra ==" not in r]
    for dev_only in ("pytest", "kubernetes ", "kubernetes>", "scim2-tester", "mypy", "ruff"):
        assert not [r for r in runtime if r.startswith(dev_only)], dev_only


def test_runtime_wheel_commands_are_the_api_the_operator_and_the_plugin(wheel: zipfile.ZipFile) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_dist_info(wheel, "entry_points.txt"))
    assert entry_points.sections() == ["console_scripts"]
    assert sorted(entry_points["console_scripts"]) == ["kubectl-scim", "scim-api", "scim-operator"]
    # kubectl finds plugins by the executable's name on PATH: kubectl-<plugin>
    assert entry_points["console_scripts"]["kubectl-scim"] == "scim_kubectl.cli:main"


#: Declared for uvicorn, which loads them by name when present (its "standard" speed-ups).
LOADED_BY_NAME = {"uvloop", "httptools"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports(whl: zipfile.ZipFile) -> dict[str, set[str]]:
    """Distribution (normalized) -> wheel modules that import it, for every import outside
    the standard library and the wheel's own packages (lazy and type-only ones included)."""
    own = {n.split("/", 1)[0] for n in whl.namelist()}
    dists = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for name in whl.namelist():
        if not name.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(whl.read(name))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in own:
                    continue
                for dist in dists.get(top, [top]):
                    found.setdefault(_normalized(dist), set()).add(name)
    return found


def test_runtime_dependencies_are_exactly_what_the_commands_import(wheel: zipfile.ZipFile) -> None:
    """What the image installs: every import is a declared dependency (none arrives only by
    luck, through another package), and every dependency is imported (nothing extra)."""
    requires = Parser().parsestr(_dist_info(wheel, "METADATA")).get_all("Requires-Dist") or []
    declared = {
        _normalized(re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0]) for r in requires if "extra ==" not in r
    }
    imported = _third_party_imports(wheel)
    assert {d: sorted(m) for d, m in imported.items() if d not in declared} == {}
    assert declared - LOADED_BY_NAME - set(imported) == set()
