"""Kubernetes client setup shared by the API and the operator."""

from __future__ import annotations

import os

from kubernetes_asyncio import client, config


def _has_kubeconfig() -> bool:
    return bool(os.environ.get("KUBECONFIG")) or os.path.exists(os.path.expanduser("~/.kube/config"))


async def api_client() -> client.ApiClient:
    """An ApiClient from ``$KUBECONFIG`` (or ~/.kube/config), else the in-cluster config."""
    kubeconfig = os.environ.get("KUBECONFIG")
    if _has_kubeconfig():
        configuration = client.Configuration()
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = 64
    return client.ApiClient(configuration)
