"""Numbers read from the environment, shared by the API's and the operator's settings: one
parser per kind, so a typo in a Deployment stops the process at start with one line naming the
variable, the value and what is allowed, never a traceback or a setting that silently breaks
(``nan`` seconds, ``inf`` workers, a negative port)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")

#: Highest TCP port (a metrics port may also be 0: no endpoint).
MAX_PORT = 65535


class SettingsError(ValueError):
    """A setting that cannot be used; its message names the variable (the command prints it
    and exits, before anything starts)."""


def whole_number(env: Mapping[str, str], var: str, default: int, low: int, high: int | None = None) -> int:
    """``env[var]``, a whole number (ASCII digits, blanks around allowed) from ``low`` to
    ``high`` (``None``: no upper bound); unset: ``default``."""
    raw = env.get(var)
    if raw is None:
        return default
    digits = raw.strip()
    try:
        value = int(digits) if digits.isascii() and digits.isdigit() else None
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        value = None
    if value is not None and low <= value and (high is None or value <= high):
        return value
    allowed = f"from {low} to {high}" if high is not None else f"of {low} or more"
    raise SettingsError(f"{var}={raw!r}: give a whole number {allowed}")


def positive_number(env: Mapping[str, str], var: str, default: float) -> float:
    """``env[var]``, a finite number above 0 (seconds, a rate; ``2``, ``0.5``, ``1e+06`` as
    Helm renders large numbers); unset: ``default``. ``nan`` and ``inf`` are refused: every
    comparison with ``nan`` is false and an ``inf`` timer never fires."""
    return _number(env, var, default, zero=False)


def non_negative_number(env: Mapping[str, str], var: str, default: float) -> float:
    """As :func:`positive_number`, and 0 allowed too (a wait that 0 turns off)."""
    return _number(env, var, default, zero=True)


def _number(env: Mapping[str, str], var: str, default: float, zero: bool) -> float:
    raw = env.get(var)
    if raw is None:
        return default
    text = raw.strip()
    try:
        value = float(text) if text.isascii() and "_" not in text else math.nan
    except ValueError:
        value = math.nan
    if math.isfinite(value) and (value > 0 or (zero and value == 0)):
        return value
    raise SettingsError(f"{var}={raw!r}: give a finite number {'of 0 or more' if zero else 'above 0'}")


def read_or_exit(command: str, read: Callable[[], T]) -> T:
    """``read()``, or exit with ``<command>: <what is wrong>`` (one line, status 1) on a
    :class:`SettingsError`: how every command reports a bad setting."""
    try:
        return read()
    except SettingsError as exc:
        raise SystemExit(f"{command}: {exc}") from None
