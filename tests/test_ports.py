"""Port settings of the local stack and the operator's ``--liveness``: pure rules, plus the
check that a taken port is reported before anything starts (a real socket, no cluster)."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Iterator

import pytest

from scim_devenv.ports import (
    API_PORT,
    LIVENESS_PORT,
    METRICS_PORT,
    STACK_PORTS,
    PortError,
    PortSetting,
    free_port,
    requested,
    resolve,
)
from scim_operator.main import liveness_endpoint


@pytest.mark.parametrize(
    ("setting", "env", "expected"),
    [
        (API_PORT, {}, 8080),
        (API_PORT, {"SCIM_PORT": ""}, 8080),
        (API_PORT, {"SCIM_PORT": " 18080 "}, 18080),
        (API_PORT, {"SCIM_PORT": "1024"}, 1024),
        (API_PORT, {"SCIM_PORT": "65535"}, 65535),
        (METRICS_PORT, {}, None),
        (METRICS_PORT, {"SCIM_METRICS_PORT": "0"}, 0),
        (METRICS_PORT, {"SCIM_METRICS_PORT": "9100"}, 9100),
        (LIVENESS_PORT, {"SCIM_LIVENESS_PORT": "0"}, 0),
        (LIVENESS_PORT, {"SCIM_PORT": "9999"}, None),
    ],
)
def test_requested_port(setting: PortSetting, env: dict[str, str], expected: int | None) -> None:
    assert requested(setting, env) == expected


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        (API_PORT, "80", "privileged"),
        (API_PORT, "1023", "privileged"),
        (API_PORT, "1", "privileged"),
        (API_PORT, "0", "is not a port"),
        (API_PORT, "-1", "is not a port"),
        (API_PORT, "65536", "is not a port"),
        (API_PORT, "http", "is not a port"),
        (METRICS_PORT, "443", "privileged"),
        (LIVENESS_PORT, "8081x", "is not a port"),
    ],
)
def test_unusable_port_is_one_line_naming_the_variable(setting: PortSetting, value: str, says: str) -> None:
    with pytest.raises(PortError) as err:
        requested(setting, {setting.variable: value})
    message = str(err.value)
    assert says in message and f"set {setting.variable} to" in message and "\n" not in message
    assert ("(0: off)" in message) is setting.optional


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("setting", STACK_PORTS, ids=lambda s: s.variable)
def test_taken_port_names_port_and_variable(setting: PortSetting, listener: int) -> None:
    env = {"SCIM_PORT": str(free_port()), setting.variable: str(listener)}  # 8080 may be a `make run`'s
    with pytest.raises(PortError) as err:
        resolve(STACK_PORTS, env)
    message = str(err.value)
    assert message.startswith(f"port {listener} ({setting.variable}, ") and "already in use" in message
    assert f"set {setting.variable} to a free port, e.g. {setting.variable}=" in message


def test_unset_ports_are_chosen_free_and_distinct() -> None:
    api = free_port()
    ports = resolve(STACK_PORTS, {"SCIM_PORT": str(api)})
    assert ports["SCIM_PORT"] == api
    assert len(set(ports.values())) == len(STACK_PORTS) == 4 and all(p >= 1024 for p in ports.values())


def test_off_ports_stay_off() -> None:
    env = {"SCIM_PORT": str(free_port()), "SCIM_METRICS_PORT": "0", "SCIM_LIVENESS_PORT": "0",
           "SCIM_API_METRICS_PORT": "0"}  # fmt: skip
    assert resolve(STACK_PORTS, env) == {"SCIM_PORT": int(env["SCIM_PORT"]), "SCIM_METRICS_PORT": 0,
                                         "SCIM_LIVENESS_PORT": 0, "SCIM_API_METRICS_PORT": 0}  # fmt: skip


def test_one_port_for_two_settings_is_refused() -> None:
    port = str(free_port())
    with pytest.raises(PortError, match=f"SCIM_METRICS_PORT={port} is also SCIM_PORT"):
        resolve(STACK_PORTS, {"SCIM_PORT": port, "SCIM_METRICS_PORT": port})


def test_a_closed_connection_does_not_make_the_port_taken() -> None:
    """A server restarted on its port (TIME_WAIT left by a client) is not refused."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its end goes to TIME_WAIT
        client.close()
    assert resolve([API_PORT], {"SCIM_PORT": str(port)}) == {"SCIM_PORT": port}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("http://0.0.0.0:8081/healthz", "http://0.0.0.0:8081/healthz"),
        ("http://127.0.0.1:40123/healthz", "http://127.0.0.1:40123/healthz"),
    ],
)
def test_liveness_endpoint_accepted(value: str, expected: str | None) -> None:
    assert liveness_endpoint(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "http://127.0.0.1:0/healthz",  # Kopf would bind port 80
        "http://127.0.0.1/healthz",  # likewise
        "http://127.0.0.1:99999/healthz",
        "http://127.0.0.1:abc/healthz",
        "https://127.0.0.1:8081/healthz",  # Kopf serves http only
        "127.0.0.1:8081",
        "http://:8081/healthz",
    ],
)
def test_liveness_endpoint_refused(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="give an http URL with a host and a port"):
        liveness_endpoint(value)
