"""Numbers from the environment: each kind's good values, every kind of bad one refused with
one line naming the variable, and the commands exiting on it before they start anything."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scim_core.settings import (
    MAX_PORT,
    SettingsError,
    non_negative_number,
    positive_number,
    read_or_exit,
    whole_number,
)

VAR = "SCIM_EXAMPLE"


@pytest.mark.parametrize(
    ("env", "low", "high", "value"),
    [
        ({}, 1, 8, 5),  # unset: the default
        ({VAR: "1"}, 1, 8, 1),
        ({VAR: " 8 "}, 1, 8, 8),
        ({VAR: "0"}, 0, MAX_PORT, 0),
        ({VAR: str(MAX_PORT)}, 0, MAX_PORT, MAX_PORT),
        ({VAR: "1024"}, 1024, None, 1024),
        ({VAR: "99999999999"}, 1, None, 99999999999),
    ],
)
def test_whole_number(env: dict[str, str], low: int, high: int | None, value: int) -> None:
    assert whole_number(env, VAR, 5, low, high) == value


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "four",
        "nan",
        "inf",
        "-1",
        "+1",
        "0",
        "9",
        "2.5",
        "1e2",
        "0x10",
        "1_0",
        "٣",
        "²",
        pytest.param("9" * 5000, id="5000-digits"),
    ],
)
def test_whole_number_refused(raw: str) -> None:
    """Empty, not a number, NaN, inf, negative, zero where 1 is the least, out of range, and
    forms ``int()`` would take (sign, underscore, other scripts' digits) or refuse with its
    own ValueError (more digits than it converts)."""
    with pytest.raises(SettingsError) as refused:
        whole_number({VAR: raw}, VAR, 5, 1, 8)
    assert str(refused.value) == f"{VAR}={raw!r}: give a whole number from 1 to 8"


def test_whole_number_without_upper_bound_says_so() -> None:
    with pytest.raises(SettingsError) as refused:
        whole_number({VAR: "1023"}, VAR, 2048, 1024)
    assert str(refused.value) == f"{VAR}='1023': give a whole number of 1024 or more"


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ({}, 7.5),  # unset: the default
        ({VAR: "2"}, 2.0),
        ({VAR: " 0.5 "}, 0.5),
        ({VAR: ".25"}, 0.25),
        ({VAR: "1e+06"}, 1e6),  # how Helm renders a large number
        ({VAR: "1e-3"}, 0.001),
    ],
)
def test_positive_number(env: dict[str, str], value: float) -> None:
    assert positive_number(env, VAR, 7.5) == value


@pytest.mark.parametrize(
    "raw",
    ["", " ", "soon", "15s", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1", "-0.5", "0", "0.0",
     "-0", "1_000", "0x10", "٣", pytest.param("9" * 5000, id="5000-digits")],
)  # fmt: skip
def test_positive_number_refused(raw: str) -> None:
    """Empty, not a number, NaN, inf (also by overflow), negative, zero, and forms ``float()``
    would take (underscore, other scripts' digits)."""
    with pytest.raises(SettingsError) as refused:
        positive_number({VAR: raw}, VAR, 7.5)
    assert str(refused.value) == f"{VAR}={raw!r}: give a finite number above 0"


@pytest.mark.parametrize(
    ("raw", "value"), [("0", 0.0), (" 0.0 ", 0.0), ("-0", 0.0), ("0.25", 0.25), ("1e+06", 1e6)]
)
def test_non_negative_number(raw: str, value: float) -> None:
    """0 is allowed here (a wait that 0 turns off); unset gives the default."""
    assert non_negative_number({VAR: raw}, VAR, 7.5) == value
    assert non_negative_number({}, VAR, 7.5) == 7.5


@pytest.mark.parametrize("raw", ["", "soon", "nan", "inf", "-1", "-0.5", "1_000"])
def test_non_negative_number_refused(raw: str) -> None:
    with pytest.raises(SettingsError) as refused:
        non_negative_number({VAR: raw}, VAR, 7.5)
    assert str(refused.value) == f"{VAR}={raw!r}: give a finite number of 0 or more"


def test_read_or_exit() -> None:
    assert read_or_exit("cmd", lambda: 3) == 3

    def bad() -> int:
        raise SettingsError("SCIM_EXAMPLE='x': give a whole number from 1 to 8")

    with pytest.raises(SystemExit) as stopped:
        read_or_exit("cmd", bad)
    assert stopped.value.code == "cmd: SCIM_EXAMPLE='x': give a whole number from 1 to 8"


@pytest.mark.parametrize(
    ("module", "var", "raw", "line"),
    [
        (
            "scim_operator.main",
            "SCIM_LEASE_DURATION_SECONDS",
            "15s",
            "scim-operator: SCIM_LEASE_DURATION_SECONDS='15s': give a finite number above 0",
        ),
        (
            "scim_operator.main",
            "SCIM_LEASE_DURATION_SECONDS",
            "5",
            "scim-operator: SCIM_LEASE_DURATION_SECONDS, SCIM_LEASE_RENEW_DEADLINE_SECONDS, "
            "SCIM_LEASE_RETRY_PERIOD_SECONDS: lease duration 5.0s must exceed the renew deadline 10.0s",
        ),
        (
            "scim_api.main",
            "SCIM_RATE_PER_SECOND",
            "nan",
            "scim-api: SCIM_RATE_PER_SECOND='nan': give a finite number above 0",
        ),
    ],
)
def test_command_with_a_bad_setting_exits_with_one_line(module: str, var: str, raw: str, line: str) -> None:
    """The real process (no cluster: it stops before connecting anywhere) exits non-zero and
    prints one line naming the variable, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_")}
    result = subprocess.run(
        [sys.executable, "-m", module],
        env={**env, var: raw},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result
    assert result.stderr.splitlines() == [line] and not result.stdout, result
