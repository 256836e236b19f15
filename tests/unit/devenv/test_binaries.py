"""Binary lookup like envtest (``scim_devenv/binaries.py``)."""

from __future__ import annotations

import pytest


def test_binary_lookup_follows_envtest_conventions(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from scim_devenv import binaries

    assets = Path(str(tmp_path))
    for name in ("etcd", "kube-apiserver", "kubectl"):
        (assets / name).write_text("#!/bin/sh\n")
        (assets / name).chmod(0o755)
    override = assets / "my-etcd"
    override.write_text("#!/bin/sh\n")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("TEST_ASSET_ETCD", str(override))
    found = binaries.ensure(["etcd", "kube-apiserver", "kubectl"])
    assert found == {
        "etcd": override,
        "kube-apiserver": assets / "kube-apiserver",
        "kubectl": assets / "kubectl",
    }
    assert binaries.pinned_version("kubernetes", "k8s.io/kubernetes").startswith("v1.")
    assert binaries.cache_dir(binaries.BINARIES["helm"]).name.startswith("helm-v3.")
