"""The shared "already gone is fine" idiom."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from scim_core.kube import api_client, env_proxy, ignoring, small_tls_buffers


@pytest.mark.parametrize(
    ("statuses", "raised", "swallowed"),
    [
        ((), 404, True),
        ((), 409, False),
        ((404, 409, 422), 409, True),
        ((404, 409, 422), 500, False),
        ((409,), 404, False),
    ],
)
def test_ignoring(statuses: tuple[int, ...], raised: int, swallowed: bool) -> None:
    def call() -> None:
        with ignoring(*statuses):
            raise ApiException(status=raised)

    if swallowed:
        call()
    else:
        with pytest.raises(ApiException):
            call()


def test_ignoring_passes_other_errors_and_success() -> None:
    with ignoring():
        pass
    with pytest.raises(ValueError), ignoring():
        raise ValueError("not an API error")


@pytest.mark.parametrize(
    ("host", "env", "proxy"),
    [
        ("https://10.0.0.1:443", {}, None),
        ("https://10.0.0.1:443", {"HTTPS_PROXY": "http://proxy:3128"}, "http://proxy:3128"),
        (
            "https://10.0.0.1:443",
            {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:1"},
            "http://low:1",
        ),
        ("https://10.0.0.1:443", {"HTTP_PROXY": "http://proxy:3128"}, None),
        ("http://127.0.0.1:8080", {"HTTP_PROXY": "http://proxy:3128"}, "http://proxy:3128"),
        ("https://10.0.0.1:443", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.1"}, None),
        ("https://api.example.com", {"HTTPS_PROXY": "http://p:1", "no_proxy": ".example.com"}, None),
        ("https://api.example.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, None),
        ("https://api.example.org", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "http://p:1"),
        ("https://api.example.org", {"HTTPS_PROXY": ""}, None),
        ("unix-socket", {"HTTPS_PROXY": "http://p:1"}, None),
    ],
)
def test_env_proxy_is_resolved_once_as_curl_would(host: str, env: dict[str, str], proxy: str | None) -> None:
    assert env_proxy(host, env) == proxy


async def test_client_session_does_not_look_up_the_environment_per_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://10.0.0.1:6443', insecure-skip-tls-verify: true}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    api = await api_client(user_agent="test")
    try:
        session = api.rest_client.pool_manager
        assert not session.trust_env and not session.closed
        assert session.connector is not None and session.connector.limit == 64
        assert api.configuration.proxy == "http://proxy:3128"
        assert api.user_agent == "test"
    finally:
        await api.close()
    assert session.closed


class _Protocol:
    max_size = 256 * 1024


class _OtherProtocol:
    pass


class _OddProtocol:
    max_size = None


@pytest.mark.parametrize(
    ("protocol", "applied"),
    [
        (_Protocol, True),  # asyncio's SSLProtocol as in 3.11 to 3.13: a class constant
        (_OtherProtocol, False),  # an asyncio without it: nothing changed
        (_OddProtocol, False),
    ],
)
def test_tls_read_buffers_are_made_smaller_only_where_asyncio_has_the_constant(
    protocol: type, applied: bool
) -> None:
    before = getattr(protocol, "max_size", "absent")
    assert small_tls_buffers(protocol, 2**16) is applied
    assert getattr(protocol, "max_size", "absent") == (2**16 if applied else before)


def test_this_asyncio_reads_tls_into_a_buffer_of_max_size_bytes() -> None:
    """The constant ``small_tls_buffers`` sets is the one this asyncio sizes each connection's
    read buffer by: an upgrade that renames it fails here, not silently in production."""
    import asyncio.sslproto
    import inspect

    assert isinstance(asyncio.sslproto.SSLProtocol.max_size, int)
    assert "bytearray(self.max_size)" in inspect.getsource(asyncio.sslproto.SSLProtocol.__init__)
