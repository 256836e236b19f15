"""Write and install the generated CRDs."""

from __future__ import annotations

from pathlib import Path

import yaml

from scim_core.crds import all_crds

from .controlplane import ControlPlane

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "deploy" / "crds"
#: Helm installs its chart's crds/ folder: the same files, kept identical by `make crds`.
CHART_CRD_DIR = REPO_ROOT / "charts" / "scim-kube" / "crds"
HEADER = "# Generated from core/scim_core/resources.py by `make crds`; do not edit.\n"


def crd_files() -> dict[Path, str]:
    """File path -> YAML text for every CRD, as ``make crds`` writes them."""
    out: dict[Path, str] = {}
    for crd in all_crds():
        out[CRD_DIR / f"{crd['metadata']['name']}.yaml"] = HEADER + yaml.safe_dump(
            crd, sort_keys=False, width=100
        )
    return out


def write_crd_files() -> list[Path]:
    written: list[Path] = []
    for path, text in crd_files().items():
        for target in (path, CHART_CRD_DIR / path.name):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            written.append(target)
    return written


def install_crds(cp: ControlPlane) -> None:
    """Apply the CRDs and wait until the API server serves them."""
    crds = all_crds()
    cp.apply(crds)
    for crd in crds:
        cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd['metadata']['name']}")
