"""The watch-fed directory: token hashes, late events (``directory.py``)."""

from __future__ import annotations


def test_expired_token_hashes_are_not_accepted() -> None:
    from scim_api.directory import Directory
    from scim_core import constants as c
    from scim_core.tokens import token_sha256

    d = Directory()
    ws = {
        "metadata": {"namespace": "ns", "name": "ws", "resourceVersion": "1"},
        "status": {
            "tokenHashes": [
                {"sha256": token_sha256("live"), "fingerprint": "f1", "notAfter": "2999-01-01T00:00:00Z"},
                {"sha256": token_sha256("old"), "fingerprint": "f2", "notAfter": "2000-01-01T00:00:00Z"},
            ]
        },
    }
    d.replace_all(c.WORKSPACE_PLURAL, [ws])
    assert d.workspace_for_token_hash(token_sha256("live")) is not None
    assert d.workspace_for_token_hash(token_sha256("old")) is None  # expired
    assert d.workspace_for_token_hash(token_sha256("unknown")) is None
    d.delete(c.WORKSPACE_PLURAL, ws)
    assert d.workspace_for_token_hash(token_sha256("live")) is None  # revoked with its workspace


def test_directory_ignores_late_events_after_own_delete() -> None:
    from scim_api.directory import Table

    t = Table(("displayName",))
    obj = {"metadata": {"name": "g1", "resourceVersion": "10"}, "spec": {"displayName": "A"}}
    t.put(obj)
    t.forget("g1", 12)
    t.put({"metadata": {"name": "g1", "resourceVersion": "11"}, "spec": {"displayName": "A"}})  # late
    assert "g1" not in t.by_id and t.lookup("displayName", "a") == set()
