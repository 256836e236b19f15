"""The ports ``make run`` opens for its own processes, settled before anything starts.

Each comes from its variable or, when that is unset, from a documented default (the API's
8080, so its URL stays the same) or a free port the kernel picks (the operator's metrics and
liveness, the API's metrics, which only the stack's own output names). Every one is checked free before the
control plane starts, so a clash is one line naming the port and the variable to change,
not a trace in a log file. None is privileged: a developer is not root.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HOST = "127.0.0.1"
#: Ports below this need root (CAP_NET_BIND_SERVICE): the stack never asks for one.
FIRST_UNPRIVILEGED = 1024
LAST_PORT = 65535


class PortError(ValueError):
    """A port setting the stack cannot use; ``str(error)`` is the one line to print."""


@dataclass(frozen=True)
class PortSetting:
    """One port of the stack and the environment variable that sets it."""

    variable: str
    purpose: str
    #: The port when the variable is unset; ``None``: a free port chosen at start.
    default: int | None
    #: ``0`` turns the endpoint off (the metrics and the liveness probe; not the API).
    optional: bool = False


API_PORT = PortSetting("SCIM_PORT", "the SCIM API", 8080)
METRICS_PORT = PortSetting("SCIM_METRICS_PORT", "the operator's metrics", None, optional=True)
LIVENESS_PORT = PortSetting("SCIM_LIVENESS_PORT", "the operator's liveness probe", None, optional=True)
API_METRICS_PORT = PortSetting("SCIM_API_METRICS_PORT", "the SCIM API's metrics", None, optional=True)
STACK_PORTS = (API_PORT, METRICS_PORT, LIVENESS_PORT, API_METRICS_PORT)


def free_port() -> int:
    """A port the kernel reports free on the loopback address (from its ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def requested(setting: PortSetting, env: Mapping[str, str]) -> int | None:
    """The port ``env`` asks for: ``None`` when unset and free-chosen, ``0`` for off.

    Pure: raises :class:`PortError` for anything that is not a usable port number."""
    raw = env.get(setting.variable, "").strip()
    if not raw:
        return setting.default
    allowed = f"a number from {FIRST_UNPRIVILEGED} to {LAST_PORT}" + (" (0: off)" if setting.optional else "")
    try:
        port = int(raw)
    except ValueError:
        raise PortError(
            f"{setting.variable}={raw!r} is not a port: set {setting.variable} to {allowed}"
        ) from None
    if port == 0 and setting.optional:
        return 0
    if not 0 < port <= LAST_PORT:
        raise PortError(f"{setting.variable}={port} is not a port: set {setting.variable} to {allowed}")
    if port < FIRST_UNPRIVILEGED:
        raise PortError(
            f"{setting.variable}={port} is a privileged port (below {FIRST_UNPRIVILEGED}), "
            f"which needs root: set {setting.variable} to {allowed}"
        )
    return port


def check_free(setting: PortSetting, port: int) -> None:
    """Raise :class:`PortError` unless ``port`` can be listened on (a bind, as the server
    will do), naming the variable to change."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As servers do: a recent connection's TIME_WAIT does not make the port taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as exc:
            problem = (
                "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be opened ({exc.strerror})"
            )
            raise PortError(
                f"port {port} ({setting.variable}, {setting.purpose}) {problem} on {HOST}: "
                f"set {setting.variable} to a free port, e.g. {setting.variable}={free_port()}"
            ) from None


def resolve(settings: Sequence[PortSetting], env: Mapping[str, str]) -> dict[str, int]:
    """Variable -> port for every setting (``0``: off), each one free right now.

    Raises :class:`PortError` with one line naming the port and the variable to change."""
    asked = {s.variable: requested(s, env) for s in settings}
    ports: dict[str, int] = {}
    for setting in settings:
        port = asked[setting.variable]
        if port is None:
            taken = set(asked.values()) | set(ports.values())
            port = free_port()
            while port in taken:
                port = free_port()
        elif port:
            clash = [v for v, p in ports.items() if p == port]
            if clash:
                raise PortError(
                    f"{setting.variable}={port} is also {clash[0]}: give {setting.variable} another port"
                )
            check_free(setting, port)
        ports[setting.variable] = port
    return ports
