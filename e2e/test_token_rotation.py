"""A token rotated through the operator while the IdP keeps calling: the new token works at
once, the IdP switches to it (as an admin pasting it would), and the old token is retired as
soon as the API has seen the new one used, before the grace period ends, with no request lost."""

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
        # The admin pastes the new token into the IdP as soon as it is in the Secret. The API
        # records its first use at once, and the operator then retires the old one (before the
        # grace period ends); the IdP's traffic must not notice.
        traffic.token = idp.token = new
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
        refused = eventually(
            lambda: call(stack.base, old, "GET", "/ServiceProviderConfig").status == 401 and time.monotonic(),
            timeout=GRACE_SECONDS + 60, interval=0.5,
        )  # fmt: skip
        time.sleep(3)  # traffic on the new token goes on after the old one is gone
    check_landed(idp, gid, traffic)
    assert call(stack.base, new, "GET", "/ServiceProviderConfig").status == 200
    results.record(
        "token_rotation", new_token_in_secret_s=round(published, 2), new_token_works_s=round(new_works, 2),
        first_new_token_answers=first, grace_s=GRACE_SECONDS,
        old_token_refused_after_s=round(refused - rotated_at, 1), **traffic.summary(),
    )  # fmt: skip
    # An admin copies the new token from the Secret into the IdP: it must work from then on.
    assert first == [200] * 10, f"the new token was refused after it appeared in the Secret: {first}"
    # retired because the IdP was seen using the new token, not because the grace period ended
    assert refused - rotated_at < GRACE_SECONDS, f"old token refused only after {refused - rotated_at:.1f} s"
