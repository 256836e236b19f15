"""The API's numbers from the environment: parsed by the shared helpers (scim_core.settings),
each refused with one line naming its variable."""

from __future__ import annotations

import pytest

from scim_api.config import MIN_BODY_BYTES, ApiSettings
from scim_core.settings import MAX_PORT, SettingsError

WHOLE = f"give a whole number from 1 to {MAX_PORT}"
METRICS = f"give a whole number from 0 to {MAX_PORT}"
COUNT = "give a whole number of 1 or more"
BODY = f"give a whole number of {MIN_BODY_BYTES} or more"
POSITIVE = "give a finite number above 0"

#: variable, field, a good value and what it reads as, what the refusal says
NUMBERS = [
    ("SCIM_PORT", "port", "18080", 18080, WHOLE),
    ("SCIM_MAX_BODY_BYTES", "max_body_bytes", str(MIN_BODY_BYTES), MIN_BODY_BYTES, BODY),
    ("SCIM_MAX_RESULTS", "max_results", "1", 1, COUNT),
    ("SCIM_MAX_LIST_MEMBERS", "max_list_members", " 500 ", 500, COUNT),
    ("SCIM_RATE_PER_SECOND", "rate_per_second", "0.5", 0.5, POSITIVE),
    ("SCIM_RATE_BURST", "rate_burst", "1", 1, COUNT),
    ("SCIM_MAX_WATCH_STALENESS_SECONDS", "max_watch_staleness", "2.5", 2.5, POSITIVE),
    ("SCIM_MAX_GROUP_MEMBERS", "max_group_members", "100000", 100_000, COUNT),
    ("SCIM_API_METRICS_PORT", "metrics_port", "0", 0, METRICS),
    ("SCIM_STATUS_INTERVAL_SECONDS", "status_interval", "1e+06", 1e6, POSITIVE),
]


def test_defaults() -> None:
    assert ApiSettings.from_env({}) == ApiSettings()


@pytest.mark.parametrize(("var", "field", "raw", "value", "allowed"), NUMBERS)
def test_numbers_from_env(var: str, field: str, raw: str, value: object, allowed: str) -> None:
    assert getattr(ApiSettings.from_env({var: raw}), field) == value


@pytest.mark.parametrize("raw", ["", "many", "nan", "inf", "-1", "0"])
@pytest.mark.parametrize(("var", "field", "good", "value", "allowed"), NUMBERS)
def test_numbers_refused_naming_the_variable(
    var: str, field: str, good: str, value: object, allowed: str, raw: str
) -> None:
    """Empty, not a number, NaN, inf, negative; zero too, except for the metrics port (off)."""
    if var == "SCIM_API_METRICS_PORT" and raw == "0":
        raw = str(MAX_PORT + 1)  # out of range instead
    with pytest.raises(SettingsError) as refused:
        ApiSettings.from_env({var: raw})
    assert str(refused.value) == f"{var}={raw!r}: {allowed}"


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("SCIM_PORT", str(MAX_PORT + 1)),
        ("SCIM_MAX_BODY_BYTES", str(MIN_BODY_BYTES - 1)),
        ("SCIM_RATE_BURST", "2.5"),
    ],
)
def test_out_of_range_refused(var: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=f"^{var}="):
        ApiSettings.from_env({var: raw})
