"""The informer's pure parts: what a cache keeps of an object, and the retry delays."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from scim_core.informer import RETRY_CAP, Slim, retry_delay
from scim_core.members import pack_members


def _group(name: str, *members: Any) -> dict[str, Any]:
    raw = {
        "apiVersion": "scim.optimaite.eu/v1alpha1",
        "kind": "ScimGroup",
        "metadata": {"name": name, "namespace": "ns", "managedFields": [{"manager": "x", "fieldsV1": {}}]},
        "spec": {"displayName": name, "members": list(members)},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "message": "1 RoleBindings for 2 subjects"}]
        },
    }
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(raw))  # fresh strings, as from the wire
    return loaded


def test_slim_drops_managed_fields_and_shares_equal_members() -> None:
    slim = Slim()
    a = slim(_group("a", {"value": "u1"}, {"value": "u2", "display": "Two"}, "odd"))
    b = slim(_group("b", {"value": "u1"}, {"value": "u2", "display": "Two"}, {"value": "u3", "n": 1}))
    assert "managedFields" not in a["metadata"]
    assert a["spec"]["members"] == [{"value": "u1"}, {"value": "u2", "display": "Two"}, "odd"]
    assert a["spec"]["members"][0] is b["spec"]["members"][0]  # one dict per distinct member
    assert a["spec"]["members"][1] is b["spec"]["members"][1]
    assert b["spec"]["members"][2] == {"value": "u3", "n": 1}  # not all strings: kept as it is
    assert a["status"]["conditions"][0]["message"] is b["status"]["conditions"][0]["message"]
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]


def test_slim_leaves_the_conditions_to_a_transform_that_takes_the_status_over() -> None:
    slim = Slim(conditions=False)
    a, b = slim(_group("a")), slim(_group("b"))
    assert a["status"] == b["status"]
    assert a["status"]["conditions"][0]["message"] is not b["status"]["conditions"][0]["message"]
    assert "managedFields" not in a["metadata"] and a["metadata"]["namespace"] is b["metadata"]["namespace"]


@pytest.mark.parametrize(
    "obj",
    [
        {"metadata": {"name": "x"}},
        {"metadata": {"name": "x"}, "spec": {"members": None}, "status": {"conditions": [1]}},
    ],
)
def test_slim_leaves_objects_without_members_or_conditions_alone(obj: dict[str, Any]) -> None:
    assert Slim()(dict(obj)) == obj


@pytest.mark.parametrize(
    ("failures", "delay"), [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, RETRY_CAP), (500, RETRY_CAP)]
)
def test_retry_delay_doubles_to_a_one_second_cap(failures: int, delay: float) -> None:
    assert retry_delay(failures) == pytest.approx(delay)


def test_slim_decodes_a_packed_shard_into_shared_members() -> None:
    slim = Slim()
    a = slim(_group("a", {"value": "u1"}))
    shard = slim(
        {
            "metadata": {"name": "a-1"},
            "spec": {"group": "a", "packedMembers": pack_members([{"value": "u1"}])},
        }
    )
    assert shard["spec"] == {"group": "a", "members": [{"value": "u1"}]}
    assert shard["spec"]["members"][0] is a["spec"]["members"][0]


def test_an_event_the_sink_holds_is_skipped_before_it_is_decoded() -> None:
    """The echo of the API's own shard write: neither decoded nor handed to the sink; a newer
    version is."""
    from scim_core.informer import Informer

    got: list[dict[str, Any]] = []

    class Sink:
        def replace_all(self, plural: str, objects: list[dict[str, Any]]) -> None: ...
        def upsert(self, plural: str, obj: dict[str, Any]) -> None:
            got.append(obj)

        def delete(self, plural: str, obj: dict[str, Any]) -> None: ...

    def event(rv: str) -> dict[str, Any]:
        packed = pack_members([{"value": "u1"}])
        return {"type": "MODIFIED", "object": {"metadata": {"name": "a-1", "resourceVersion": rv},
                                               "spec": {"group": "a", "packedMembers": packed}}}  # fmt: skip

    informer = Informer(None, "shards", Sink(), held=lambda _p, o: o["metadata"]["resourceVersion"] <= "5")  # type: ignore[arg-type]
    held = event("5")
    assert informer._handle(held, "1") == "5" and got == []
    assert "packedMembers" in held["object"]["spec"]  # not decoded
    assert informer._handle(event("6"), "5") == "6"
    assert [o["spec"]["members"] for o in got] == [[{"value": "u1"}]]
