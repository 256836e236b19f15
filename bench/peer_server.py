"""The peer ``make bench-api`` compares against: python-scim's scim2-server, in memory, as an
ASGI app under uvicorn (one worker), the same way the SCIM API is served.

Run by the peer's own virtualenv (``bench/peer.py`` makes it), not the project's: the peer
pins its own scim2-models. ``uvicorn --factory --app-dir bench peer_server:app``.

``BENCH_PEER_GROUPS=N`` stores N groups (``Group 0`` … ``Group N-1``) before serving,
through the storage's own ``create`` (what a POST ends in: an id, ``meta``, the indexes),
about 0.3 ms each instead of one HTTP request each: 100,000 groups in about half a minute."""

import os

from scim2_models import Group
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.utils import load_default_provider, load_default_resource_types


def app() -> ASGIApplication:
    storage = AsyncInMemoryStorage()
    group_type = load_default_resource_types()["Group"]
    for i in range(int(os.environ.get("BENCH_PEER_GROUPS", "0"))):
        storage.storage.create(group_type, Group(display_name=f"Group {i}"))
    return ASGIApplication(storage, load_default_provider())
