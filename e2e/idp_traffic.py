"""Steady IdP traffic through the Service while something disruptive happens (a Pod deleted,
a rollout, a token rotation), and the promise checked afterwards: every answer was either a
success or retriable (503/429 with Retry-After, then retried as an IdP does), and every
change the API acknowledged is in the final state."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
RETRIABLE = {429, 503}


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer at all (connection refused/reset, timeout)
    retry_after: str | None
    body: Any
    error: str = ""


def call(base: str, token: str, method: str, path: str, body: Any = None, timeout: float = 30) -> Answer:
    """One request on its own connection (so the Service picks a Pod for each)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return Answer(r.status, r.headers.get("Retry-After"), json.loads(raw) if raw else None)
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw[:200]
        return Answer(err.code, err.headers.get("Retry-After"), parsed)
    except (OSError, urllib.error.URLError) as err:
        return Answer(None, None, None, error=repr(err))


@dataclass
class SteadyIdp:
    """Toggles users in and out of one group, one PATCH at a time, as fast as answers come
    (with ``pause`` between requests). ``expected`` is the membership the API acknowledged."""

    base: str
    token: str
    group_id: str
    users: list[str]
    pause: float = 0.05
    expected: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    uncertain: set[str] = field(default_factory=set)
    retries: int = 0
    requests: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SteadyIdp:
        self._thread = threading.Thread(target=self._run, name="steady-idp", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def _send(self, body: dict[str, Any]) -> bool:
        """Send until acknowledged; False only when stopping and still not acknowledged."""
        attempts = 0
        while True:
            attempts += 1
            if self._stop.is_set() and attempts > 20:
                self.violations.append("gave up after 20 attempts")
                return False
            self.requests += 1
            answer = call(self.base, self.token, "PATCH", f"/Groups/{self.group_id}", body)
            self.statuses[str(answer.status)] += 1
            if answer.status is not None and 200 <= answer.status < 300:
                return True
            if answer.status in RETRIABLE and answer.retry_after is not None:
                self.retries += 1
                time.sleep(min(float(answer.retry_after), 2.0))
                continue
            self.violations.append(
                f"{time.strftime('%H:%M:%S')} {answer.status} retry-after={answer.retry_after} "
                f"{answer.error or answer.body}"
            )
            # Whatever happened, an IdP retries: the toggle is idempotent, so this is safe and
            # keeps the expected state exact.
            time.sleep(0.5)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            user = self.users[i % len(self.users)]
            i += 1
            if user in self.expected:
                op = {"op": "remove", "path": f'members[value eq "{user}"]'}
            else:
                op = {"op": "add", "path": "members", "value": [{"value": user}]}
            if self._send({"schemas": [PATCH], "Operations": [op]}):
                self.expected.symmetric_difference_update({user})
            else:
                self.uncertain.add(user)
            time.sleep(self.pause)

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "retried": self.retries, "statuses": dict(self.statuses),
                "violations": len(self.violations)}  # fmt: skip


def steady_group(stack: Any, namespace: str, users: int = 8) -> tuple[Any, str, list[str]]:
    """A workspace whose IdP owns one group ("Steady", bound to `view`) and ``users`` people
    (login ``s<i>@example.com``, id ``usr-s<i>``): the Idp, the group id and the user ids."""
    from kubernetes import client
    from tests.helpers import create_user
    from tests.test_e2e_idp import GROUP, Idp

    client.CoreV1Api(stack.kube).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    ids = [f"usr-s{i}" for i in range(users)]
    for i, uid in enumerate(ids):
        create_user(stack.kube, namespace, uid, f"s{i}@example.com")
    idp = Idp(stack, namespace)
    status, group = idp.call("POST", "/Groups", {"schemas": [GROUP], "displayName": "Steady"})
    assert status == 201, group
    return idp, group["id"], ids


def check_landed(idp: Any, group_id: str, traffic: SteadyIdp, timeout: float = 60) -> None:
    """Every acknowledged change is in the group (as any API Pod serves it) and in RBAC."""
    from tests.helpers import eventually

    assert not traffic.violations, traffic.violations[:20]
    sure = set(traffic.users) - traffic.uncertain

    def members_match() -> bool:
        status, body = idp.call("GET", f"/Groups/{group_id}")
        got = {m["value"] for m in (body or {}).get("members", [])}
        return status == 200 and got & sure == traffic.expected & sure

    eventually(members_match, timeout=timeout, interval=0.5)
    for uid in sure:
        want = "view" if uid in traffic.expected else "none"
        login = uid.removeprefix("usr-") + "@example.com"
        eventually(lambda login=login, want=want: idp.access(login) == want, timeout=timeout, interval=0.5)
