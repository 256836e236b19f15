"""A token rotated through the operator while the IdP keeps calling with the old one: the old
token works through the whole grace period, the new one at once, and the old one stops after."""

from __future__ import annotations

import time

from kubernetes import client
from tests.helpers import eventually, read_token

from scim_core import constants as c

from .conftest import ClusterStack
from .idp_traffic import SteadyIdp, call, check_landed, steady_group
from .results import Results

GRACE_SECONDS = 40
ROTATE_ANNOTATION = f"{c.GROUP}/rotate-token"


def test_token_rotated_under_traffic(stack: ClusterStack, results: Results) -> None:
    idp, gid, users = steady_group(stack, "rotation")
    ns = "rotation"
    api = client.CustomObjectsApi(stack.kube)
    api.patch_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.WORKSPACE_PLURAL, "ws",
                                       {"spec": {"token": {"gracePeriod": f"{GRACE_SECONDS}s"}}})  # fmt: skip
    old = idp.token
    with SteadyIdp(stack.base, old, gid, users) as traffic:
        time.sleep(2)
        api.patch_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.WORKSPACE_PLURAL, "ws",
                                           {"metadata": {"annotations": {ROTATE_ANNOTATION: str(time.time())}}})  # fmt: skip
        rotated_at = time.monotonic()
        new = eventually(lambda: (t := read_token(stack.kube, ns)) != old and t, timeout=60, interval=0.1)
        published = time.monotonic() - rotated_at
        # "at once": the first calls with the new token, on whichever Pod, succeed
        first: list[int | None] = []
        works_at: float | None = None
        for _ in range(10):
            first.append(call(stack.base, new, "GET", "/ServiceProviderConfig").status)
            works_at = works_at or (time.monotonic() if first[-1] == 200 else None)
        if works_at is None:
            works_at = eventually(
                lambda: (
                    call(stack.base, new, "GET", "/ServiceProviderConfig").status == 200 and time.monotonic()
                ),
                timeout=60,
            )
        new_works = works_at - rotated_at
        # the old token carries the IdP's traffic until shortly before the grace period ends
        time.sleep(max(0.0, GRACE_SECONDS - 5 - (time.monotonic() - rotated_at)))
    check_landed(idp, gid, traffic)
    refused = eventually(
        lambda: call(stack.base, old, "GET", "/ServiceProviderConfig").status == 401 and time.monotonic(),
        timeout=GRACE_SECONDS + 60, interval=0.5,
    )  # fmt: skip
    assert call(stack.base, new, "GET", "/ServiceProviderConfig").status == 200
    results.record(
        "token_rotation", new_token_in_secret_s=round(published, 2), new_token_works_s=round(new_works, 2),
        first_new_token_answers=first, grace_s=GRACE_SECONDS,
        old_token_refused_after_s=round(refused - rotated_at, 1), **traffic.summary(),
    )  # fmt: skip
    # An admin copies the new token from the Secret into the IdP: it must work from then on.
    assert first == [200] * 10, f"the new token was refused after it appeared in the Secret: {first}"
