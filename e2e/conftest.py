"""Fixtures of the end-to-end suite. It runs against a cluster where the chart is installed
(`make e2e-cluster` sets the E2E_* variables: kind here, or any cluster via E2E_KUBECONFIG);
the ordinary `make test` pytest run does not collect this folder (testpaths = tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.helpers import eventually

from scim_core import constants as c

from .cluster_access import PortForward, Release, new_client, relay
from .results import Results


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("E2E_KUBECONFIG"):
        raise pytest.UsageError("the e2e suite runs against a cluster: `make e2e-cluster` (see README)")


# The plain flows first, the disruptive tests last.
MODULE_ORDER = ("test_idp_flows", "test_large_group", "test_token_rotation", "test_disruption",
                "test_operator_failover")  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)

    items.sort(key=rank)


@dataclass
class ClusterStack:
    """What tests.test_e2e_idp's Idp helper and flows use of their stack: an admin client and
    the SCIM base URL (here: through the API Service)."""

    kube: client.ApiClient
    base: str
    release: Release
    relay_ip: str

    @property
    def bases(self) -> list[str]:
        """The Idp helper's replica list: one entry, the Service, which spreads the requests."""
        return [self.base]


@pytest.fixture(scope="session")
def release() -> Release:
    return Release.from_env()


@pytest.fixture(scope="session")
def kube(release: Release) -> Iterator[client.ApiClient]:
    api = new_client(release)
    yield api
    api.close()


# Namespaces the tests create (fixed names, as tests/test_e2e_idp.py's flows use).
TEST_NAMESPACES = ("entra", "okta", "onelogin", "okta-aiw", "spread", "large-group", "steady-api",
                   "steady-upgrade", "failover-graceful", "failover-forced", "failover-crashed", "rotation")  # fmt: skip


def delete_namespaces(kube: client.ApiClient, names: tuple[str, ...], wait: bool = True) -> None:
    core = client.CoreV1Api(kube)
    for name in names:
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    if wait:
        eventually(lambda: not {ns.metadata.name for ns in core.list_namespace().items} & set(names),
                   timeout=180, interval=1)  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def clean_namespaces(kube: client.ApiClient) -> Iterator[None]:
    """Leftovers of an earlier run on an existing cluster go first; ours go afterwards
    (deleted, not waited for: 1,100 users take a while to go)."""
    delete_namespaces(kube, TEST_NAMESPACES)
    yield
    delete_namespaces(kube, TEST_NAMESPACES, wait=False)


@pytest.fixture(scope="session")
def stack(kube: client.ApiClient, release: Release) -> Iterator[ClusterStack]:
    with relay(kube, release) as relay_ip, PortForward(release) as pf:
        yield ClusterStack(kube, f"http://127.0.0.1:{pf.port}{c.SCIM_BASE_PATH}", release, relay_ip)


@pytest.fixture(scope="session")
def results() -> Iterator[Results]:
    res = Results()
    yield res
    res.write()
